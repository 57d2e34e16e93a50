//! Resuming one task (a Lua thread) and classifying how it stopped.
//!
//! This is the engine's hot path, so it talks to the Lua C API directly instead of going
//! through `mlua::Thread::resume` (which checks thread status twice, runs thread-event hooks
//! and collects results into a fresh `MultiValue`): arguments are pushed onto the main stack
//! and moved to the thread, `lua_resume` runs it, and the outcome is read off the thread's
//! stack:
//!
//! * yielded with the runtime marker first ([`super::yields`]) → [`Outcome::Op`]: the
//!   callback left the operation in the core's pending slot;
//! * yielded with no values while the preemption hook fired → [`Outcome::Preempted`];
//! * any other yield (a bare `coroutine.yield(...)` in a task) → [`Outcome::Bare`];
//! * returned → [`Outcome::Returned`] with the results as mlua values (only the main task's
//!   results are ever used);
//! * raised → [`Outcome::Failed`] with the error value and a traceback of the failed thread
//!   (taken before its stack is discarded).

use std::ffi::c_int;

use mlua::{Lua, Thread, Value as LuaValue, ffi};

use super::core::exec_unlocked;
use super::preempt;
use super::yields::mark;

/// How a resumed task stopped.
pub(crate) enum Outcome {
    /// Runtime operation requested; `n` values it yielded after the marker stay on the
    /// thread's stack (the results of an operation that completed at once).
    Op(c_int),
    /// Preempted by the budget hook.
    Preempted,
    /// Plain `coroutine.yield` in a task.
    Bare,
    /// The function returned these values.
    Returned(Vec<LuaValue>),
    /// The function raised `value`; `traceback` is the failed thread's stack.
    Failed { value: LuaValue, traceback: String },
}

/// Push `args` (drained; the buffer keeps its capacity) onto the stack of the Lua thread
/// `th` for its next [`resume`]; returns how many were pushed.
///
/// # Safety
/// `th` must be a live thread of `lua`'s state (its `mlua::Thread` handle held by the
/// caller's task table), suspended or not yet started; if a core is current on this thread
/// (the engine's step loop, inside its `Enter` guard), `lua` is its process's state.
pub(crate) unsafe fn push_args(
    lua: &Lua,
    th: *mut ffi::lua_State,
    args: &mut Vec<LuaValue>,
) -> mlua::Result<c_int> {
    let n = args.len() as c_int;
    if n == 0 {
        return Ok(0);
    }
    let f = |raw: &mlua::state::RawLua| {
        // SAFETY: `raw.state()` belongs to the same Lua instance as `th` (caller contract);
        // the values are pushed on it and moved to `th`, leaving the main stack balanced.
        unsafe {
            let main = raw.state();
            if ffi::lua_checkstack(main, n + 2) == 0 || ffi::lua_checkstack(th, n + 1) == 0 {
                return Err(mlua::Error::runtime("stack overflow while resuming a task"));
            }
            for v in args.drain(..) {
                raw.push_value(&v)?;
            }
            ffi::lua_xmove(main, th, n);
            Ok(n)
        }
    };
    // SAFETY: `exec_unlocked`'s contract is part of this function's.
    unsafe { exec_unlocked(lua, f) }
}

