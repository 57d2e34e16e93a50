//! The engine's `coroutine.resume` and `coroutine.wrap`, and `coroutine.spawn`.
//!
//! A Lua process runs its main function and its `coroutine.spawn` functions as *tasks*
//! (coroutines resumed by the engine). User code may still create its own coroutines; when code
//! inside one calls a blocking function, the runtime yield (see [`super::yields`]) first reaches
//! the user's `coroutine.resume`. These replacements — C functions written against the Lua API,
//! mirroring `lcorolib.c` — recognise it and pass it outward instead:
//!
//! * the inner coroutine yielded `MARK, …` → the resumer yields the same values from its own
//!   thread with `lua_yieldk`, and its continuation resumes the inner coroutine with whatever
//!   the engine resumed the outer one with — so the whole process suspends and the user's
//!   `resume` returns only when the inner coroutine really yields, returns or fails;
//! * the inner coroutine was preempted by the budget hook (zero values, preempted flag) → the
//!   same, so a runaway loop inside a user coroutine still gives its worker back; if the
//!   resumer cannot yield (a non-yieldable C boundary) the inner coroutine is simply resumed
//!   again.
//!
//! Both also keep [`preempt::set_running`] pointed at the Lua thread that is actually
//! executing, so the watchdog arms the right one.
//!
//! Error behaviour is the stock one: `resume` returns `false, err`; `wrap` closes the dead
//! coroutine and re-raises, prefixing string errors with the caller's position.

use std::ffi::c_int;

use mlua::{Lua, MultiValue, Table, Value as LuaValue, ffi};

use super::core::{Op, with_core};
use super::preempt;
use super::yields::{self, mark};
use crate::lua::vm::raise;

/// True when the value at `idx` of `l` is the runtime yield marker.
unsafe fn is_mark(l: *mut ffi::lua_State, idx: c_int) -> bool {
    // SAFETY: caller guarantees `idx` is a valid index of `l`; lua_touserdata only reads.
    unsafe {
        ffi::lua_type(l, idx) == ffi::LUA_TLIGHTUSERDATA && ffi::lua_touserdata(l, idx) == mark().0
    }
}

/// Outcome of resuming a user coroutine.
enum Step {
    /// Results (or the error object, with `ok = false`) are on `l`.
    Done { ok: bool, n: c_int },
    /// Passed a runtime yield outward: return this value from the C function.
    Yielded(c_int),
}

/// Resume `co` with the `narg` values on top of `l`, passing runtime yields outward.
///
/// # Safety
/// `l` is the running thread, `co` a thread of the same state, and the top `narg` values of
/// `l` are the arguments. May longjmp (yield) out of the caller; the caller must hold no
/// values with destructors.
unsafe fn resume_user(
    l: *mut ffi::lua_State,
    co: *mut ffi::lua_State,
    mut narg: c_int,
    k: ffi::lua_KFunction,
) -> Step {
    // SAFETY: per the function contract; each call below follows `lcorolib.c`'s auxresume.
    unsafe {
        loop {
            if ffi::lua_checkstack(co, narg) == 0 {
                ffi::lua_pop(l, narg);
                ffi::lua_pushliteral(l, c"too many arguments to resume");
                return Step::Done { ok: false, n: 1 };
            }
            ffi::lua_xmove(l, co, narg);
            let prev = preempt::set_running(co);
            let mut nres: c_int = 0;
            let status = ffi::lua_resume(co, l, narg, &mut nres);
            preempt::restore_running(prev);
            if status == ffi::LUA_OK || status == ffi::LUA_YIELD {
                if status == ffi::LUA_YIELD {
                    if nres >= 1 && is_mark(co, -nres) {
                        if ffi::lua_checkstack(l, nres) == 0 {
                            ffi::lua_pop(co, nres);
                            ffi::lua_pushliteral(l, c"too many results to resume");
                            return Step::Done { ok: false, n: 1 };
                        }
                        ffi::lua_xmove(co, l, nres);
                        return Step::Yielded(ffi::lua_yieldk(l, nres, 0, Some(k)));
                    }
                    if nres == 0 && preempt::preempt_pending() {
                        if ffi::lua_isyieldable(l) != 0 {
                            return Step::Yielded(ffi::lua_yieldk(l, 0, 0, Some(k)));
                        }
                        // Cannot pass it outward: keep running the coroutine.
                        preempt::swallow_preemption();
                        narg = 0;
                        continue;
                    }
                }
                if ffi::lua_checkstack(l, nres + 1) == 0 {
                    ffi::lua_pop(co, nres);
                    ffi::lua_pushliteral(l, c"too many results to resume");
                    return Step::Done { ok: false, n: 1 };
                }
                ffi::lua_xmove(co, l, nres);
                return Step::Done { ok: true, n: nres };
            }
            ffi::lua_xmove(co, l, 1);
            return Step::Done { ok: false, n: 1 };
        }
    }
}

