//! Registry entries and their identifiers (spec `runtime-internals.md` §9.1).
//!
//! An [`Entry`] is `{id, kind, meta, data}`; its [`Id`] is `namespace:name`. Parsing splits at
//! the **first** `:` (namespaces may contain dots, names may contain dots and further colons);
//! a string without `:` is a name-only id with an empty namespace. Ids are two shared strings,
//! so cloning one is two reference-count bumps.
//!
//! Entries are stored and passed around as `Arc<Entry>`: the state, changesets, snapshots and
//! handler events share one allocation per entry version.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use wippy_rt::{Error, Value};

/// An entry identifier: `namespace:name`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    ns: Arc<str>,
    name: Arc<str>,
}

impl Id {
    /// An id from its two parts.
    pub fn new(ns: &str, name: &str) -> Id {
        Id {
            ns: ns.into(),
            name: name.into(),
        }
    }

    /// Parse `ns:name`, splitting at the first `:`; no colon → empty namespace.
    pub fn parse(s: &str) -> Id {
        match s.split_once(':') {
            Some((ns, name)) => Id::new(ns, name),
            None => Id::new("", s),
        }
    }

    /// Parse a reference that may be relative: a string without `:` gets `default_ns`
    /// (the `WithDefaultNS` rule of spec `lua-api.md` §1.5).
    pub fn parse_relative(s: &str, default_ns: &str) -> Id {
        match s.split_once(':') {
            Some((ns, name)) => Id::new(ns, name),
            None => Id::new(default_ns, s),
        }
    }

    /// The namespace (may be empty).
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ns, self.name)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ns, self.name)
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Id {
        Id::parse(s)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.ns.is_empty() {
            s.serialize_str(&self.name)
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id string \"ns:name\" or a map {ns, name}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id::parse(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Id, A::Error> {
                let (mut ns, mut name) = (String::new(), String::new());
                while let Some(k) = a.next_key::<String>()? {
                    match k.as_str() {
                        "ns" => ns = a.next_value()?,
                        "name" => name = a.next_value()?,
                        _ => {
                            a.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(Id::new(&ns, &name))
            }
        }
        d.deserialize_any(V)
    }
}

/// A registry entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// `namespace:name`.
    pub id: Id,
    /// Dotted kind selecting the handler (`function.lua`, `http.service`, …).
    #[serde(default)]
    pub kind: String,
    /// Free-form metadata map (`Value::Map`, or `Nil` when empty).
    #[serde(default, skip_serializing_if = "Value::is_nil")]
    pub meta: Value,
    /// Kind-specific payload (any value).
    #[serde(default, skip_serializing_if = "Value::is_nil")]
    pub data: Value,
}

impl Entry {
    /// An entry with empty meta and data.
    pub fn new(id: impl Into<Id>, kind: &str) -> Entry {
        Entry {
            id: id.into(),
            kind: kind.to_string(),
            meta: Value::Nil,
            data: Value::Nil,
        }
    }

    /// Builder: set one meta field.
    pub fn with_meta(mut self, key: &str, value: impl Into<Value>) -> Entry {
        self.meta.insert(key, value.into());
        self
    }

    /// Builder: set the data payload.
    pub fn with_data(mut self, data: Value) -> Entry {
        self.data = data;
        self
    }

    /// Look up a meta field.
    pub fn meta(&self, key: &str) -> Option<&Value> {
        self.meta.get(key)
    }

    /// The entry as a `Value` map `{id, kind, meta, data}` (the shape Lua code and event
    /// payloads see).
    pub fn to_value(&self) -> Value {
        let meta = if self.meta.is_nil() {
            Value::Map(Vec::new())
        } else {
            self.meta.clone()
        };
        Value::Map(vec![
            (Value::str("id"), Value::from(self.id.to_string())),
            (Value::str("kind"), Value::str(&self.kind)),
            (Value::str("meta"), meta),
            (Value::str("data"), self.data.clone()),
        ])
    }

    /// Build an entry from a `{id, kind, meta, data}` map. `id` may be a string or
    /// `{ns, name}`; `kind` must be a string when present; `data` is optional.
    pub fn from_value(v: &Value) -> Result<Entry, Error> {
        if v.as_map().is_none() {
            return Err(Error::invalid(format!(
                "entry must be a table, got {}",
                v.type_name()
            )));
        }
        let id = match v.get("id") {
            Some(Value::Str(s)) => Id::parse(&s.to_string_lossy()),
            Some(m @ Value::Map(_)) => {
                let part = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                Id::new(&part("ns"), &part("name"))
            }
            _ => return Err(Error::invalid("entry id is required")),
        };
        let kind = match v.get("kind") {
            None | Some(Value::Nil) => String::new(),
            Some(Value::Str(s)) => s.to_string_lossy().into_owned(),
            Some(other) => {
                return Err(Error::invalid(format!(
                    "entry kind must be a string, got {}",
                    other.type_name()
                )));
            }
        };
        let meta = match v.get("meta") {
            None | Some(Value::Nil) => Value::Nil,
            Some(m @ Value::Map(_)) => m.clone(),
            Some(Value::Array(a)) if a.is_empty() => Value::Nil,
            Some(other) => {
                return Err(Error::invalid(format!(
                    "entry meta must be a table, got {}",
                    other.type_name()
                )));
            }
        };
        Ok(Entry {
            id,
            kind,
            meta,
            data: v.get("data").cloned().unwrap_or(Value::Nil),
        })
    }
}

/// Serialize an entry as a map with `meta` always present (for JSON output of CLI listings).
pub struct EntryView<'a>(pub &'a Entry);

impl Serialize for EntryView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("id", &self.0.id)?;
        m.serialize_entry("kind", &self.0.kind)?;
        m.serialize_entry("meta", &self.0.meta)?;
        m.serialize_entry("data", &self.0.data)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_parsing() {
        let id = Id::parse("app.api:get.user:v2");
        assert_eq!((id.ns(), id.name()), ("app.api", "get.user:v2"));
        assert_eq!(Id::parse("plain").to_string(), ":plain");
        assert_eq!(Id::parse_relative("x", "ns").to_string(), "ns:x");
        assert_eq!(Id::parse_relative("a:x", "ns").to_string(), "a:x");
    }

    #[test]
    fn value_round_trip() {
        let e = Entry::new("a:b", "function.lua")
            .with_meta("type", "test")
            .with_data(Value::Int(3));
        let back = Entry::from_value(&e.to_value()).unwrap();
        assert_eq!(back, e);
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), e);
    }
}
