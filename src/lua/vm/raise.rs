//! Raising plain Lua values from Rust callbacks.
//!
//! mlua turns an `Err` returned by a Rust callback into an opaque userdata ("runtime error:
//! … stack traceback …"), whereas upstream raises plain strings ("bad argument #1 …") or error
//! objects that `pcall` returns intact. Functions that must raise a clean value are therefore
//! wrapped in a tiny C trampoline ([`wrap`]): the Rust side returns `(RAISE, value)` — `RAISE`
//! being a sentinel light value — and the trampoline raises `value` as `error(value, 2)` would:
//! a string gets the caller's `chunk:line:` prefix, anything else passes through unchanged.
//!
//! The trampoline is a C closure with the wrapped function as its only upvalue (48 bytes of
//! Lua heap per wrapped function). It replaced a Lua closure built by a per-state helper chunk,
//! which cost ~1.4 KB of prototypes per state plus a closure and an upvalue per function —
//! paid by every live process, since module tables are per state (decision 0095).
//!
//! Cost: one extra C call per invocation of a wrapped function; only functions that can raise
//! are wrapped.

use std::ffi::c_int;

use mlua::{Function, IntoLua, IntoLuaMulti, LightUserData, Lua, MultiValue, ffi};

/// The sentinel that marks a "raise" return from Rust (a light userdata with a fixed address).
pub(crate) fn sentinel() -> LightUserData {
    static MARK: u8 = 0;
    LightUserData(&MARK as *const u8 as *mut std::ffi::c_void)
}

/// Return value of a wrapped Rust function that makes the trampoline raise `value`.
pub fn raise(lua: &Lua, value: impl IntoLua) -> mlua::Result<MultiValue> {
    (sentinel(), value.into_lua(lua)?).into_lua_multi(lua)
}

/// Return value of a wrapped Rust function that raises a string message (the trampoline adds
/// the caller's `chunk:line:` prefix like `luaL_error`).
pub fn raise_msg(lua: &Lua, msg: impl AsRef<str>) -> mlua::Result<MultiValue> {
    raise(lua, lua.create_string(msg.as_ref())?)
}

/// Wrap `f` (which may return [`raise`] results) in the raising trampoline.
///
/// `f` must not yield (mlua callbacks never do): the trampoline calls it without a
/// continuation.
pub fn wrap(lua: &Lua, f: Function) -> mlua::Result<Function> {
    // SAFETY: `exec_raw` pushes `f` and runs the closure in protected mode (a memory error in
    // lua_pushcclosure unwinds to mlua's pcall; the closure owns nothing to drop). The C
    // closure takes `f` from the stack as its upvalue, leaving exactly the closure as the one
    // result.
    unsafe {
        lua.exec_raw(f, |state| {
            ffi::lua_pushcclosure(state, raising, 1);
        })
    }
}

/// The trampoline: call upvalue 1 with the arguments; on `RAISE, v` raise `v` like
/// `error(v, 2)`, else return all results.
unsafe extern "C-unwind" fn raising(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this as a C function on a live thread with its arguments at 1..=n and
    // at least LUA_MINSTACK free slots. We push one value (the callee) before the call;
    // lua_call grows the stack for the results itself; after `settop(2)` the raise path pushes
    // at most two more. `lua_call` and `lua_error` may longjmp out of this frame, which holds
    // only integers and raw pointers (no destructors are skipped) — the same discipline as the
    // engine's light functions (`engine::rawfn`).
    unsafe {
        let n = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        ffi::lua_call(l, n, ffi::LUA_MULTRET);
        let nres = ffi::lua_gettop(l);
        if nres >= 1
            && ffi::lua_type(l, 1) == ffi::LUA_TLIGHTUSERDATA
            && ffi::lua_touserdata(l, 1) == sentinel().0
        {
            ffi::lua_settop(l, 2);
            if ffi::lua_type(l, 2) == ffi::LUA_TSTRING {
                // `error(v, 2)` from the Lua trampoline this replaces: level 1 here is the
                // caller of the wrapped function.
                ffi::luaL_where(l, 1);
                ffi::lua_pushvalue(l, 2);
                ffi::lua_concat(l, 2);
            }
            ffi::lua_error(l);
        }
        nres
    }
}

/// Create a wrapped Rust function in one step.
pub fn function<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> mlua::Result<MultiValue> + mlua::MaybeSend + 'static,
{
    wrap(lua, lua.create_function(f)?)
}
