//! `json` (spec `lua-api.md` §3.8.6).
//!
//! `json.encode(v)` → string, or `nil, err` (`Internal`, context `"encode failed"`) for
//! sparse arrays, mixed tables, cycles, depth > 128 and table keys that are neither strings
//! nor integers. Rules: `nil` → `null`; integers as integers; floats in shortest round-trip
//! form **without exponent** (`1e-7` → `0.0000001`, `5.0` → `5`), NaN/±Inf → `null`; a table
//! with keys exactly `1..n` → array, the empty table → `[]`, string keys → object (keys are
//! written sorted, which upstream does not promise but makes output deterministic); error
//! objects → their Go-side string; functions, threads and other userdata → `null`. Strings
//! are escaped as JSON requires; invalid UTF-8 bytes become U+FFFD.
//!
//! `json.decode(s)` → value, or `nil, err`: non-string → `Invalid` "string expected", `""` →
//! `Invalid`, malformed → `Internal` (context `"decode failed"`). `null` → nil; numbers
//! without `.`/exponent decode to integers (falling back to floats beyond 64 bits), others to
//! floats. The decoder builds Lua values directly (no intermediate tree).
//!
//! `json.validate(schema, value)` / `json.validate_string(schema, json_text)` → `true` or
//! `false, err` (`Invalid`): the schema is a Lua table or JSON text (text schemas are parsed
//! once and cached, 100 entries); a nil schema or value, or non-JSON text, is `Invalid`. The
//! validator and its supported keywords: [`super::json_schema`].

use std::fmt::Write as _;

use mlua::{Lua, MultiValue, Table, Value};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use wippy_rt::{Error, Kind};

use super::errors::{self, nil_error};

/// Maximum nesting depth.
pub const MAX_DEPTH: usize = 128;

/// Encode a Lua value as JSON text.
///
/// Tables are walked on the Lua stack directly (private `raw` module), without creating an mlua reference
/// per key and value.
pub fn encode(v: &Value) -> Result<String, Error> {
    let mut out = String::with_capacity(64);
    if let Value::Table(t) = v
        && let Some(lua) = t.weak_lua().try_upgrade()
    {
        raw::encode_table(&lua, t, &mut out)?;
        return Ok(out);
    }
    let mut path = Vec::new();
    enc(v, &mut out, &mut path)?;
    Ok(out)
}

fn enc(v: &Value, out: &mut String, path: &mut Vec<*const std::ffi::c_void>) -> Result<(), Error> {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Number(f) => write_float(out, *f),
        Value::String(s) => write_str(out, &s.as_bytes()),
        Value::Table(t) => enc_table(t, out, path)?,
        Value::UserData(_) => match errors::as_error(v) {
            Some(e) => write_str(out, e.err.to_string().as_bytes()),
            None => out.push_str("null"),
        },
        _ => out.push_str("null"),
    }
    Ok(())
}

/// A float the way upstream's encoder writes it: no exponent, shortest digits.
pub fn write_float(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("null");
    } else if f == 0.0 {
        out.push('0');
    } else {
        // Rust's `Display` for f64 is the shortest round-trip representation, never in
        // exponent form, and omits `.0` for integral values.
        let _ = write!(out, "{f}");
    }
}

/// A JSON string literal for `b` (invalid UTF-8 → U+FFFD).
pub fn write_str(out: &mut String, b: &[u8]) {
    out.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        if !chunk.invalid().is_empty() {
            out.push('\u{FFFD}');
        }
    }
    out.push('"');
}

fn enc_table(
    t: &Table,
    out: &mut String,
    path: &mut Vec<*const std::ffi::c_void>,
) -> Result<(), Error> {
    let p = t.to_pointer();
    if path.contains(&p) {
        return Err(enc_err("circular reference detected"));
    }
    if path.len() >= MAX_DEPTH {
        return Err(enc_err(format!(
            "maximum nesting depth of {MAX_DEPTH} exceeded"
        )));
    }
    path.push(p);
    let mut ints: Vec<(i64, Value)> = Vec::new();
    let mut strs: Vec<(Vec<u8>, Value)> = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| enc_err(e.to_string()))?;
        match k {
            Value::Integer(i) => ints.push((i, v)),
            Value::String(s) => strs.push((s.as_bytes().to_vec(), v)),
            Value::Number(f) => {
                return Err(enc_err(format!("cannot encode table with float key {f}")));
            }
            other => {
                return Err(enc_err(format!(
                    "cannot encode table with {} key",
                    other.type_name()
                )));
            }
        }
    }
    if !ints.is_empty() && !strs.is_empty() {
        return Err(enc_err(
            "cannot encode mixed table (both array and object keys)",
        ));
    }
    if strs.is_empty() {
        // Array (the empty table included): keys must be exactly 1..n.
        ints.sort_unstable_by_key(|(k, _)| *k);
        if ints
            .iter()
            .enumerate()
            .any(|(i, (k, _))| *k != i as i64 + 1)
        {
            return Err(enc_err("cannot encode sparse array"));
        }
        out.push('[');
        for (i, (_, v)) in ints.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            enc(v, out, path)?;
        }
        out.push(']');
    } else {
        strs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out.push('{');
        for (i, (k, v)) in strs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_str(out, k);
            out.push(':');
            enc(v, out, path)?;
        }
        out.push('}');
    }
    path.pop();
    Ok(())
}

