//! `env` module (in progress).

use mlua::{Lua, Value};

/// The `env` module value.
pub fn build(lua: &Lua) -> mlua::Result<Value> {
    Ok(Value::Table(lua.create_table()?))
}
