//! Rust module functions as *light* C functions (no per-function Lua allocation).
//!
//! A function made with `mlua::Lua::create_function` costs ~130 bytes of Lua heap per state
//! (a C closure plus a userdata holding the boxed callback), and a raising or blocking wrapper
//! adds a Lua closure and its upvalue on top. The engine's module tables live in every Lua
//! state, and every live process owns a state, so these bytes are paid per idle process. A
//! light C function is a plain pointer stored in the table slot: no allocation at all.
//!
//! [`lua_fn!`](crate::lua_fn) turns a `fn(&Lua, MultiValue) -> mlua::Result<MultiValue>` into
//! such a function: it expands to a dedicated `extern "C-unwind"` trampoline that calls
//! [`call`] with the Rust function. `call` implements the protocols of the engine's callbacks
//! in C-function form:
//!
//! * ordinary results are pushed and returned;
//! * `RAISE, v` ([`crate::lua::vm::raise`]) raises `v` at the caller's position (a string gets
//!   the caller's `chunk:line:` prefix, like `error(v, 2)` from the Lua trampoline it
//!   replaces; other values are raised unchanged);
//! * `MARK` ([`super::yields::suspend`]) yields `MARK` to the engine with a continuation that,
//!   on resumption, raises a resumed `RAISE, v` the same way or returns the resumed values —
//!   the protocol of [`super::yields`], so blocking calls still work inside `pcall`, user
//!   coroutines, metamethods and iterators;
//! * an `Err` raises its message; a panic in the callback is caught and raised as
//!   "runtime panic: <message>" (it then ends the process like any Lua error).
//!
//! Soundness discipline: the Rust callback runs in an inner frame that returns a plain
//! [`Plan`] after every Rust value it created is dropped; only then does [`call`] `longjmp`
//! (raise) or yield, so no destructor is ever skipped.

use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mlua::{Lua, MultiValue, Value as LuaValue, ffi};

use super::rawapi::{lua_value_at, push_lua_value};
use super::yields::mark;
use crate::lua::vm::raise;

/// The Rust side of a light module function.
pub(crate) type RustFn = fn(&Lua, MultiValue) -> mlua::Result<MultiValue>;

/// What [`call`] does once the Rust callback's frame is gone.
enum Plan {
    /// Return this many values (on top of the stack).
    Return(c_int),
    /// Raise the value on top of the stack.
    Raise,
    /// Yield the marker on top of the stack (the stack holds nothing else).
    Yield,
}

/// Make a light C function from a [`RustFn`] path: `lua_fn!(module::function)`.
#[macro_export]
#[doc(hidden)]
macro_rules! lua_fn {
    ($f:path) => {{
        unsafe extern "C-unwind" fn trampoline(
            l: *mut ::mlua::ffi::lua_State,
        ) -> ::std::ffi::c_int {
            // SAFETY: called by Lua as a C function on a live state.
            unsafe { $crate::lua::engine::rawfn::call(l, $f) }
        }
        trampoline as ::mlua::ffi::lua_CFunction
    }};
}

/// Set `t[name]` to the light C function `f` (made with [`lua_fn!`](crate::lua_fn)).
pub(crate) fn set(
    lua: &Lua,
    t: &mlua::Table,
    name: &str,
    f: ffi::lua_CFunction,
) -> mlua::Result<()> {
    // SAFETY: `f` comes from `lua_fn!`, a valid lua_CFunction following `call`'s protocol.
    t.raw_set(name, unsafe { lua.create_c_function(f)? })
}

/// Run `f` as the body of a Lua C function (see the module docs).
///
/// # Safety
/// `l` must be the running thread of a live state, inside a Lua call of a C function.
#[doc(hidden)]
pub unsafe fn call(l: *mut ffi::lua_State, f: RustFn) -> c_int {
    // SAFETY: `run` leaves its result on `l`; no Rust value is live in this frame when
    // raising or yielding below.
    let plan = match catch_unwind(AssertUnwindSafe(|| unsafe { run(l, f) })) {
        Ok(p) => p,
        Err(panic) => {
            let msg = panic_message(&*panic);
            drop(panic);
            // SAFETY: pushes one string.
            unsafe { push_str(l, &msg) };
            drop(msg);
            Plan::Raise
        }
    };
    // SAFETY: see the module docs; `plan` is plain data.
    unsafe {
        match plan {
            Plan::Return(n) => n,
            Plan::Raise => ffi::lua_error(l),
            Plan::Yield => ffi::lua_yieldk(l, 1, 0, Some(resumed)),
        }
    }
}

