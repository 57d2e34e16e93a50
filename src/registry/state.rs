//! The ordered entry store (spec §9.2).
//!
//! A [`State`] is an insertion-ordered map `Id → Arc<Entry>` (an `IndexMap`): O(1) lookup by
//! id, iteration in the order entries were created, updates in place. A registry version is an
//! immutable `Arc<State>`; a change clones the map (pointer copies, no rehash) and mutates the
//! clone, so snapshots handed out earlier never change.
//!
//! Deletes inside one changeset are gathered and removed with a single `retain` pass so that a
//! changeset deleting k of n entries costs O(n + k), not O(n·k).

use std::sync::Arc;

use fnv::{FnvBuildHasher, FnvHashSet};
use indexmap::IndexMap;
use wippy_rt::Error;

use super::changeset::{OpKind, Operation};
use super::entry::{Entry, Id};

/// An immutable-by-convention, ordered set of entries.
#[derive(Clone, Default, Debug)]
pub struct State {
    map: IndexMap<Id, Arc<Entry>, FnvBuildHasher>,
}

impl State {
    /// An empty state.
    pub fn new() -> State {
        State::default()
    }

    /// Build from entries; a later duplicate id replaces the earlier one in place.
    pub fn from_entries<I: IntoIterator<Item = Arc<Entry>>>(entries: I) -> State {
        let mut s = State::new();
        for e in entries {
            s.map.insert(e.id.clone(), e);
        }
        s
    }

    /// Look up an entry.
    pub fn get(&self, id: &Id) -> Option<&Arc<Entry>> {
        self.map.get(id)
    }

    /// True when the id is present.
    pub fn contains(&self, id: &Id) -> bool {
        self.map.contains_key(id)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.map.values()
    }

    /// Entries of one namespace, in order.
    pub fn namespace<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = &'a Arc<Entry>> + 'a {
        self.map.values().filter(move |e| e.id.ns() == ns)
    }

    /// Entries as a vector of shared pointers.
    pub fn to_vec(&self) -> Vec<Arc<Entry>> {
        self.map.values().cloned().collect()
    }

    /// Validate one operation against this state (spec §9.3 error texts).
    pub fn validate(&self, op: &Operation) -> Result<(), Error> {
        let id = &op.entry.id;
        match op.kind {
            OpKind::Create => {
                if self.contains(id) {
                    return Err(Error::new(
                        wippy_rt::Kind::ALREADY_EXISTS,
                        format!(
                            "entry already exists: {{ns: {}, name: {}}}",
                            id.ns(),
                            id.name()
                        ),
                    ));
                }
            }
            OpKind::Update => match self.get(id) {
                None => {
                    return Err(Error::not_found(format!(
                        "entry does not exist: {{ns: {}, name: {}}}",
                        id.ns(),
                        id.name()
                    )));
                }
                Some(cur) if !op.entry.kind.is_empty() && cur.kind != op.entry.kind => {
                    return Err(Error::invalid(format!(
                        "cannot change entry kind from {} to {} for {}",
                        cur.kind, op.entry.kind, id
                    )));
                }
                Some(_) => {}
            },
            OpKind::Delete => {
                if !self.contains(id) {
                    return Err(Error::not_found(format!(
                        "cannot delete non-existent entry: {{ns: {}, name: {}}}",
                        id.ns(),
                        id.name()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Apply one validated operation. Returns the previous entry (for updates and deletes).
    pub fn apply_op(&mut self, op: &Operation) -> Option<Arc<Entry>> {
        match op.kind {
            OpKind::Create | OpKind::Update => {
                self.map.insert(op.entry.id.clone(), op.entry.clone())
            }
            OpKind::Delete => self.map.shift_remove(&op.entry.id),
        }
    }

    /// Apply a whole operation list leniently (used for history replay and snapshot
    /// reconstruction, where no listener is involved): a create of an existing id replaces it,
    /// an update of a missing id inserts it, a delete of a missing id is ignored. Deletes are
    /// batched into one pass.
    pub fn apply_lenient(&mut self, ops: &[Operation]) {
        let mut deleted: FnvHashSet<Id> = FnvHashSet::default();
        for op in ops {
            match op.kind {
                OpKind::Create | OpKind::Update => {
                    deleted.remove(&op.entry.id);
                    self.map.insert(op.entry.id.clone(), op.entry.clone());
                }
                OpKind::Delete => {
                    deleted.insert(op.entry.id.clone());
                }
            }
        }
        if !deleted.is_empty() {
            // A create after a delete of the same id within the list was removed from
            // `deleted` above, so retain keeps it.
            self.map.retain(|id, _| !deleted.contains(id));
        }
    }
}

impl PartialEq for State {
    /// Same ids with deep-equal entries (order ignored).
    fn eq(&self, other: &State) -> bool {
        self.len() == other.len()
            && self.map.iter().all(|(id, e)| {
                other
                    .get(id)
                    .is_some_and(|o| Arc::ptr_eq(o, e) || **o == **e)
            })
    }
}
