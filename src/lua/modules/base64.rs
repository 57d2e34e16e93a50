//! `base64` (spec `lua-api.md` §3.8.8): standard alphabet, padded, binary safe.
//!
//! `encode(s)` → string; `decode(s)` → string or `nil, err` (`Invalid` "decode failed";
//! padding is required). A non-string argument — numbers included — gives `nil, err`
//! (`Invalid` "string expected"). Success returns a single value.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mlua::{Lua, MultiValue, Value};
use wippy_rt::Kind;

use super::errors::nil_err;

fn one(v: Value) -> MultiValue {
    MultiValue::from_vec(vec![v])
}

/// The `base64` module table.
pub fn build(lua: &Lua) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(0, 2)?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, args: MultiValue| match args.front() {
            Some(Value::String(s)) => Ok(one(Value::String(
                lua.create_string(STANDARD.encode(s.as_bytes()))?,
            ))),
            _ => nil_err(lua, Kind::INVALID, "string expected"),
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, args: MultiValue| match args.front() {
            Some(Value::String(s)) => match STANDARD.decode(s.as_bytes()) {
                Ok(b) => Ok(one(Value::String(lua.create_string(b)?))),
                Err(_) => nil_err(lua, Kind::INVALID, "decode failed"),
            },
            _ => nil_err(lua, Kind::INVALID, "string expected"),
        })?,
    )?;
    Ok(Value::Table(t))
}
