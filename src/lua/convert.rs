//! Lua ↔ [`wippy_rt::Value`] conversion (spec `lua-api.md` §3.4): the message hot path.
//!
//! Lua → Value ([`from_lua`]) is a **deep copy**:
//! - nil, booleans, integers, floats (subtypes kept), strings (bytes, binary safe);
//! - a table whose keys are exactly `1..n` → `Array` (the empty table → empty `Array`);
//!   any other table → `Map` with string/integer/float keys (boolean or table keys are an
//!   error); key order is Lua's traversal order;
//! - error objects → `Value::Error` (the structured error is shared, not copied);
//! - functions, threads, other userdata, light userdata → `Nil` (upstream's `ExportPayload`
//!   drops them when a value crosses a process boundary);
//! - a table reached again while it is being copied (a cycle) and nesting deeper than
//!   [`MAX_DEPTH`] are errors (`Invalid`); a table shared by two branches is copied twice.
//!
//! Value → Lua ([`to_lua`]) builds fresh tables (arrays pre-sized), error objects from
//! `Value::Error`, and `nil` for opaque values.
//!
//! Algorithm: one `lua_next` traversal per table. Entries arriving as integer keys 1, 2, 3, …
//! in order (the array part comes first in Lua's traversal) are appended to an array; the
//! first key that breaks the sequence switches to map mode. A map whose keys turn out to be
//! exactly the integers `1..n` in another order is converted back to an array at the end.

use std::ffi::c_void;

use mlua::{Lua, Table, Value as LuaValue};
use wippy_rt::{Bytes, Error, Value};

use crate::lua::modules::errors;

/// Maximum table nesting depth (as upstream's JSON encoder).
pub const MAX_DEPTH: usize = 128;

/// Convert a Lua value to a transferable [`Value`] (deep copy, see the module docs).
pub fn from_lua(v: &LuaValue) -> Result<Value, Error> {
    let mut path = Vec::new();
    conv(v, &mut path)
}

fn conv(v: &LuaValue, path: &mut Vec<*const c_void>) -> Result<Value, Error> {
    Ok(match v {
        LuaValue::Nil => Value::Nil,
        LuaValue::Boolean(b) => Value::Bool(*b),
        LuaValue::Integer(i) => Value::Int(*i),
        LuaValue::Number(n) => Value::Float(*n),
        LuaValue::String(s) => Value::Str(Bytes::from_slice(&s.as_bytes())),
        LuaValue::Table(t) => table(t, path)?,
        LuaValue::UserData(_) => match errors::as_error(v) {
            Some(e) => Value::Error(e.to_rt()),
            None => Value::Nil,
        },
        _ => Value::Nil,
    })
}

fn table(t: &Table, path: &mut Vec<*const c_void>) -> Result<Value, Error> {
    let p = t.to_pointer();
    if path.contains(&p) {
        return Err(cycle());
    }
    if path.len() >= MAX_DEPTH {
        return Err(too_deep());
    }
    path.push(p);
    let mut arr: Vec<Value> = Vec::new();
    let mut map: Option<Vec<(Value, Value)>> = None;
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair.map_err(lua_err)?;
        let cv = conv(&v, path)?;
        match (&mut map, &k) {
            (None, LuaValue::Integer(i)) if *i == arr.len() as i64 + 1 => arr.push(cv),
            _ => {
                let m = map.get_or_insert_with(|| {
                    std::mem::take(&mut arr)
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::Int(i as i64 + 1), v))
                        .collect()
                });
                m.push((key(&k)?, cv));
            }
        }
    }
    path.pop();
    Ok(match map {
        None => Value::Array(arr),
        Some(m) => sequence_or_map(m),
    })
}

/// A map whose keys are exactly the integers `1..n` (any order) becomes an array.
fn sequence_or_map(mut m: Vec<(Value, Value)>) -> Value {
    let n = m.len() as i64;
    if m.iter()
        .all(|(k, _)| matches!(k, Value::Int(i) if *i >= 1 && *i <= n))
    {
        m.sort_by_key(|(k, _)| match k {
            Value::Int(i) => *i,
            _ => 0,
        });
        if m.iter()
            .enumerate()
            .all(|(i, (k, _))| matches!(k, Value::Int(j) if *j == i as i64 + 1))
        {
            return Value::Array(m.into_iter().map(|(_, v)| v).collect());
        }
    }
    Value::Map(m)
}

fn key(k: &LuaValue) -> Result<Value, Error> {
    match k {
        LuaValue::String(s) => Ok(Value::Str(Bytes::from_slice(&s.as_bytes()))),
        LuaValue::Integer(i) => Ok(Value::Int(*i)),
        LuaValue::Number(n) => Ok(Value::Float(*n)),
        other => Err(bad_key(other.type_name())),
    }
}

/// Convert a [`Value`] into a Lua value of `lua` (fresh tables; opaque values become nil).
pub fn to_lua(lua: &Lua, v: &Value) -> mlua::Result<LuaValue> {
    Ok(match v {
        Value::Nil | Value::Opaque(_) => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Int(i) => LuaValue::Integer(*i),
        Value::Float(f) => LuaValue::Number(*f),
        Value::Str(s) => LuaValue::String(lua.create_string(s.as_bytes())?),
        Value::Array(a) => {
            let t = lua.create_table_with_capacity(a.len(), 0)?;
            for (i, x) in a.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, x)?)?;
            }
            LuaValue::Table(t)
        }
        Value::Map(m) => {
            let t = lua.create_table_with_capacity(0, m.len())?;
            for (k, x) in m {
                t.raw_set(to_lua(lua, k)?, to_lua(lua, x)?)?;
            }
            LuaValue::Table(t)
        }
        Value::Error(e) => errors::error_value_arc(lua, e.clone())?,
    })
}

/// Convert several values (call arguments) into a Lua multi-value.
pub fn to_lua_multi(lua: &Lua, vs: &[Value]) -> mlua::Result<mlua::MultiValue> {
    vs.iter().map(|v| to_lua(lua, v)).collect()
}

#[cold]
fn cycle() -> Error {
    Error::invalid("cannot convert a self-referencing table")
}

#[cold]
fn too_deep() -> Error {
    Error::invalid(format!(
        "table nesting exceeds the maximum depth of {MAX_DEPTH}"
    ))
}

#[cold]
fn bad_key(ty: &str) -> Error {
    Error::invalid(format!("cannot convert a table with a {ty} key"))
}

#[cold]
fn lua_err(e: mlua::Error) -> Error {
    Error::internal(format!("reading table: {e}"))
}
