//! Raising plain Lua values from Rust callbacks.
//!
//! mlua turns an `Err` returned by a Rust callback into an opaque userdata ("runtime error:
//! … stack traceback …"), whereas upstream raises plain strings ("bad argument #1 …") or error
//! objects that `pcall` returns intact. Functions that must raise a clean value are therefore
//! wrapped in a tiny Lua trampoline: the Rust side returns `(RAISE, value)` — `RAISE` being a
//! per-state sentinel light value — and the trampoline calls `error(value, 2)`, which adds the
//! caller's position to string messages and passes error objects through unchanged.
//!
//! Cost: one extra Lua call per invocation of a wrapped function (tens of ns); only functions
//! that can raise are wrapped.

use mlua::{Function, IntoLua, IntoLuaMulti, LightUserData, Lua, MultiValue};

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
pub fn wrap(lua: &Lua, f: Function) -> mlua::Result<Function> {
    super::helpers::helpers(lua)?
        .raw_get::<Function>("raising")?
        .call(f)
}

/// Create a wrapped Rust function in one step.
pub fn function<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> mlua::Result<MultiValue> + mlua::MaybeSend + 'static,
{
    wrap(lua, lua.create_function(f)?)
}