#[cold]
fn enc_err(msg: impl Into<String>) -> Error {
    Error::new(Kind::INTERNAL, msg).with_context("encode failed")
}

/// Decode JSON text into a Lua value: parsed into a [`wippy_rt::Value`] tree first (fast, pure
/// Rust), then built on the Lua stack in one protected call.
pub fn decode(lua: &Lua, text: &[u8]) -> Result<Value, Error> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let v = TreeSeed(0)
        .deserialize(&mut de)
        .map_err(|e| Error::new(Kind::INTERNAL, e.to_string()).with_context("decode failed"))?;
    de.end()
        .map_err(|e| Error::new(Kind::INTERNAL, e.to_string()).with_context("decode failed"))?;
    crate::lua::convert::to_lua(lua, &v)
        .map_err(|e| Error::new(Kind::INTERNAL, e.to_string()).with_context("decode failed"))
}

/// Serde seed that builds a [`wippy_rt::Value`] tree with JSON semantics: duplicate object keys
/// are kept in order (the last one wins when the Lua table is built), integers stay integers.
struct TreeSeed(usize);

impl<'de> DeserializeSeed<'de> for TreeSeed {
    type Value = wippy_rt::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<wippy_rt::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TreeSeed {
    type Value = wippy_rt::Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<wippy_rt::Value, E> {
        Ok(wippy_rt::Value::Nil)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<wippy_rt::Value, E> {
        Ok(wippy_rt::Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<wippy_rt::Value, E> {
        Ok(wippy_rt::Value::Int(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<wippy_rt::Value, E> {
        Ok(if v <= i64::MAX as u64 {
            wippy_rt::Value::Int(v as i64)
        } else {
            wippy_rt::Value::Float(v as f64)
        })
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<wippy_rt::Value, E> {
        Ok(wippy_rt::Value::Float(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<wippy_rt::Value, E> {
        Ok(wippy_rt::Value::str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<wippy_rt::Value, A::Error> {
        if self.0 >= MAX_DEPTH {
            return Err(serde::de::Error::custom("maximum nesting depth exceeded"));
        }
        let mut v = Vec::with_capacity(a.size_hint().unwrap_or(0));
        while let Some(x) = a.next_element_seed(TreeSeed(self.0 + 1))? {
            v.push(x);
        }
        Ok(wippy_rt::Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<wippy_rt::Value, A::Error> {
        if self.0 >= MAX_DEPTH {
            return Err(serde::de::Error::custom("maximum nesting depth exceeded"));
        }
        let mut m = Vec::with_capacity(a.size_hint().unwrap_or(0));
        while let Some(k) = a.next_key::<String>()? {
            let v = a.next_value_seed(TreeSeed(self.0 + 1))?;
            m.push((wippy_rt::Value::from(k), v));
        }
        Ok(wippy_rt::Value::Map(m))
    }
}

/// Serde seed that builds Lua values directly (shared with `yaml`).
pub struct LuaSeed<'a> {
    /// Target state.
    pub lua: &'a Lua,
    /// Current nesting depth.
    pub depth: usize,
}

impl<'de> DeserializeSeed<'de> for LuaSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn lerr<E: serde::de::Error>(e: mlua::Error) -> E {
    E::custom(e.to_string())
}

impl<'de> Visitor<'de> for LuaSeed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Integer(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(if v <= i64::MAX as u64 {
            Value::Integer(v as i64)
        } else {
            Value::Number(v as f64)
        })
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.lua.create_string(v).map(Value::String).map_err(lerr)
    }
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Value, E> {
        self.lua.create_string(v).map(Value::String).map_err(lerr)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom("maximum nesting depth exceeded"));
        }
        let t = self
            .lua
            .create_table_with_capacity(a.size_hint().unwrap_or(0), 0)
            .map_err(lerr)?;
        let mut i = 1i64;
        while let Some(v) = a.next_element_seed(LuaSeed {
            lua: self.lua,
            depth: self.depth + 1,
        })? {
            t.raw_set(i, v).map_err(lerr)?;
            i += 1;
        }
        Ok(Value::Table(t))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom("maximum nesting depth exceeded"));
        }
        let t = self
            .lua
            .create_table_with_capacity(0, a.size_hint().unwrap_or(0))
            .map_err(lerr)?;
        while let Some(k) = a.next_key_seed(LuaSeed {
            lua: self.lua,
            depth: self.depth + 1,
        })? {
            let v = a.next_value_seed(LuaSeed {
                lua: self.lua,
                depth: self.depth + 1,
            })?;
            if !k.is_nil() {
                t.raw_set(k, v).map_err(lerr)?;
            }
        }
        Ok(Value::Table(t))
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, a: A) -> Result<Value, A::Error> {
        // YAML tags (`!tag value`) arrive as enums: keep the value, drop the tag.
        use serde::de::VariantAccess;
        let (_tag, variant): (serde::de::IgnoredAny, _) = a.variant()?;
        variant.newtype_variant_seed(self)
    }
}

/// Stack-level JSON encoder (the hot path).
mod raw {
    use std::ffi::{c_int, c_void};
    use std::fmt::Write as _;

    use mlua::{Lua, Table, Value, ffi};
    use wippy_rt::Error;

    use super::{MAX_DEPTH, enc_err, write_float, write_str};
    use crate::lua::modules::errors;

    pub(super) fn encode_table(lua: &Lua, t: &Table, out: &mut String) -> Result<(), Error> {
        let root = Value::Table(t.clone());
        lua.exec_raw_lua(|raw| {
            let state = raw.state();
            // SAFETY: the state lock is held (exec_raw_lua). Only API calls that cannot raise
            // are used: lua_checkstack (failure by return value), lua_next on tables that are
            // not modified, lua_rawget/lua_rawgeti/lua_pushvalue/lua_settop/lua_type/lua_to*
            // (no allocation; lua_tolstring only on string values), and mlua's push_value /
            // pop_value, which report errors by value. No metamethod or Lua code runs. The
            // stack top is restored on every path.
            unsafe {
                let top = ffi::lua_gettop(state);
                if ffi::lua_checkstack(state, 8) == 0 {
                    return Err(enc_err("Lua stack overflow"));
                }
                if let Err(e) = raw.push_value(&root) {
                    ffi::lua_settop(state, top);
                    return Err(enc_err(e.to_string()));
                }
                let mut path = Vec::new();
                let r = enc(raw, state, ffi::lua_gettop(state), out, &mut path);
                ffi::lua_settop(state, top);
                r
            }
        })
    }

    /// # Safety
    /// See `encode_table`; `idx` is a valid absolute index.
    unsafe fn string_at<'a>(state: *mut ffi::lua_State, idx: c_int) -> &'a [u8] {
        let mut len = 0usize;
        // SAFETY: the value at `idx` is a string; its bytes stay valid while it is on the stack.
        unsafe {
            let p = ffi::lua_tolstring(state, idx, &mut len);
            std::slice::from_raw_parts(p as *const u8, len)
        }
    }

    /// # Safety
    /// See `encode_table`.
    unsafe fn enc(
        raw: &mlua::state::RawLua,
        state: *mut ffi::lua_State,
        idx: c_int,
        out: &mut String,
        path: &mut Vec<*const c_void>,
    ) -> Result<(), Error> {
        // SAFETY: per the function contract.
        unsafe {
            match ffi::lua_type(state, idx) {
                ffi::LUA_TNIL => out.push_str("null"),
                ffi::LUA_TBOOLEAN => out.push_str(if ffi::lua_toboolean(state, idx) != 0 {
                    "true"
                } else {
                    "false"
                }),
                ffi::LUA_TNUMBER => {
                    if ffi::lua_isinteger(state, idx) != 0 {
                        let _ = write!(out, "{}", ffi::lua_tointeger(state, idx));
                    } else {
                        write_float(out, ffi::lua_tonumber(state, idx));
                    }
                }
                ffi::LUA_TSTRING => write_str(out, string_at(state, idx)),
                ffi::LUA_TTABLE => table(raw, state, idx, out, path)?,
                ffi::LUA_TUSERDATA => {
                    ffi::lua_pushvalue(state, idx);
                    let v = raw.pop_value();
                    match errors::as_error(&v) {
                        Some(e) => write_str(out, e.err.to_string().as_bytes()),
                        None => out.push_str("null"),
                    }
                }
                _ => out.push_str("null"),
            }
        }
        Ok(())
    }

    /// # Safety
    /// See `encode_table`; the value at `idx` is a table.
    unsafe fn table(
        raw: &mlua::state::RawLua,
        state: *mut ffi::lua_State,
        idx: c_int,
        out: &mut String,
        path: &mut Vec<*const c_void>,
    ) -> Result<(), Error> {
        // SAFETY: per the function contract.
        unsafe {
            let p = ffi::lua_topointer(state, idx);
            if path.contains(&p) {
                return Err(enc_err("circular reference detected"));
            }
            if path.len() >= MAX_DEPTH {
                return Err(enc_err(format!(
                    "maximum nesting depth of {MAX_DEPTH} exceeded"
                )));
            }
            if ffi::lua_checkstack(state, 4) == 0 {
                return Err(enc_err("Lua stack overflow"));
            }
            path.push(p);
            let base = ffi::lua_gettop(state);
            // Pass 1: classify keys; string keys are kept as stack slots above `base`.
            let mut ints: Vec<i64> = Vec::new();
            let mut nstr: c_int = 0;
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, idx) != 0 {
                ffi::lua_settop(state, -2); // drop the value, keep the key on top
                match ffi::lua_type(state, -1) {
                    ffi::LUA_TNUMBER if ffi::lua_isinteger(state, -1) != 0 => {
                        ints.push(ffi::lua_tointeger(state, -1))
                    }
                    ffi::LUA_TSTRING => {
                        if ffi::lua_checkstack(state, 4) == 0 {
                            ffi::lua_settop(state, base);
                            return Err(enc_err("table too large to encode"));
                        }
                        // Keep a copy: stack becomes [... saved keys ..., key, key]; `lua_next`
                        // continues from the top copy and pops it, the lower one stays saved.
                        ffi::lua_pushvalue(state, -1);
                        nstr += 1;
                    }
                    ffi::LUA_TNUMBER => {
                        let f = ffi::lua_tonumber(state, -1);
                        ffi::lua_settop(state, base);
                        return Err(enc_err(format!("cannot encode table with float key {f}")));
                    }
                    t => {
                        let name = std::ffi::CStr::from_ptr(ffi::lua_typename(state, t))
                            .to_string_lossy()
                            .into_owned();
                        ffi::lua_settop(state, base);
                        return Err(enc_err(format!("cannot encode table with {name} key")));
                    }
                }
            }
            let r = if !ints.is_empty() && nstr > 0 {
                Err(enc_err(
                    "cannot encode mixed table (both array and object keys)",
                ))
            } else if nstr == 0 {
                ints.sort_unstable();
                if ints.iter().enumerate().any(|(i, k)| *k != i as i64 + 1) {
                    Err(enc_err("cannot encode sparse array"))
                } else {
                    out.push('[');
                    let mut r = Ok(());
                    for i in 1..=ints.len() {
                        if i > 1 {
                            out.push(',');
                        }
                        ffi::lua_rawgeti(state, idx, i as ffi::lua_Integer);
                        r = enc(raw, state, ffi::lua_gettop(state), out, path);
                        ffi::lua_settop(state, -2);
                        if r.is_err() {
                            break;
                        }
                    }
                    out.push(']');
                    r
                }
            } else {
                let mut slots: Vec<c_int> = (base + 1..=base + nstr).collect();
                slots.sort_unstable_by(|a, b| string_at(state, *a).cmp(string_at(state, *b)));
                out.push('{');
                let mut r = Ok(());
                for (n, slot) in slots.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    write_str(out, string_at(state, *slot));
                    out.push(':');
                    ffi::lua_pushvalue(state, *slot);
                    ffi::lua_rawget(state, idx);
                    r = enc(raw, state, ffi::lua_gettop(state), out, path);
                    ffi::lua_settop(state, -2);
                    if r.is_err() {
                        break;
                    }
                }
                out.push('}');
                r
            };
            ffi::lua_settop(state, base);
            path.pop();
            r
        }
    }
}

fn one(v: Value) -> MultiValue {
    MultiValue::from_vec(vec![v, Value::Nil])
}

/// Parsed text schemas (`json.validate` with a JSON string schema).
static SCHEMA_CACHE: std::sync::LazyLock<
    std::sync::Mutex<lru::LruCache<String, std::sync::Arc<serde_json::Value>>>,
> = std::sync::LazyLock::new(|| {
    // 100 entries, as upstream's compiled-schema cache.
    std::sync::Mutex::new(lru::LruCache::new(
        std::num::NonZeroUsize::new(100).expect("non-zero"),
    ))
});

fn to_json_value(v: &Value) -> Result<serde_json::Value, Error> {
    let rv = crate::lua::convert::from_lua(v)?;
    serde_json::to_value(&rv)
        .map_err(|e| Error::invalid(format!("value cannot be represented as JSON: {e}")))
}

fn schema_arg(v: Option<&Value>) -> Result<std::sync::Arc<serde_json::Value>, Error> {
    match v {
        None | Some(Value::Nil) => Err(Error::invalid("schema is required")),
        Some(Value::String(s)) => {
            let text = s.to_string_lossy();
            let mut cache = SCHEMA_CACHE.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(j) = cache.get(&text) {
                return Ok(j.clone());
            }
            let j: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::invalid(format!("invalid schema JSON: {e}")))?;
            let j = std::sync::Arc::new(j);
            cache.put(text, j.clone());
            Ok(j)
        }
        Some(t @ Value::Table(_)) => Ok(std::sync::Arc::new(to_json_value(t)?)),
        Some(other) => Err(Error::invalid(format!(
            "schema must be a table or JSON string, got {}",
            other.type_name()
        ))),
    }
}

fn validation_result(
    lua: &Lua,
    schema: &serde_json::Value,
    v: &serde_json::Value,
) -> mlua::Result<MultiValue> {
    match super::json_schema::validate(schema, v) {
        Ok(()) => Ok(MultiValue::from_vec(vec![Value::Boolean(true)])),
        Err(msg) => Ok(MultiValue::from_vec(vec![
            Value::Boolean(false),
            errors::error_value(lua, Error::invalid(format!("validation failed: {msg}")))?,
        ])),
    }
}

fn false_err(lua: &Lua, e: Error) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        Value::Boolean(false),
        errors::error_value(lua, e)?,
    ]))
}

/// The `json` module table.
pub fn build(lua: &Lua) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(0, 4)?;
    t.raw_set(
        "validate",
        lua.create_function(|lua, args: MultiValue| {
            let schema = match schema_arg(args.front()) {
                Ok(s) => s,
                Err(e) => return false_err(lua, e),
            };
            let v = match args.get(1) {
                None | Some(Value::Nil) => {
                    return false_err(lua, Error::invalid("value is required"));
                }
                Some(v) => match to_json_value(v) {
                    Ok(j) => j,
                    Err(e) => return false_err(lua, e),
                },
            };
            validation_result(lua, &schema, &v)
        })?,
    )?;
    t.raw_set(
        "validate_string",
        lua.create_function(|lua, args: MultiValue| {
            let schema = match schema_arg(args.front()) {
                Ok(s) => s,
                Err(e) => return false_err(lua, e),
            };
            let v: serde_json::Value = match args.get(1) {
                Some(Value::String(s)) => match serde_json::from_slice(&s.as_bytes()) {
                    Ok(j) => j,
                    Err(e) => return false_err(lua, Error::invalid(format!("invalid JSON: {e}"))),
                },
                _ => return false_err(lua, Error::invalid("JSON text must be a string")),
            };
            validation_result(lua, &schema, &v)
        })?,
    )?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, args: MultiValue| {
            let v = args.front().cloned().unwrap_or(Value::Nil);
            match encode(&v) {
                Ok(s) => Ok(one(Value::String(lua.create_string(s)?))),
                Err(e) => nil_error(lua, e),
            }
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, args: MultiValue| match args.front() {
            Some(Value::String(s)) => {
                let b = s.as_bytes();
                if b.is_empty() {
                    return nil_error(lua, Error::invalid("empty input"));
                }
                match decode(lua, &b) {
                    Ok(v) => Ok(one(v)),
                    Err(e) => nil_error(lua, e),
                }
            }
            _ => nil_error(lua, Error::invalid("string expected")),
        })?,
    )?;
    Ok(Value::Table(t))
}
