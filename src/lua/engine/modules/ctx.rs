//! `ctx` (spec `lua-api.md` §3.8.5): read-only context values propagated from the spawner or
//! caller (`funcs.new():with_context{}`, process start context pairs).
//!
//! `ctx.get(key)` → `value, nil`, or `nil, err` (`Invalid` "empty key", `NotFound`
//! "key not found: <key>"); a non-string key raises. `ctx.all()` → `table, nil` (empty when
//! nothing is set).

use mlua::{Lua, MultiValue, Value as LuaValue};
use wippy_rt::Kind;

use super::super::core::with_core;
use super::super::yields::{ret1, ret2};
use crate::lua::convert;
use crate::lua::modules::errors::nil_err;
use crate::lua::vm::raise;

fn get(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let key = match args.front() {
        Some(LuaValue::String(s)) => s.to_string_lossy(),
        other => {
            let got = other.map(LuaValue::type_name).unwrap_or("no value");
            return raise::raise_msg(
                lua,
                format!("bad argument #1 to 'get' (string expected, got {got})"),
            );
        }
    };
    if key.is_empty() {
        return nil_err(lua, Kind::INVALID, "empty key");
    }
    let v = match with_core(|c| {
        c.context
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }) {
        Ok(v) => v,
        Err(e) => return nil_err(lua, Kind::INTERNAL, e.message()),
    };
    match v {
        Some(v) => Ok(ret2(convert::to_lua(lua, &v)?, LuaValue::Nil)),
        None => nil_err(lua, Kind::NOT_FOUND, format!("key not found: {key}")),
    }
}

fn all(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    let pairs = match with_core(|c| (*c.context).clone()) {
        Ok(p) => p,
        Err(e) => return nil_err(lua, Kind::INTERNAL, e.message()),
    };
    let t = lua.create_table_with_capacity(0, pairs.len())?;
    for (k, v) in &pairs {
        t.raw_set(k.as_str(), convert::to_lua(lua, v)?)?;
    }
    let _ = ret1;
    Ok(ret2(LuaValue::Table(t), LuaValue::Nil))
}

/// The `ctx` table.
pub(crate) fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 2)?;
    t.raw_set("get", raise::function(lua, get)?)?;
    t.raw_set("all", lua.create_function(all)?)?;
    Ok(LuaValue::Table(t))
}
