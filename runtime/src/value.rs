//! The transferable value: what crosses a process boundary.
//!
//! Messages, spawn arguments, function-call arguments and results, registry entry data and
//! event payloads are all [`Value`]s. Lua tables are deep-copied into a `Value` when they leave
//! a process (spec `lua-api.md` §3.4) and rebuilt on the other side, so two processes never
//! share mutable state. Integers and floats stay distinct; strings are byte strings (binary
//! safe) with cheap clones; maps keep insertion order (YAML/JSON documents round-trip).
//!
//! `Value` is deliberately small (24 bytes) because it is moved through mailboxes on the hot
//! path.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::error::Error;

/// An immutable, cheaply clonable byte string (binary safe; usually UTF-8).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(Arc<[u8]>);

impl Bytes {
    /// Bytes from a slice (copies).
    pub fn from_slice(b: &[u8]) -> Bytes {
        Bytes(Arc::from(b))
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The text, if valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
    /// Lossy text.
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.to_string_lossy(), f)
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Bytes {
        Bytes::from_slice(s.as_bytes())
    }
}
impl From<String> for Bytes {
    fn from(s: String) -> Bytes {
        Bytes(Arc::from(s.into_bytes().into_boxed_slice()))
    }
}
impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Bytes {
        Bytes(Arc::from(v.into_boxed_slice()))
    }
}
impl From<&[u8]> for Bytes {
    fn from(b: &[u8]) -> Bytes {
        Bytes::from_slice(b)
    }
}

/// A native object that travels by reference (never inspected by the runtime). Lua code
/// sees such values as `nil` unless a module knows the concrete type.
pub type Opaque = Arc<dyn Any + Send + Sync>;

/// A transferable value.
#[derive(Clone, Default)]
pub enum Value {
    /// Lua `nil`, JSON `null`.
    #[default]
    Nil,
    /// Boolean.
    Bool(bool),
    /// 64-bit integer (Lua integer subtype).
    Int(i64),
    /// 64-bit float (Lua float subtype).
    Float(f64),
    /// Byte string.
    Str(Bytes),
    /// Sequence (Lua table with keys exactly `1..n`).
    Array(Vec<Value>),
    /// Map in insertion order (Lua table with other keys; YAML/JSON object).
    Map(Vec<(Value, Value)>),
    /// A structured error object.
    Error(Arc<Error>),
    /// A native object passed by reference.
    Opaque(Opaque),
}

impl Value {
    /// A string value.
    pub fn str(s: &str) -> Value {
        Value::Str(Bytes::from(s))
    }

    /// True for `Nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The text of a `Str` value (None for other variants or non-UTF-8 bytes).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(b) => b.as_str(),
            _ => None,
        }
    }

    /// Boolean view of `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Integer view: `Int`, or a `Float` with an integral value.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.is_finite() && f.abs() < 9.2e18 => {
                Some(*f as i64)
            }
            _ => None,
        }
    }

    /// Float view of either number subtype.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Array view.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Map view.
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Look up a string key in a `Map` (None for other variants or a missing key).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(b) if b.as_bytes() == key.as_bytes()))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Mutable lookup of a string key in a `Map`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Map(m) => m
                .iter_mut()
                .find(|(k, _)| matches!(k, Value::Str(b) if b.as_bytes() == key.as_bytes()))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follow a dotted path of string keys through nested maps (`"a.b.c"`).
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        let mut cur = self;
        for seg in path.split('.') {
            cur = cur.get(seg)?;
        }
        Some(cur)
    }

    /// Insert or replace a string key in a `Map`; turns `Nil` into an empty map first.
    /// Returns false when `self` is neither a map nor nil.
    pub fn insert(&mut self, key: &str, value: Value) -> bool {
        if self.is_nil() {
            *self = Value::Map(Vec::new());
        }
        match self {
            Value::Map(m) => {
                if let Some(slot) = m
                    .iter_mut()
                    .find(|(k, _)| matches!(k, Value::Str(b) if b.as_bytes() == key.as_bytes()))
                {
                    slot.1 = value;
                } else {
                    m.push((Value::str(key), value));
                }
                true
            }
            _ => false,
        }
    }

    /// Remove a string key from a `Map`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        match self {
            Value::Map(m) => {
                let pos = m.iter().position(
                    |(k, _)| matches!(k, Value::Str(b) if b.as_bytes() == key.as_bytes()),
                )?;
                Some(m.remove(pos).1)
            }
            _ => None,
        }
    }

    /// A short name of the variant, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Array(_) | Value::Map(_) => "table",
            Value::Error(_) => "error",
            Value::Opaque(_) => "userdata",
        }
    }
}