/// Continuation after a [`Plan::Yield`]: the stack holds exactly the resumed values.
unsafe extern "C-unwind" fn resumed(
    l: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: called by Lua with the resumed values as the whole frame; no Rust values with
    // destructors are created before raising.
    unsafe {
        let n = ffi::lua_gettop(l);
        if n >= 1
            && ffi::lua_type(l, 1) == ffi::LUA_TLIGHTUSERDATA
            && ffi::lua_touserdata(l, 1) == raise::sentinel().0
        {
            ffi::lua_settop(l, 2);
            raise_top(l);
        }
        n
    }
}

/// The callback's frame: collect the arguments, call, push the outcome.
unsafe fn run(l: *mut ffi::lua_State, f: RustFn) -> Plan {
    // SAFETY: `l` is live; the `Lua` handle outlives this call (it owns the state).
    let lua = unsafe { Lua::get_or_init_from_ptr(l) };
    // SAFETY: `l` is the live running thread (see above); reading its stack top has no
    // precondition beyond that.
    let n = unsafe { ffi::lua_gettop(l) };
    let mut args = MultiValue::with_capacity(n as usize);
    for i in 1..=n {
        // SAFETY: `i` is a valid stack index.
        match unsafe { lua_value_at(lua, l, i) } {
            Ok(v) => args.push_back(v),
            Err(e) => {
                // SAFETY: pushes one string.
                unsafe { push_str(l, &e.to_string()) };
                return Plan::Raise;
            }
        }
    }
    let out = match f(lua, args) {
        Ok(out) => out,
        Err(e) => {
            // SAFETY: pushes one string, then prefixes it.
            unsafe {
                push_str(l, &error_text(&e));
                add_where(l);
            }
            return Plan::Raise;
        }
    };
    let first = match out.front() {
        Some(LuaValue::LightUserData(p)) => Some(p.0),
        _ => None,
    };
    if first == Some(raise::sentinel().0) {
        let v = out.get(1).cloned().unwrap_or(LuaValue::Nil);
        drop(out);
        // SAFETY: one value pushed, then positioned by `raise_top`'s caller.
        return match unsafe { push_lua_value(lua, l, &v) } {
            Ok(()) => {
                drop(v);
                // SAFETY: the value to raise is on top; `add_where` only pushes/concats.
                unsafe { add_where(l) };
                Plan::Raise
            }
            Err(e) => {
                // SAFETY: pushes one string.
                unsafe { push_str(l, &e.to_string()) };
                Plan::Raise
            }
        };
    }
    if first == Some(mark().0) {
        // SAFETY: drop the arguments; the marker is the only value yielded.
        unsafe {
            ffi::lua_settop(l, 0);
            ffi::lua_pushlightuserdata(l, mark().0);
        }
        return Plan::Yield;
    }
    let count = out.len() as c_int;
    // SAFETY: room for the results is checked first.
    unsafe {
        if ffi::lua_checkstack(l, count + 2) == 0 {
            push_str(l, "stack overflow");
            return Plan::Raise;
        }
        for v in out.iter() {
            if let Err(e) = push_lua_value(lua, l, v) {
                push_str(l, &e.to_string());
                return Plan::Raise;
            }
        }
    }
    Plan::Return(count)
}

/// Raise the value at the top of the stack with the caller's position (string values only).
///
/// # Safety
/// Must be called from a C function frame with no live Rust values; never returns.
unsafe fn raise_top(l: *mut ffi::lua_State) -> ! {
    // SAFETY: see the function docs.
    unsafe {
        add_where(l);
        ffi::lua_error(l)
    }
}

/// Prefix the string on top of the stack with the caller's `chunk:line:` (like `error(v, 2)`
/// called from a Lua wrapper of this function). Non-string values are left as they are.
unsafe fn add_where(l: *mut ffi::lua_State) {
    // SAFETY: the value is on top; `luaL_where` pushes one string, `lua_rotate` + `lua_concat`
    // join them into one.
    unsafe {
        if ffi::lua_type(l, -1) != ffi::LUA_TSTRING {
            return;
        }
        ffi::lua_checkstack(l, 2);
        ffi::luaL_where(l, 1);
        ffi::lua_rotate(l, -2, 1);
        ffi::lua_concat(l, 2);
    }
}

unsafe fn push_str(l: *mut ffi::lua_State, s: &str) {
    // SAFETY: pushes one string (copied by Lua).
    unsafe {
        ffi::lua_checkstack(l, 1);
        ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
    }
}

#[cold]
fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        other => other.to_string(),
    }
}

#[cold]
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let m = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("runtime panic: {m}")
}

/// Lua's name for the type of an argument (`luaL_typename`: integers and floats are both
/// "number"; a missing argument is "no value"), for "bad argument" messages.
pub(crate) fn arg_type(v: Option<&LuaValue>) -> &'static str {
    match v {
        None => "no value",
        Some(LuaValue::Integer(_)) | Some(LuaValue::Number(_)) => "number",
        Some(LuaValue::LightUserData(_)) => "userdata",
        Some(other) => other.type_name(),
    }
}
