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
///
/// Tables are walked directly on the Lua stack (private `raw` module), which avoids creating an mlua
/// reference per key and value (≈5x faster than iterating with `Table::pairs`).
pub fn from_lua(v: &LuaValue) -> Result<Value, Error> {
    if let LuaValue::Table(t) = v
        && let Some(lua) = t.weak_lua().try_upgrade()
    {
        return raw::table_to_value(&lua, t);
    }
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
///
/// Arrays and maps without error values are built directly on the Lua stack (private `raw` module).
pub fn to_lua(lua: &Lua, v: &Value) -> mlua::Result<LuaValue> {
    if matches!(v, Value::Array(_) | Value::Map(_)) && !raw::contains_error(v) {
        return raw::value_to_lua(lua, v);
    }
    to_lua_slow(lua, v)
}

fn to_lua_slow(lua: &Lua, v: &Value) -> mlua::Result<LuaValue> {
    Ok(match v {
        Value::Nil | Value::Opaque(_) => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Int(i) => LuaValue::Integer(*i),
        Value::Float(f) => LuaValue::Number(*f),
        Value::Str(s) => LuaValue::String(lua.create_string(s.as_bytes())?),
        Value::Array(a) => {
            let t = lua.create_table_with_capacity(a.len(), 0)?;
            for (i, x) in a.iter().enumerate() {
                t.raw_set(i + 1, to_lua_slow(lua, x)?)?;
            }
            LuaValue::Table(t)
        }
        Value::Map(m) => {
            let t = lua.create_table_with_capacity(0, m.len())?;
            for (k, x) in m {
                t.raw_set(to_lua_slow(lua, k)?, to_lua_slow(lua, x)?)?;
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

/// Stack-level conversions (the hot path).
mod raw {
    use std::ffi::{c_int, c_void};

    use mlua::ffi;
    use mlua::{Lua, Table, Value as LuaValue};
    use wippy_rt::{Bytes, Error, Value};

    use super::{MAX_DEPTH, bad_key, cycle, sequence_or_map, too_deep};
    use crate::lua::modules::errors;

    /// Stack slots one table level needs (table, key, value, scratch).
    const SLOTS_PER_LEVEL: c_int = 4;

    /// True if `v` contains an error value (those need mlua to build userdata).
    pub(super) fn contains_error(v: &Value) -> bool {
        match v {
            Value::Error(_) => true,
            Value::Array(a) => a.iter().any(contains_error),
            Value::Map(m) => m
                .iter()
                .any(|(k, x)| contains_error(k) || contains_error(x)),
            _ => false,
        }
    }

    pub(super) fn table_to_value(lua: &Lua, t: &Table) -> Result<Value, Error> {
        let root = LuaValue::Table(t.clone());
        lua.exec_raw_lua(|raw| {
            let state = raw.state();
            // SAFETY: we hold the state lock (exec_raw_lua). Every API call below is one that
            // cannot raise a Lua error: lua_checkstack reports failure by return value;
            // push_value of a table reference only copies a stack slot; lua_next on a table
            // we do not modify cannot hit "invalid key"; lua_type/lua_to* do not allocate
            // (lua_tolstring is only called on values of string type, so no conversion);
            // raw.pop_value for userdata creates an mlua reference, which reports errors by
            // value. No Lua code runs (no metamethods: raw traversal only). The stack top is
            // restored before returning on every path.
            unsafe {
                let top = ffi::lua_gettop(state);
                if ffi::lua_checkstack(state, SLOTS_PER_LEVEL) == 0 {
                    return Err(Error::internal(
                        "Lua stack overflow while converting a value",
                    ));
                }
                if let Err(e) = raw.push_value(&root) {
                    ffi::lua_settop(state, top);
                    return Err(Error::internal(format!("converting a value: {e}")));
                }
                let mut path: Vec<*const c_void> = Vec::new();
                let r = walk(raw, state, ffi::lua_gettop(state), &mut path);
                ffi::lua_settop(state, top);
                r
            }
        })
    }

    /// # Safety
    /// `idx` is a valid absolute stack index of `state`, locked by the caller; see the SAFETY
    /// argument in [`table_to_value`].
    unsafe fn walk(
        raw: &mlua::state::RawLua,
        state: *mut ffi::lua_State,
        idx: c_int,
        path: &mut Vec<*const c_void>,
    ) -> Result<Value, Error> {
        // SAFETY: per the function contract.
        unsafe {
            Ok(match ffi::lua_type(state, idx) {
                ffi::LUA_TNIL => Value::Nil,
                ffi::LUA_TBOOLEAN => Value::Bool(ffi::lua_toboolean(state, idx) != 0),
                ffi::LUA_TNUMBER => {
                    if ffi::lua_isinteger(state, idx) != 0 {
                        Value::Int(ffi::lua_tointeger(state, idx))
                    } else {
                        Value::Float(ffi::lua_tonumber(state, idx))
                    }
                }
                ffi::LUA_TSTRING => Value::Str(Bytes::from_slice(string_at(state, idx))),
                ffi::LUA_TTABLE => table(raw, state, idx, path)?,
                ffi::LUA_TUSERDATA => {
                    ffi::lua_pushvalue(state, idx);
                    let v = raw.pop_value();
                    match errors::as_error(&v) {
                        Some(e) => Value::Error(e.to_rt()),
                        None => Value::Nil,
                    }
                }
                _ => Value::Nil,
            })
        }
    }

    /// # Safety
    /// The value at `idx` is a string.
    unsafe fn string_at<'a>(state: *mut ffi::lua_State, idx: c_int) -> &'a [u8] {
        let mut len = 0usize;
        // SAFETY: the value is a string (checked by the caller), so lua_tolstring returns a
        // pointer to its `len` bytes, valid while the value stays on the stack — the slice is
        // copied before the slot is popped.
        unsafe {
            let p = ffi::lua_tolstring(state, idx, &mut len);
            std::slice::from_raw_parts(p as *const u8, len)
        }
    }

    /// # Safety
    /// As [`walk`]; the value at `idx` is a table.
    unsafe fn table(
        raw: &mlua::state::RawLua,
        state: *mut ffi::lua_State,
        idx: c_int,
        path: &mut Vec<*const c_void>,
    ) -> Result<Value, Error> {
        // SAFETY: per the function contract; see `table_to_value`.
        unsafe {
            let p = ffi::lua_topointer(state, idx);
            if path.contains(&p) {
                return Err(cycle());
            }
            if path.len() >= MAX_DEPTH {
                return Err(too_deep());
            }
            if ffi::lua_checkstack(state, SLOTS_PER_LEVEL) == 0 {
                return Err(Error::internal(
                    "Lua stack overflow while converting a value",
                ));
            }
            path.push(p);
            let mut arr: Vec<Value> = Vec::with_capacity(ffi::lua_rawlen(state, idx));
            let mut map: Option<Vec<(Value, Value)>> = None;
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, idx) != 0 {
                let top = ffi::lua_gettop(state);
                let v = walk(raw, state, top, path)?;
                let kidx = top - 1;
                let in_seq = map.is_none()
                    && ffi::lua_type(state, kidx) == ffi::LUA_TNUMBER
                    && ffi::lua_isinteger(state, kidx) != 0
                    && ffi::lua_tointeger(state, kidx) == arr.len() as i64 + 1;
                if in_seq {
                    arr.push(v);
                } else {
                    let key = match ffi::lua_type(state, kidx) {
                        ffi::LUA_TSTRING => Value::Str(Bytes::from_slice(string_at(state, kidx))),
                        ffi::LUA_TNUMBER if ffi::lua_isinteger(state, kidx) != 0 => {
                            Value::Int(ffi::lua_tointeger(state, kidx))
                        }
                        ffi::LUA_TNUMBER => Value::Float(ffi::lua_tonumber(state, kidx)),
                        t => {
                            let name = std::ffi::CStr::from_ptr(ffi::lua_typename(state, t));
                            return Err(bad_key(&name.to_string_lossy()));
                        }
                    };
                    let m = map.get_or_insert_with(|| {
                        std::mem::take(&mut arr)
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::Int(i as i64 + 1), v))
                            .collect()
                    });
                    m.push((key, v));
                }
                ffi::lua_settop(state, top - 1); // pop the value, keep the key
            }
            path.pop();
            Ok(match map {
                None => Value::Array(arr),
                Some(m) => sequence_or_map(m),
            })
        }
    }

    pub(super) fn value_to_lua(lua: &Lua, v: &Value) -> mlua::Result<LuaValue> {
        // SAFETY: `exec_raw` runs the closure in protected mode, so a memory error raised by
        // lua_createtable/lua_pushlstring/lua_rawset unwinds to mlua's pcall. The recursion
        // holds only shared references (no values with destructors live across API calls),
        // so a longjmp through these frames skips no drop. The closure leaves exactly one
        // value (the result) above the arguments, which `exec_raw` returns.
        unsafe { lua.exec_raw::<LuaValue>((), |state| push(state, v, 0)) }
    }

    /// # Safety
    /// Protected mode; see `value_to_lua`.
    unsafe fn push(state: *mut ffi::lua_State, v: &Value, depth: usize) {
        // SAFETY: per the function contract. lua_checkstack before each nesting level keeps
        // the stack within bounds; lua_checkstack failure raises inside protected mode.
        unsafe {
            if depth > MAX_DEPTH {
                ffi::lua_pushstring(state, c"value nesting exceeds the maximum depth".as_ptr());
                ffi::lua_error(state);
            }
            match v {
                Value::Nil | Value::Opaque(_) | Value::Error(_) => ffi::lua_pushnil(state),
                Value::Bool(b) => ffi::lua_pushboolean(state, *b as c_int),
                Value::Int(i) => ffi::lua_pushinteger(state, *i),
                Value::Float(f) => ffi::lua_pushnumber(state, *f),
                Value::Str(s) => {
                    ffi::lua_pushlstring(state, s.as_bytes().as_ptr() as *const _, s.len());
                }
                Value::Array(a) => {
                    ffi::luaL_checkstack(
                        state,
                        SLOTS_PER_LEVEL,
                        c"value too deeply nested".as_ptr(),
                    );
                    ffi::lua_createtable(state, a.len().min(c_int::MAX as usize) as c_int, 0);
                    for (i, x) in a.iter().enumerate() {
                        push(state, x, depth + 1);
                        ffi::lua_rawseti(state, -2, i as ffi::lua_Integer + 1);
                    }
                }
                Value::Map(m) => {
                    ffi::luaL_checkstack(
                        state,
                        SLOTS_PER_LEVEL,
                        c"value too deeply nested".as_ptr(),
                    );
                    ffi::lua_createtable(state, 0, m.len().min(c_int::MAX as usize) as c_int);
                    for (k, x) in m {
                        push(state, k, depth + 1);
                        if ffi::lua_type(state, -1) == ffi::LUA_TNIL {
                            ffi::lua_pop(state, 1);
                            continue;
                        }
                        push(state, x, depth + 1);
                        ffi::lua_rawset(state, -3);
                    }
                }
            }
        }
    }
}
