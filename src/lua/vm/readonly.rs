//! Read-only shared tables.
//!
//! Upstream shares the standard tables (`string`, `table`, `math`, …) and the module tables
//! between processes as *immutable* tables: writing to them raises. Our patched Lua
//! (`vendor/lua-src/PATCHES.md` §2) has the same notion: a per-table read-only flag (bit 6 of
//! `Table.flags`) checked on every write path — assignment to an existing or a new key,
//! `rawset`, `table.insert`/`lua_seti`, `setmetatable` — which raise
//! `attempt to modify read-only table`. Reads, `pairs`, `next`, `#` and `rawget` are
//! unaffected and cost nothing extra.
//!
//! Invariant: every table reachable from a state's base globals is read-only, so a process
//! can write only into its own environment table, and a recycled state carries nothing from
//! one process to the next.

use std::ffi::c_int;

use mlua::{Lua, Table, Value};

/// The message of the error raised by a write to a read-only table.
pub const READONLY_MESSAGE: &str = "attempt to modify read-only table";

unsafe extern "C-unwind" {
    /// Added by the wippy patch to `lapi.c`: set or clear the read-only flag of the table at
    /// `idx`.
    pub(crate) fn lua_setreadonly(state: *mut mlua::ffi::lua_State, idx: c_int, on: c_int);
    /// Added by the wippy patch to `lapi.c`: whether the table at `idx` is read-only.
    pub(crate) fn lua_isreadonly(state: *mut mlua::ffi::lua_State, idx: c_int) -> c_int;
}

/// Mark `t` read-only (or writable again with `on = false`).
pub fn set_readonly(lua: &Lua, t: &Table, on: bool) -> mlua::Result<()> {
    // SAFETY: `exec_raw` pushes `t` onto the state's stack and runs the closure in protected
    // mode with the stack holding exactly that argument at index -1; `lua_setreadonly` only
    // flips a bit in the table header (it cannot raise or allocate) and we pop the argument
    // to leave the stack as we found it.
    unsafe {
        lua.exec_raw::<()>(t, |state| {
            lua_setreadonly(state, -1, on as c_int);
            mlua::ffi::lua_pop(state, 1);
        })
    }
}

/// Mark `real` read-only and return it.
pub fn readonly(lua: &Lua, real: Table) -> mlua::Result<Table> {
    set_readonly(lua, &real, true)?;
    Ok(real)
}

/// Freeze a module value: a table and every table reachable through its fields (not through
/// metatables) become read-only. Anything else is returned as is.
pub fn freeze(lua: &Lua, v: Value) -> mlua::Result<Value> {
    if let Value::Table(t) = &v {
        let mut seen = Vec::new();
        freeze_table(lua, t, &mut seen)?;
    }
    Ok(v)
}

fn freeze_table(lua: &Lua, t: &Table, seen: &mut Vec<*const std::ffi::c_void>) -> mlua::Result<()> {
    let p = t.to_pointer();
    if seen.contains(&p) {
        return Ok(());
    }
    seen.push(p);
    let mut nested = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        if let (_, Value::Table(inner)) = pair? {
            nested.push(inner);
        }
    }
    for inner in &nested {
        freeze_table(lua, inner, seen)?;
    }
    set_readonly(lua, t, true)
}