impl PartialEq for Value {
    /// Deep equality. Numbers compare across subtypes by value (`1 == 1.0`, as in Lua);
    /// opaque values compare by identity.
    fn eq(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (Nil, Nil) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Float(a), Float(b)) => a == b,
            (Int(a), Float(b)) | (Float(b), Int(a)) => (*a as f64) == *b && b.fract() == 0.0,
            (Str(a), Str(b)) => a == b,
            (Array(a), Array(b)) => a == b,
            (Map(a), Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.iter().any(|(k2, v2)| k == k2 && v == v2))
            }
            (Error(a), Error(b)) => a == b,
            (Opaque(a), Opaque(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => fmt::Debug::fmt(s, f),
            Value::Array(a) => f.debug_list().entries(a).finish(),
            Value::Map(m) => f
                .debug_map()
                .entries(m.iter().map(|(k, v)| (k, v)))
                .finish(),
            Value::Error(e) => write!(f, "error({e})"),
            Value::Opaque(_) => f.write_str("<opaque>"),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Value {
        Value::Int(i as i64)
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Value {
        Value::Int(i as i64)
    }
}
impl From<usize> for Value {
    fn from(i: usize) -> Value {
        Value::Int(i as i64)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(Bytes::from(s))
    }
}
impl From<Bytes> for Value {
    fn from(b: Bytes) -> Value {
        Value::Str(b)
    }
}
impl From<Error> for Value {
    fn from(e: Error) -> Value {
        Value::Error(Arc::new(e))
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::Array(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Nil, Into::into)
    }
}

#[cfg(feature = "serde")]
mod serde_impl {
    use super::*;
    use serde::de::{self, MapAccess, SeqAccess, Visitor};
    use serde::ser::{SerializeMap, SerializeSeq};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    impl Serialize for Value {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                Value::Nil | Value::Opaque(_) => s.serialize_unit(),
                Value::Bool(b) => s.serialize_bool(*b),
                Value::Int(i) => s.serialize_i64(*i),
                Value::Float(f) => s.serialize_f64(*f),
                Value::Str(b) => match b.as_str() {
                    Some(t) => s.serialize_str(t),
                    None => s.serialize_str(&b.to_string_lossy()),
                },
                Value::Array(a) => {
                    let mut seq = s.serialize_seq(Some(a.len()))?;
                    for v in a {
                        seq.serialize_element(v)?;
                    }
                    seq.end()
                }
                Value::Map(m) => {
                    let mut map = s.serialize_map(Some(m.len()))?;
                    for (k, v) in m {
                        map.serialize_entry(k, v)?;
                    }
                    map.end()
                }
                Value::Error(e) => s.serialize_str(&e.to_string()),
            }
        }
    }

    struct ValueVisitor;

    impl<'de> Visitor<'de> for ValueVisitor {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::Int(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(if v <= i64::MAX as u64 {
                Value::Int(v as i64)
            } else {
                Value::Float(v as f64)
            })
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(Value::Float(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::str(v))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
            Ok(Value::Str(Bytes::from_slice(v)))
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Nil)
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Nil)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            Value::deserialize(d)
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            Value::deserialize(d)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
            let mut v = Vec::with_capacity(a.size_hint().unwrap_or(0));
            while let Some(x) = a.next_element()? {
                v.push(x);
            }
            Ok(Value::Array(v))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
            let mut m: Vec<(Value, Value)> = Vec::with_capacity(a.size_hint().unwrap_or(0));
            while let Some((k, v)) = a.next_entry::<Value, Value>()? {
                if let Some(slot) = m.iter_mut().find(|(k2, _)| *k2 == k) {
                    slot.1 = v;
                } else {
                    m.push((k, v));
                }
            }
            Ok(Value::Map(m))
        }
        fn visit_enum<A: de::EnumAccess<'de>>(self, a: A) -> Result<Value, A::Error> {
            // YAML tags (`!foo bar`) arrive as enums: keep the tagged value, drop the tag.
            use de::VariantAccess;
            let (_tag, variant): (Value, _) = a.variant()?;
            variant.newtype_variant()
        }
    }

    impl<'de> Deserialize<'de> for Value {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
            d.deserialize_any(ValueVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_small() {
        assert!(
            std::mem::size_of::<Value>() <= 32,
            "{}",
            std::mem::size_of::<Value>()
        );
    }

    #[test]
    fn map_ops() {
        let mut v = Value::Nil;
        assert!(v.insert("a", Value::Int(1)));
        assert!(v.insert("b", Value::str("x")));
        assert!(v.insert("a", Value::Int(2)));
        assert_eq!(v.get("a"), Some(&Value::Int(2)));
        assert_eq!(v.get("b").and_then(Value::as_str), Some("x"));
        assert_eq!(v.remove("a"), Some(Value::Int(2)));
        assert_eq!(v.get("a"), None);
        let nested = Value::Map(vec![(Value::str("x"), v.clone())]);
        assert_eq!(nested.get_path("x.b").and_then(Value::as_str), Some("x"));
    }

    #[test]
    fn numbers_compare_across_subtypes() {
        assert_eq!(Value::Int(3), Value::Float(3.0));
        assert_ne!(Value::Int(3), Value::Float(3.5));
    }
}