/// Resume the Lua thread `th` with the `n` values already on its stack ([`push_args`]).
///
/// Runs without mlua's state lock ([`exec_unlocked`]): the resume is the hot path of every
/// step, and only the stepping thread can reach a process's state.
///
/// # Safety
/// As [`push_args`]; additionally `th` must stay alive for the whole call (the caller keeps
/// its task, and with it the `mlua::Thread`, in the core while Lua runs).
pub(crate) unsafe fn resume(lua: &Lua, th: *mut ffi::lua_State, n: c_int) -> mlua::Result<Outcome> {
    let f = |raw: &mlua::state::RawLua| {
        // SAFETY: `raw.state()` is the main (or current) state of the same Lua instance as
        // `th`. We keep both stacks balanced: every value the thread leaves behind is popped
        // before returning. `lua_resume` never raises into us (errors are returned as a
        // status). The traceback is produced inside a protected call.
        unsafe {
            let main = raw.state();
            let prev = preempt::set_running(th);
            preempt::set_op_pending(false);
            let mut nres: c_int = 0;
            let status = ffi::lua_resume(th, main, n, &mut nres);
            preempt::restore_running(prev);
            preempt::set_op_pending(false);
            match status {
                ffi::LUA_YIELD => {
                    if nres >= 1
                        && ffi::lua_type(th, -nres) == ffi::LUA_TLIGHTUSERDATA
                        && ffi::lua_touserdata(th, -nres) == mark().0
                    {
                        // Drop the marker, keep what follows it.
                        ffi::lua_rotate(th, -nres, -1);
                        ffi::lua_pop(th, 1);
                        return Ok(Outcome::Op(nres - 1));
                    }
                    let outcome = if nres == 0 && preempt::take_preempted() {
                        Outcome::Preempted
                    } else {
                        Outcome::Bare
                    };
                    ffi::lua_pop(th, nres);
                    Ok(outcome)
                }
                ffi::LUA_OK => {
                    let mut vals = Vec::with_capacity(nres as usize);
                    if nres > 0 {
                        if ffi::lua_checkstack(main, nres + 1) == 0 {
                            ffi::lua_pop(th, nres);
                            return Err(mlua::Error::runtime("too many results"));
                        }
                        ffi::lua_xmove(th, main, nres);
                        for _ in 0..nres {
                            vals.push(raw.pop_value());
                        }
                        vals.reverse();
                    }
                    Ok(Outcome::Returned(vals))
                }
                _ => {
                    if ffi::lua_checkstack(main, 4) == 0 {
                        return Err(mlua::Error::runtime("stack overflow reporting an error"));
                    }
                    let traceback = traceback(main, th);
                    ffi::lua_xmove(th, main, 1);
                    let value = raw.pop_value();
                    Ok(Outcome::Failed { value, traceback })
                }
            }
        }
    };
    // SAFETY: `exec_unlocked`'s contract is part of this function's.
    unsafe { exec_unlocked(lua, f) }
}

/// `luaL_traceback` of `th`, computed in protected mode on `main` (an allocation failure
/// yields an empty string instead of unwinding through Rust).
unsafe fn traceback(main: *mut ffi::lua_State, th: *mut ffi::lua_State) -> String {
    unsafe extern "C-unwind" fn tb(l: *mut ffi::lua_State) -> c_int {
        // SAFETY: called through lua_pcall below with the thread as its only argument.
        unsafe {
            let co = ffi::lua_tothread(l, 1);
            ffi::luaL_traceback(l, co, std::ptr::null(), 0);
            1
        }
    }
    // SAFETY: `main` has room (checked by the caller); `th` is a live thread of the same state.
    unsafe {
        if ffi::lua_checkstack(th, 1) == 0 {
            return String::new();
        }
        ffi::lua_pushcfunction(main, tb);
        ffi::lua_pushthread(th);
        ffi::lua_xmove(th, main, 1);
        if ffi::lua_pcall(main, 1, 1, 0) != ffi::LUA_OK {
            ffi::lua_pop(main, 1);
            return String::new();
        }
        let mut len = 0usize;
        let p = ffi::lua_tolstring(main, -1, &mut len);
        let s = if p.is_null() {
            String::new()
        } else {
            String::from_utf8_lossy(std::slice::from_raw_parts(p as *const u8, len)).into_owned()
        };
        ffi::lua_pop(main, 1);
        s
    }
}

/// The traceback of a suspended task (for preemption reports).
pub(crate) fn suspended_traceback(lua: &Lua, thread: &Thread) -> String {
    let th = thread.state();
    lua.exec_raw_lua(|raw| {
        // SAFETY: `th` is alive (we hold `thread`) and suspended; `traceback` leaves the main
        // stack balanced.
        unsafe {
            let main = raw.state();
            if ffi::lua_checkstack(main, 4) == 0 {
                return String::new();
            }
            traceback(main, th)
        }
    })
}
