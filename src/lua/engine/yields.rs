//! How blocking module functions suspend their task (spec `runtime-internals.md` §11.7).
//!
//! A blocking function is a Rust callback wrapped in a small Lua trampoline:
//!
//! ```lua
//! local function resumed(a, ...)              -- values the engine resumed the task with
//!   if a == RAISE then error((...), 2) end     -- the operation failed by raising
//!   return a, ...
//! end
//! local function after(a, ...)                -- values the Rust callback returned
//!   if a == MARK then return resumed(yield(MARK)) end
//!   if a == RAISE then error((...), 2) end
//!   return a, ...
//! end
//! blocking(f) = function(...) return after(f(...)) end
//! ```
//!
//! The callback either returns ordinary values (the operation completed at once), `RAISE, v`
//! (raise `v` at the caller's position, see [`crate::lua::vm::raise`]), or — after storing the
//! operation in the core's pending slot ([`suspend`]) — the marker `MARK`, upon which the
//! trampoline yields `MARK` with Lua's own `coroutine.yield`. Lua 5.4 can yield across `pcall`,
//! `xpcall`, metamethods called from Lua code and generic-`for` iterators, so blocking calls
//! work there too. The yield travels up to the task's `lua_resume` in the engine, through any
//! user coroutines in between: the engine's `coroutine.resume`/`wrap` ([`super::coro`]) pass a
//! `MARK` yield outward and feed the results back in, so a user's `resume` never sees it.
//!
//! `MARK` and `RAISE` are light userdata with fixed addresses; user code cannot obtain them.
//! The helpers are compiled once per OS process to stripped bytecode and loaded into a state on
//! first use.

use std::sync::LazyLock;

use mlua::chunk::ChunkMode;
use mlua::{Function, LightUserData, Lua, MultiValue, Table, Value as LuaValue};

use super::core::{CoreError, Op, with_core};
use crate::lua::vm::raise;

const HELPERS_KEY: &str = "wippy.engine.yields";

const HELPERS_SRC: &str = r#"
local yield, error, MARK, RAISE = ...
local function resumed(a, ...)
  if a == RAISE then error((...), 2) end
  return a, ...
end
local function after(a, ...)
  if a == MARK then return resumed(yield(MARK)) end
  if a == RAISE then error((...), 2) end
  return a, ...
end
return function(f) return function(...) return after(f(...)) end end
"#;

static BYTECODE: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let lua = Lua::new();
    lua.load(HELPERS_SRC)
        .set_name("=[C]")
        .into_function()
        .expect("yield helper chunk compiles")
        .dump(true)
});

/// `coroutine.yield` itself (`luaB_yield`): yield all arguments. Not taken from the
/// `coroutine` module, whose build may itself be creating blocking functions.
unsafe extern "C-unwind" fn raw_yield(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    // SAFETY: called by Lua; yielding from a C function as its return expression is the
    // documented protocol, and this frame holds nothing with a destructor.
    unsafe { mlua::ffi::lua_yield(l, mlua::ffi::lua_gettop(l)) }
}

/// The yield marker.
pub(crate) fn mark() -> LightUserData {
    static MARK: u8 = 0;
    LightUserData(&MARK as *const u8 as *mut std::ffi::c_void)
}

fn wrapper_factory(lua: &Lua) -> mlua::Result<Function> {
    if let Some(f) = lua.named_registry_value::<Option<Function>>(HELPERS_KEY)? {
        return Ok(f);
    }
    // SAFETY: `raw_yield` is a valid lua_CFunction (see below).
    let yield_fn = unsafe { lua.create_c_function(raw_yield)? };
    let error_fn: LuaValue = lua.globals().raw_get("error")?;
    let f: Function = lua
        .load(&BYTECODE[..])
        .set_mode(ChunkMode::Binary)
        .set_name("=[C]")
        .call((yield_fn, error_fn, mark(), raise::sentinel()))?;
    lua.set_named_registry_value(HELPERS_KEY, &f)?;
    Ok(f)
}

/// Wrap a Rust callback that may return [`suspend`]/`raise` results into a blocking Lua
/// function.
pub(crate) fn blocking<A, R, F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    A: mlua::FromLuaMulti,
    R: mlua::IntoLuaMulti,
    F: Fn(&Lua, A) -> mlua::Result<R> + mlua::MaybeSend + 'static,
{
    let inner = lua.create_function(f)?;
    wrapper_factory(lua)?.call(inner)
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

/// Set a function field of `t` created with [`blocking`].
pub(crate) fn set_blocking<A, R, F>(lua: &Lua, t: &Table, name: &str, f: F) -> mlua::Result<()>
where
    A: mlua::FromLuaMulti,
    R: mlua::IntoLuaMulti,
    F: Fn(&Lua, A) -> mlua::Result<R> + mlua::MaybeSend + 'static,
{
    t.raw_set(name, blocking(lua, f)?)
}

/// Single-value result helper.
pub(crate) fn ret1(v: LuaValue) -> MultiValue {
    MultiValue::from_vec(vec![v])
}

/// Two-value result helper.
pub(crate) fn ret2(a: LuaValue, b: LuaValue) -> MultiValue {
    MultiValue::from_vec(vec![a, b])
}
