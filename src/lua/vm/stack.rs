//! Moving mlua values to and from a raw Lua stack, for C functions that do part of their
//! work through mlua.
//!
//! mlua pushes and pops values on the state's main stack (or its reference thread); a C
//! function runs on whichever thread called it. Both helpers go through the main stack and
//! `lua_xmove` (same state, so the move is a plain copy of the slot).

use std::ffi::c_int;

use mlua::{Lua, Value, ffi};

/// Push `v` onto `l`.
///
/// # Safety
/// `l` must be a live thread of `lua`'s state.
pub(crate) unsafe fn push_value(lua: &Lua, l: *mut ffi::lua_State, v: &Value) -> mlua::Result<()> {
    lua.exec_raw_lua(|raw| {
        // SAFETY: push on the main stack, then move to `l` (same state, caller contract).
        unsafe {
            let main = raw.state();
            if ffi::lua_checkstack(main, 2) == 0 || ffi::lua_checkstack(l, 1) == 0 {
                return Err(mlua::Error::runtime("stack overflow"));
            }
            raw.push_value(v)?;
            if main != l {
                ffi::lua_xmove(main, l, 1);
            }
            Ok(())
        }
    })
}

/// The value at `idx` of `l` as an mlua value.
///
/// # Safety
/// `l` must be a live thread of `lua`'s state and `idx` a valid index of it.
pub(crate) unsafe fn value_at(
    lua: &Lua,
    l: *mut ffi::lua_State,
    idx: c_int,
) -> mlua::Result<Value> {
    // SAFETY: `idx` is a valid index of `l` (caller contract); lua_absindex only reads the top.
    let idx = unsafe { ffi::lua_absindex(l, idx) };
    lua.exec_raw_lua(|raw| {
        // SAFETY: `l` and `raw.state()` belong to the same state; one value is moved and popped.
        unsafe {
            let main = raw.state();
            if ffi::lua_checkstack(main, 2) == 0 || ffi::lua_checkstack(l, 1) == 0 {
                return Err(mlua::Error::runtime("stack overflow"));
            }
            ffi::lua_pushvalue(l, idx);
            if main != l {
                ffi::lua_xmove(l, main, 1);
            }
            Ok(raw.pop_value())
        }
    })
}