/// `coroutine.resume(co, ...)`.
unsafe extern "C-unwind" fn co_resume(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a C function; `luaL_checktype` raises (longjmp) on a bad
    // argument before anything with a destructor exists.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTHREAD);
        let co = ffi::lua_tothread(l, 1);
        let narg = ffi::lua_gettop(l) - 1;
        finish_resume(l, co, narg)
    }
}

/// Continuation of `co_resume` after a runtime yield was passed outward: the stack is
/// `co, <values the engine resumed us with>`.
unsafe extern "C-unwind" fn co_resume_k(
    l: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: same stack layout as `co_resume` (Lua keeps slot 1, the coroutine).
    unsafe {
        let co = ffi::lua_tothread(l, 1);
        let narg = ffi::lua_gettop(l) - 1;
        finish_resume(l, co, narg)
    }
}

unsafe fn finish_resume(l: *mut ffi::lua_State, co: *mut ffi::lua_State, narg: c_int) -> c_int {
    // SAFETY: forwarded contract of `co_resume`.
    unsafe {
        match resume_user(l, co, narg, co_resume_k) {
            Step::Yielded(r) => r,
            Step::Done { ok: true, n } => {
                ffi::lua_pushboolean(l, 1);
                ffi::lua_insert(l, -(n + 1));
                n + 1
            }
            Step::Done { ok: false, .. } => {
                ffi::lua_pushboolean(l, 0);
                ffi::lua_insert(l, -2);
                2
            }
        }
    }
}

/// `coroutine.wrap(f)`.
unsafe extern "C-unwind" fn co_wrap(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua; mirrors `luaB_cowrap` (create the thread, close over it).
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TFUNCTION);
        let nl = ffi::lua_newthread(l);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_xmove(l, nl, 1);
        ffi::lua_pushcclosure(l, auxwrap, 1);
        1
    }
}

unsafe extern "C-unwind" fn auxwrap(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: the closure's upvalue 1 is the coroutine (see `co_wrap`).
    unsafe {
        let co = ffi::lua_tothread(l, ffi::lua_upvalueindex(1));
        let narg = ffi::lua_gettop(l);
        finish_wrap(l, co, narg)
    }
}

unsafe extern "C-unwind" fn auxwrap_k(
    l: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: the continuation runs in the same closure frame; the stack holds exactly the
    // values the engine resumed us with.
    unsafe {
        let co = ffi::lua_tothread(l, ffi::lua_upvalueindex(1));
        let narg = ffi::lua_gettop(l);
        finish_wrap(l, co, narg)
    }
}

unsafe fn finish_wrap(l: *mut ffi::lua_State, co: *mut ffi::lua_State, narg: c_int) -> c_int {
    // SAFETY: forwarded contract; the error path mirrors `lcorolib.c`'s auxwrap.
    unsafe {
        match resume_user(l, co, narg, auxwrap_k) {
            Step::Yielded(r) => r,
            Step::Done { ok: true, n } => n,
            Step::Done { ok: false, .. } => {
                let mut stat = ffi::lua_status(co);
                if stat != ffi::LUA_OK && stat != ffi::LUA_YIELD {
                    stat = ffi::lua_closethread(co, l);
                    ffi::lua_xmove(co, l, 1);
                }
                if stat != ffi::LUA_ERRMEM && ffi::lua_type(l, -1) == ffi::LUA_TSTRING {
                    ffi::luaL_where(l, 1);
                    ffi::lua_insert(l, -2);
                    ffi::lua_concat(l, 2);
                }
                ffi::lua_error(l)
            }
        }
    }
}

/// Replace `resume`/`wrap` and add `spawn` to a freshly built `coroutine` table.
pub(crate) fn extend(lua: &Lua, t: &Table) -> mlua::Result<()> {
    // SAFETY: both are valid lua_CFunctions following the Lua C API protocol (see above).
    let resume = unsafe { lua.create_c_function(co_resume)? };
    // SAFETY: as above.
    let wrap = unsafe { lua.create_c_function(co_wrap)? };
    t.raw_set("resume", resume)?;
    t.raw_set("wrap", wrap)?;
    super::rawfn::set(lua, t, "spawn", crate::lua_fn!(spawn))?;
    Ok(())
}

fn spawn(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let f = match args.front() {
        Some(LuaValue::Function(f)) => f.clone(),
        other => {
            let got = super::rawfn::arg_type(other);
            return raise::raise_msg(
                lua,
                format!("bad argument #1 to 'spawn' (function expected, got {got})"),
            );
        }
    };
    if let Err(e) = with_core(|_| ()) {
        return yields::core_error(lua, e);
    }
    yields::suspend(lua, Op::Spawn(f))
}
