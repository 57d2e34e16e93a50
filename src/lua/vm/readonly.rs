//! Read-only views of shared tables.
//!
//! Upstream shares the standard tables (`string`, `table`, `math`, …) and the module tables
//! between processes as *immutable* tables: writing to them raises. Lua 5.4 has no read-only
//! flag, so each shared table is exposed through an empty proxy table whose metatable forwards
//! reads (`__index`), iteration (`__pairs`) and length (`__len`) to the real table and rejects
//! writes (`__newindex`). `__metatable = false` hides the real table from `getmetatable`, so
//! user code can never reach it and mutate it.
//!
//! Invariant: the real table is reachable only from Rust (and from the proxy's metatable,
//! which user code cannot obtain), so a recycled state can never carry a change made by one
//! process into the next one.
//!
//! Cost: a read through the proxy is one extra table lookup plus the `__index` dispatch
//! (a few ns); `rawget(proxy, k)` and `next(proxy)` see an empty table (documented deviation).

use mlua::{Function, Lua, Table, Value};

/// Registry key of the shared proxy metatable pieces (the `__newindex`/`__pairs`/`__len`
/// functions are created once per state and reused by every proxy).
const RO_FNS_KEY: &str = "wippy.ro_fns";

/// The message of the error raised by a write to a read-only table.
pub const READONLY_MESSAGE: &str = "attempt to modify read-only table";

fn ro_functions(lua: &Lua) -> mlua::Result<Table> {
    if let Ok(t) = lua.named_registry_value::<Table>(RO_FNS_KEY) {
        return Ok(t);
    }
    let fns = lua.create_table_with_capacity(0, 3)?;
    // `__newindex`: reject every write. Implemented in Lua so the error is a plain string
    // with the caller's position, exactly like upstream's immutable-table error.
    let newindex: Function = lua
        .load(format!(
            "return function() error({READONLY_MESSAGE:?}, 2) end"
        ))
        .set_name("=readonly")
        .eval()?;
    // `__pairs`: iterate the real table (held as the proxy metatable's `__index`).
    let pairs: Function = lua
        .load("local next, getmt = next, ...; return function(p) return next, getmt(p), nil end")
        .set_name("=readonly")
        .call(lua.create_function(|_, p: Table| Ok(real_of(&p)))?)?;
    let len: Function = lua
        .load("local getmt = ...; return function(p) return #getmt(p) end")
        .set_name("=readonly")
        .call(lua.create_function(|_, p: Table| Ok(real_of(&p)))?)?;
    fns.raw_set("newindex", newindex)?;
    fns.raw_set("pairs", pairs)?;
    fns.raw_set("len", len)?;
    lua.set_named_registry_value(RO_FNS_KEY, &fns)?;
    Ok(fns)
}

/// The real table behind a proxy (None for a plain table).
pub fn real_of(proxy: &Table) -> Option<Table> {
    let mt = proxy.metatable()?;
    match mt.raw_get::<Value>("__index") {
        Ok(Value::Table(t))
            if mt.raw_get::<Value>("__metatable").ok() == Some(Value::Boolean(false)) =>
        {
            Some(t)
        }
        _ => None,
    }
}

/// Wrap `real` in a read-only proxy (see the module docs).
pub fn readonly(lua: &Lua, real: Table) -> mlua::Result<Table> {
    let fns = ro_functions(lua)?;
    let mt = lua.create_table_with_capacity(0, 5)?;
    mt.raw_set("__index", real)?;
    mt.raw_set("__newindex", fns.raw_get::<Function>("newindex")?)?;
    mt.raw_set("__pairs", fns.raw_get::<Function>("pairs")?)?;
    mt.raw_set("__len", fns.raw_get::<Function>("len")?)?;
    mt.raw_set("__metatable", false)?;
    let proxy = lua.create_table_with_capacity(0, 0)?;
    proxy.set_metatable(Some(mt))?;
    Ok(proxy)
}

/// Wrap a module value: tables become read-only proxies, anything else is returned as is.
pub fn freeze(lua: &Lua, v: Value) -> mlua::Result<Value> {
    match v {
        Value::Table(t) => Ok(Value::Table(readonly(lua, t)?)),
        other => Ok(other),
    }
}
