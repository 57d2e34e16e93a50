//! How blocking module functions suspend their task (spec `runtime-internals.md` §11.7).
//!
//! A blocking function is a Rust callback run as a light C function by
//! [`super::rawfn::call`]. The callback either returns ordinary values (the operation
//! completed at once), `RAISE, v` (raise `v` at the caller's position, see
//! [`crate::lua::vm::raise`]), or — after storing the operation in the core's pending slot
//! ([`suspend`]) — the marker `MARK`. On `MARK` the C function yields `MARK` with
//! `lua_yieldk`; its continuation later receives the values the engine resumes the task with
//! and raises a resumed `RAISE, v` or returns them. Lua 5.4 can yield from a C function with a
//! continuation across `pcall`, `xpcall`, metamethods called from Lua code and generic-`for`
//! iterators, so blocking calls work there too. The yield travels up to the task's
//! `lua_resume` in the engine, through any user coroutines in between: the engine's
//! `coroutine.resume`/`wrap` ([`super::coro`]) pass a `MARK` yield outward and feed the
//! results back in, so a user's `resume` never sees it.
//!
//! `MARK` and `RAISE` are light userdata with fixed addresses; user code cannot obtain them.

use mlua::{LightUserData, Lua, MultiValue, Value as LuaValue};

use super::core::{CoreError, Op, with_core};
use crate::lua::vm::raise;

/// The yield marker.
pub(crate) fn mark() -> LightUserData {
    static MARK: u8 = 0;
    LightUserData(&MARK as *const u8 as *mut std::ffi::c_void)
}

/// Store `op` for the current task and return the marker the trampoline yields.
pub(crate) fn suspend(lua: &Lua, op: Op) -> mlua::Result<MultiValue> {
    match with_core(|c| c.pending = Some(op)) {
        Ok(()) => {
            super::preempt::set_op_pending(true);
            Ok(MultiValue::from_vec(vec![LuaValue::LightUserData(mark())]))
        }
        Err(e) => raise::raise_msg(lua, e.message()),
    }
}

/// Raise the message of a core access failure.
pub(crate) fn core_error(lua: &Lua, e: CoreError) -> mlua::Result<MultiValue> {
    raise::raise_msg(lua, e.message())
}

/// Single-value result helper.
pub(crate) fn ret1(v: LuaValue) -> MultiValue {
    MultiValue::from_vec(vec![v])
}

/// Two-value result helper.
pub(crate) fn ret2(a: LuaValue, b: LuaValue) -> MultiValue {
    MultiValue::from_vec(vec![a, b])
}
