//! Changesets: ordered lists of create/update/delete operations (spec §9.3).
//!
//! An [`Operation`] carries the new entry and, once the registry has applied it, the
//! *original* entry it replaced (updates) or removed (deletes). That makes every recorded
//! changeset reversible: [`ChangeSet::reverse`] walks the ops backwards turning
//! create→delete, update→update(original) and delete→create(original).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wippy_rt::{Error, Value};

use super::entry::{Entry, Id};

/// The three operation kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OpKind {
    /// `entry.create`
    #[serde(rename = "entry.create")]
    Create,
    /// `entry.update`
    #[serde(rename = "entry.update")]
    Update,
    /// `entry.delete`
    #[serde(rename = "entry.delete")]
    Delete,
}

impl OpKind {
    /// The wire name (`entry.create`, …), also the registry event kind.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Create => "entry.create",
            OpKind::Update => "entry.update",
            OpKind::Delete => "entry.delete",
        }
    }

    /// Parse a wire name; the error text is the original's.
    pub fn parse(s: &str) -> Result<OpKind, Error> {
        match s {
            "entry.create" => Ok(OpKind::Create),
            "entry.update" => Ok(OpKind::Update),
            "entry.delete" => Ok(OpKind::Delete),
            other => Err(Error::invalid(format!("unknown operation kind: {other}"))),
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// What to do.
    pub kind: OpKind,
    /// The new entry (for deletes only the id matters; the kind may be empty).
    pub entry: Arc<Entry>,
    /// The pre-change entry, filled in when the registry records the op.
    pub original: Option<Arc<Entry>>,
}

impl Operation {
    /// A create.
    pub fn create(entry: impl Into<Arc<Entry>>) -> Operation {
        Operation {
            kind: OpKind::Create,
            entry: entry.into(),
            original: None,
        }
    }
    /// An update.
    pub fn update(entry: impl Into<Arc<Entry>>) -> Operation {
        Operation {
            kind: OpKind::Update,
            entry: entry.into(),
            original: None,
        }
    }
    /// A delete by id (kind resolved from the state when applied).
    pub fn delete(id: impl Into<Id>) -> Operation {
        Operation {
            kind: OpKind::Delete,
            entry: Arc::new(Entry::new(id.into(), "")),
            original: None,
        }
    }
    /// A delete carrying the full entry being removed.
    pub fn delete_entry(entry: impl Into<Arc<Entry>>) -> Operation {
        Operation {
            kind: OpKind::Delete,
            entry: entry.into(),
            original: None,
        }
    }
    /// Builder: attach the original entry.
    pub fn with_original(mut self, original: Option<Arc<Entry>>) -> Operation {
        self.original = original;
        self
    }
    /// The entry id.
    pub fn id(&self) -> &Id {
        &self.entry.id
    }

    /// `{kind = "entry.create", entry = {...}}` — the shape of `Changes:ops()` and
    /// `registry.build_delta` in Lua.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![
            (Value::str("kind"), Value::str(self.kind.as_str())),
            (Value::str("entry"), self.entry.to_value()),
        ])
    }
}

/// An ordered list of operations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangeSet {
    /// The operations, applied in order.
    pub ops: Vec<Operation>,
}

impl ChangeSet {
    /// An empty changeset.
    pub fn new() -> ChangeSet {
        ChangeSet::default()
    }

    /// Builder: append a create.
    pub fn create(mut self, entry: Entry) -> ChangeSet {
        self.ops.push(Operation::create(entry));
        self
    }
    /// Builder: append an update.
    pub fn update(mut self, entry: Entry) -> ChangeSet {
        self.ops.push(Operation::update(entry));
        self
    }
    /// Builder: append a delete.
    pub fn delete(mut self, id: impl Into<Id>) -> ChangeSet {
        self.ops.push(Operation::delete(id));
        self
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The inverse changeset. Requires originals on updates and deletes; an op without its
    /// original cannot be reversed and is skipped with a warning (as the original does).
    pub fn reverse(&self) -> ChangeSet {
        let mut out = Vec::with_capacity(self.ops.len());
        for op in self.ops.iter().rev() {
            match op.kind {
                OpKind::Create => out.push(
                    Operation::delete_entry(op.entry.clone()).with_original(Some(op.entry.clone())),
                ),
                OpKind::Update | OpKind::Delete => match &op.original {
                    Some(orig) => {
                        let kind = if op.kind == OpKind::Update {
                            OpKind::Update
                        } else {
                            OpKind::Create
                        };
                        out.push(Operation {
                            kind,
                            entry: orig.clone(),
                            original: Some(op.entry.clone()),
                        });
                    }
                    None => log::warn!(
                        target: "wippy::registry",
                        "cannot reverse {} of {}: original entry missing (skipped)",
                        op.kind,
                        op.entry.id
                    ),
                },
            }
        }
        ChangeSet { ops: out }
    }

    /// Parse a Lua-style op list `{{kind=..., entry=...}, ...}`.
    pub fn from_value(v: &Value) -> Result<ChangeSet, Error> {
        let items = v
            .as_array()
            .ok_or_else(|| Error::invalid("changes must be an array of operations"))?;
        let mut ops = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let kind = item
                .get("kind")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid(format!("operation {}: kind is required", i + 1)))?;
            let kind = OpKind::parse(kind)?;
            let entry = Entry::from_value(item.get("entry").unwrap_or(&Value::Nil))
                .map_err(|e| e.wrap(format!("operation {}", i + 1)))?;
            ops.push(Operation {
                kind,
                entry: Arc::new(entry),
                original: None,
            });
        }
        Ok(ChangeSet { ops })
    }

    /// The Lua-style op list.
    pub fn to_value(&self) -> Value {
        Value::Array(self.ops.iter().map(Operation::to_value).collect())
    }
}

impl From<Vec<Operation>> for ChangeSet {
    fn from(ops: Vec<Operation>) -> ChangeSet {
        ChangeSet { ops }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_inverts_each_op() {
        let a = Arc::new(Entry::new("n:a", "k"));
        let a2 = Arc::new(Entry::new("n:a", "k").with_data(Value::Int(2)));
        let b = Arc::new(Entry::new("n:b", "k"));
        let cs = ChangeSet::from(vec![
            Operation::create(b.clone()),
            Operation::update(a2.clone()).with_original(Some(a.clone())),
        ]);
        let r = cs.reverse();
        assert_eq!(r.ops[0].kind, OpKind::Update);
        assert_eq!(r.ops[0].entry, a);
        assert_eq!(r.ops[1].kind, OpKind::Delete);
        assert_eq!(r.ops[1].entry.id, b.id);
    }
}
