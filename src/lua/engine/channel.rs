//! Process-local channels and `channel.select` (spec `runtime-internals.md` §11.6, `lua-api.md`
//! §3.6), written against the raw Lua C API because every message a process receives passes
//! through them.
//!
//! # Objects
//! * A channel is a full userdata whose block is a [`RawChan`] (capacity, closed flag, ring
//!   position of the buffered values, the queues of blocked receivers and senders) with the
//!   per-state channel metatable (`__index` = the methods, `__gc` drops the queues). Buffered
//!   values live in its first user value, a table pre-sized to the capacity and used as a
//!   ring (keys `1..cap`), so the GC sees them and a buffered send never reallocates.
//! * A select case (`ch:case_send(v)` / `ch:case_receive()`) is a full userdata holding only a
//!   flag; user value 1 is the channel, user value 2 the value to send.
//!
//! # Moving values between tasks
//! No value is referenced from Rust. A blocked receiver's results are pushed straight onto its
//! task's thread stack and become the arguments of its next resume (`Task::nargs`); a blocked
//! sender's value is read from its suspended frame (argument 2 of `ch:send`, on the thread that
//! called it — recorded in the waiter, since that may be a user coroutine inside the task) or
//! from its select case. An operation that completes at once still yields its task to the back
//! of the run queue (upstream order): the function yields `MARK, results…`, the engine keeps the
//! results on the thread as its next resume arguments. When that task is the only runnable
//! one the yield is skipped and the results are returned directly (`take_back_if_alone`): the
//! engine would resume it at once, with no delivery in between, so the order is the same.
//! A receive on a subscription channel with an empty buffer takes the oldest message of the
//! subscription's backlog (`mailbox::pull`, decision 0081) unless other receivers wait.
//! A blocked plain receive yields with a continuation ([`receive_k`]); the engine's delivery
//! of a message to it ([`hand_off`]) parks the message data in the task and passes a mark the
//! continuation replaces by the built Message (decision 0127, see `message.rs`). Only
//! waiters registered where a yield is possible take that path, so the mark never reaches a
//! frame without the continuation.
//!
//! The type check of `self` ([`check_ud`]) reads a tag in the metatable's array part instead
//! of looking the metatable up in the registry.
//!
//! # Semantics (from the original `engine/channel.go`)
//! Tasks are woken in upstream order: the task performing an operation is queued *before* the
//! partner it wakes (sender before receiver on a hand-off, receiver before a sender whose value
//! moved into the freed buffer slot); `close` queues the woken tasks first and the closer last,
//! and yields only if it woke someone. Receivers get `value, true`, or `nil, false` on a closed
//! and drained channel; a sender blocked when the channel closes resumes with
//! `nil, err` ("send on closed channel"); sending on a closed channel raises; closing twice is a
//! no-op. `channel.select{…}` scans its cases in declaration order and takes the first ready one;
//! with `default` and nothing ready it returns `{default = true, ok = true}`; otherwise the task
//! waits on every case and the first operation matching one completes the select and removes its
//! other waiters. Results are `{channel = ch, value = v, ok = b}` (built by the select's
//! continuation on its own thread).
//!
//! Waiters carry their core's epoch, so a waiter left by an earlier process on a recycled state
//! (function workers keep module-level channels) is skipped.
//!
//! # Safety discipline
//! Lua API calls that can raise (allocations) are never made while a Rust value with a
//! destructor is live in the calling frame (raising longjmps over it); core borrows are taken
//! for pure bookkeeping and released before such calls.

use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::ptr;

use mlua::{AnyUserData, Lua, Value as LuaValue, ffi};

use super::core::{Core, CoreError, Op, SelectOp, TaskId, exec_unlocked, with_core};
use super::mailbox;
use super::rawapi::raise_owned;
use super::yields::mark;

const CHAN_MAGIC: u64 = 0x5749_5050_5943_484e;
static CHAN_MT: u8 = 0;
static CASE_MT: u8 = 0;

fn key(k: &'static u8) -> *const c_void {
    k as *const u8 as *const c_void
}

/// A blocked channel operation.
#[derive(Clone, Copy, Debug)]
struct Waiter {
    epoch: u64,
    task: TaskId,
    /// The thread whose suspended `ch:send` frame holds the value (plain senders).
    th: *mut ffi::lua_State,
    /// `(select id, case index)` for select waiters.
    select: Option<(u32, u16)>,
    /// A plain receive that yielded with [`receive_k`], so a delivered message may be left
    /// for it to build ([`hand_off`]).
    lazy: bool,
}

/// The block of a channel userdata.
#[repr(C)]
pub(crate) struct RawChan {
    magic: u64,
    cap: u32,
    closed: bool,
    head: u32,
    len: u32,
    recvq: VecDeque<Waiter>,
    sendq: VecDeque<Waiter>,
    /// The topic when this channel belongs to a subscription.
    topic: Option<Box<str>>,
}

/// The block of a select case userdata.
#[repr(C)]
struct RawCase {
    magic: u64,
    send: bool,
}

const CASE_MAGIC: u64 = 0x5749_5050_5943_4153;

fn pop_valid(q: &mut VecDeque<Waiter>, epoch: u64) -> Option<Waiter> {
    while let Some(w) = q.pop_front() {
        if w.epoch == epoch {
            return Some(w);
        }
    }
    None
}

fn has_valid(q: &mut VecDeque<Waiter>, epoch: u64) -> bool {
    while let Some(w) = q.front() {
        if w.epoch == epoch {
            return true;
        }
        q.pop_front();
    }
    false
}

// ------------------------------------------------------------------------------------------
// Metatables and type checks

/// Push the per-state metatable `which` (creating it on first use).
unsafe fn push_metatable(l: *mut ffi::lua_State, which: &'static u8) {
    // SAFETY: `l` is a live thread; registry access with a light userdata key; the table is
    // created with its fields before being stored.
    unsafe {
        if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key(which)) == ffi::LUA_TTABLE {
            return;
        }
        ffi::lua_pop(l, 1);
        ffi::lua_createtable(l, 1, 5);
        // The type tag read by `check_ud` (array slot: no hashing).
        ffi::lua_pushlightuserdata(l, key(which) as *mut c_void);
        ffi::lua_rawseti(l, -2, 1);
        if ptr::eq(which, &CHAN_MT) {
            ffi::lua_createtable(l, 0, 5);
            for (name, f) in [
                (c"send", ch_send as ffi::lua_CFunction),
                (c"receive", ch_receive),
                (c"close", ch_close),
                (c"case_send", ch_case_send),
                (c"case_receive", ch_case_receive),
            ] {
                ffi::lua_pushcfunction(l, f);
                ffi::lua_setfield(l, -2, name.as_ptr());
            }
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_pushcfunction(l, chan_gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
            ffi::lua_pushcfunction(l, chan_tostring);
            ffi::lua_setfield(l, -2, c"__tostring".as_ptr());
            ffi::lua_pushliteral(l, c"channel");
            ffi::lua_setfield(l, -2, c"__name".as_ptr());
        } else {
            ffi::lua_pushcfunction(l, case_tostring);
            ffi::lua_setfield(l, -2, c"__tostring".as_ptr());
            ffi::lua_pushliteral(l, c"channel.case");
            ffi::lua_setfield(l, -2, c"__name".as_ptr());
        }
        ffi::lua_pushboolean(l, 0);
        ffi::lua_setfield(l, -2, c"__metatable".as_ptr());
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key(which));
    }
}

/// The block at `idx` if it is a userdata with metatable `which`.
///
/// The metatable is recognised by its type tag: array slot 1 holds the light userdata
/// `key(which)`, a value only this module can make (Lua code cannot create light userdata),
/// stored in a table Lua code cannot reach (`__metatable` hides it from `getmetatable`). So a
/// userdata passes exactly when its metatable is one `push_metatable` built — what comparing
/// with the registry's copy checked, without the registry's hash lookup per call.
unsafe fn check_ud(l: *mut ffi::lua_State, idx: c_int, which: &'static u8) -> *mut c_void {
    // SAFETY: type and metatable checks only; the stack is restored (`lua_getmetatable`
    // pushes only on success; `lua_rawgeti` on the metatable pushes one value).
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TUSERDATA || ffi::lua_getmetatable(l, idx) == 0 {
            return ptr::null_mut();
        }
        ffi::lua_rawgeti(l, -1, 1);
        let same = ptr::eq(ffi::lua_touserdata(l, -1) as *const c_void, key(which));
        ffi::lua_pop(l, 2);
        if same {
            ffi::lua_touserdata(l, idx)
        } else {
            ptr::null_mut()
        }
    }
}

/// The channel at `idx`, or null.
unsafe fn to_chan(l: *mut ffi::lua_State, idx: c_int) -> *mut RawChan {
    // SAFETY: forwarded.
    unsafe { check_ud(l, idx, &CHAN_MT) as *mut RawChan }
}

/// Raise `msg` with the caller's position (like `luaL_error`). Never returns.
unsafe fn raise(l: *mut ffi::lua_State, msg: &str) -> c_int {
    // SAFETY: pushing a string and raising; `msg` is a borrowed &str (no destructor).
    unsafe {
        ffi::luaL_where(l, 1);
        ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
        ffi::lua_concat(l, 2);
        ffi::lua_error(l)
    }
}

/// Push a new channel of capacity `cap` onto `l`.
unsafe fn push_new_channel(l: *mut ffi::lua_State, cap: u32) {
    // SAFETY: the block is fully written before the metatable (and so `__gc`) is set.
    unsafe {
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<RawChan>(), 1) as *mut RawChan;
        ptr::write(
            p,
            RawChan {
                magic: CHAN_MAGIC,
                cap,
                closed: false,
                head: 0,
                len: 0,
                recvq: VecDeque::new(),
                sendq: VecDeque::new(),
                topic: None,
            },
        );
        push_metatable(l, &CHAN_MT);
        ffi::lua_setmetatable(l, -2);
    }
}

unsafe extern "C-unwind" fn chan_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by the collector with the channel as argument 1; the block was written by
    // `push_new_channel`, and the magic is cleared so a resurrected object is not dropped twice.
    unsafe {
        let p = ffi::lua_touserdata(l, 1) as *mut RawChan;
        if !p.is_null() && (*p).magic == CHAN_MAGIC {
            (*p).magic = 0;
            ptr::drop_in_place(p);
        }
        0
    }
}

unsafe extern "C-unwind" fn chan_tostring(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: formats from plain fields; the string is pushed before any raise can happen.
    unsafe {
        let p = to_chan(l, 1);
        let s = if p.is_null() {
            "channel".to_string()
        } else {
            format!("channel{{cap={}}}: {:p}", (*p).cap, p)
        };
        ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
        drop(s);
        1
    }
}

unsafe extern "C-unwind" fn case_tostring(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: reads a plain flag.
    unsafe {
        let p = check_ud(l, 1, &CASE_MT) as *mut RawCase;
        let s: &'static std::ffi::CStr = if !p.is_null() && (*p).send {
            c"channel.case{send}"
        } else {
            c"channel.case{receive}"
        };
        ffi::lua_pushstring(l, s.as_ptr());
        1
    }
}

// ------------------------------------------------------------------------------------------
// Buffer ring (user value 1 of the channel at `idx`)

/// Push the buffer table of the channel at `idx` (created pre-sized on first use: may raise).
unsafe fn push_buffer(l: *mut ffi::lua_State, idx: c_int, cap: u32) {
    // SAFETY: the channel is at `idx`; creating the table may raise a memory error, which is
    // fine here (callers hold no destructors at this point).
    unsafe {
        let idx = ffi::lua_absindex(l, idx);
        if ffi::lua_getiuservalue(l, idx, 1) != ffi::LUA_TTABLE {
            ffi::lua_pop(l, 1);
            ffi::lua_createtable(l, cap as c_int, 0);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_setiuservalue(l, idx, 1);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Task wake-ups

/// Give task `t` the `n` values on top of `l` as resume arguments and queue it.
unsafe fn wake_raw(core: &mut Core, l: *mut ffi::lua_State, t: TaskId, n: c_int) {
    // SAFETY: `l` and the task's thread belong to the same state; checkstack before moving.
    unsafe {
        match core.tasks.get_mut(t) {
            Some(task) => {
                let th = task.thread.state();
                if th != l {
                    ffi::lua_checkstack(th, n + 1);
                    ffi::lua_xmove(l, th, n);
                    task.nargs += n;
                } else {
                    // Waking the running task itself: the values stay where they are and are
                    // passed by its yield (only the requeue path does this).
                    task.nargs += n;
                }
                core.queue.push_back(t);
            }
            None => ffi::lua_pop(l, n),
        }
    }
}

/// Push a select result for the engine's select continuation: `ch, value, ok`, where `ch`
/// is taken from `ch_idx` and `value` is on top of `l` (consumed).
unsafe fn push_select_values(l: *mut ffi::lua_State, ch_idx: c_int, ok: bool) {
    // SAFETY: value on top; `ch_idx` absolute.
    unsafe {
        ffi::lua_pushvalue(l, ch_idx);
        ffi::lua_insert(l, -2);
        ffi::lua_pushboolean(l, ok as c_int);
    }
}

/// Complete select `sid` of `core` through case `case` with the value on top of `l`
/// (consumed): wake its task with `ch, value, ok` and remove its other waiters.
unsafe fn complete_select(core: &mut Core, l: *mut ffi::lua_State, sid: u32, case: u16, ok: bool) {
    // SAFETY: the cases table is kept alive by its registry reference until removed here.
    unsafe {
        let Some(sel) = core.selects.remove(sid) else {
            ffi::lua_pop(l, 1);
            return;
        };
        core.parked = core.parked.saturating_sub(1);
        ffi::lua_checkstack(l, 6);
        // the case's channel: cases[case + 1] → user value 1
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, sel.cases_ref as ffi::lua_Integer);
        ffi::lua_rawgeti(l, -1, case as ffi::lua_Integer + 1);
        ffi::lua_getiuservalue(l, -1, 1);
        let ch_idx = ffi::lua_absindex(l, -1);
        ffi::lua_pushvalue(l, -4); // the value
        push_select_values(l, ch_idx, ok);
        wake_raw(core, l, sel.task, 3);
        ffi::lua_pop(l, 4); // value, cases table, case, channel
        flush_select(l, &sel, sid);
        ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, sel.cases_ref);
    }
}

/// Remove select `sid`'s waiters from its case channels.
unsafe fn flush_select(l: *mut ffi::lua_State, sel: &SelectOp, sid: u32) {
    // SAFETY: reads the cases table through its registry reference; stack restored.
    unsafe {
        ffi::lua_checkstack(l, 4);
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, sel.cases_ref as ffi::lua_Integer);
        for i in 0..sel.n {
            ffi::lua_rawgeti(l, -1, i as ffi::lua_Integer + 1);
            ffi::lua_getiuservalue(l, -1, 1);
            let c = to_chan(l, -1);
            if !c.is_null() {
                (*c).recvq.retain(|w| w.select.map(|s| s.0) != Some(sid));
                (*c).sendq.retain(|w| w.select.map(|s| s.0) != Some(sid));
            }
            ffi::lua_pop(l, 2);
        }
        ffi::lua_pop(l, 1);
    }
}

/// Push the value a sender waiter offers onto `l`.
unsafe fn push_sender_value(core: &Core, l: *mut ffi::lua_State, w: &Waiter) {
    // SAFETY: a plain sender is suspended inside `ch:send`, whose frame holds the value at
    // argument 2 of thread `w.th` (alive: referenced by its task); a select sender's value is
    // user value 2 of its case.
    unsafe {
        match w.select {
            Some((sid, case)) => match core.selects.get(sid) {
                Some(sel) => {
                    ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, sel.cases_ref as ffi::lua_Integer);
                    ffi::lua_rawgeti(l, -1, case as ffi::lua_Integer + 1);
                    ffi::lua_getiuservalue(l, -1, 2);
                    ffi::lua_replace(l, -3);
                    ffi::lua_pop(l, 1);
                }
                None => ffi::lua_pushnil(l),
            },
            None => {
                ffi::lua_checkstack(w.th, 1);
                ffi::lua_pushvalue(w.th, 2);
                ffi::lua_xmove(w.th, l, 1);
            }
        }
    }
}

/// Wake the sender waiter `w` whose value was taken (value on top of `l`, consumed).
unsafe fn release_sender(core: &mut Core, l: *mut ffi::lua_State, w: Waiter) {
    // SAFETY: forwarded.
    unsafe {
        match w.select {
            Some((sid, case)) => complete_select(core, l, sid, case, true),
            None => {
                ffi::lua_pop(l, 1);
                core.parked = core.parked.saturating_sub(1);
                ffi::lua_pushboolean(l, 1);
                wake_raw(core, l, w.task, 1);
            }
        }
    }
}

/// Hand the value on top of `l` (consumed) to the receiver waiter `w`.
unsafe fn deliver_to_receiver(core: &mut Core, l: *mut ffi::lua_State, w: Waiter) {
    // SAFETY: forwarded.
    unsafe {
        match w.select {
            Some((sid, case)) => complete_select(core, l, sid, case, true),
            None => {
                core.parked = core.parked.saturating_sub(1);
                ffi::lua_pushboolean(l, 1);
                wake_raw(core, l, w.task, 2);
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Operations (shared by the Lua methods, `select` and the engine)

/// How the performing task's own results are produced.
#[derive(Clone, Copy)]
enum Who {
    /// A plain method call: `true` (send) or `v, ok` (receive).
    Plain,
    /// A select case: `ch, v, ok` for the select continuation; the channel is at this index.
    Select(c_int),
}

/// Outcome of an operation for the performing task.
enum Done {
    /// Completed: its `n` result values are on top of `l`; the task is already queued.
    Now(c_int),
    /// Must wait (plain operations registered their waiter).
    Blocked,
    /// Send on a closed channel.
    Closed,
    /// Building a subscription's backlog message failed (raised by the caller).
    Fail(String),
}

/// Push the performer's results for a completed operation and queue it (before partners).
unsafe fn mine(
    core: &mut Core,
    l: *mut ffi::lua_State,
    me: TaskId,
    who: Who,
    ok: bool,
    send: bool,
) -> c_int {
    // SAFETY: value (receive) or sent value (select send) on top of `l` when needed.
    unsafe {
        core.queue.push_back(me);
        match who {
            Who::Plain if send => {
                ffi::lua_pushboolean(l, 1);
                1
            }
            Who::Plain => {
                ffi::lua_pushboolean(l, ok as c_int);
                2
            }
            Who::Select(ch_idx) => {
                push_select_values(l, ch_idx, ok);
                3
            }
        }
    }
}

/// Send the value at `v_idx` on the channel at `ch_idx` for task `me`, running on `l`.
unsafe fn op_send(
    core: &mut Core,
    l: *mut ffi::lua_State,
    ch_idx: c_int,
    v_idx: c_int,
    me: TaskId,
    who: Who,
) -> Done {
    // SAFETY: `ch_idx` holds a checked channel; all stack positions are absolute.
    unsafe {
        ffi::lua_checkstack(l, 8);
        let c = &mut *(ffi::lua_touserdata(l, ch_idx) as *mut RawChan);
        if c.closed {
            return Done::Closed;
        }
        if let Some(w) = pop_valid(&mut c.recvq, core.epoch) {
            let n = match who {
                Who::Plain => mine(core, l, me, who, true, true),
                Who::Select(_) => {
                    ffi::lua_pushvalue(l, v_idx);
                    mine(core, l, me, who, true, true)
                }
            };
            // partner after me: the value for the receiver
            ffi::lua_pushvalue(l, v_idx);
            deliver_to_receiver(core, l, w);
            return Done::Now(n);
        }
        if c.len < c.cap {
            let cap = c.cap;
            let slot = (c.head + c.len) % cap + 1;
            c.len += 1;
            push_buffer(l, ch_idx, cap);
            ffi::lua_pushvalue(l, v_idx);
            ffi::lua_rawseti(l, -2, slot as ffi::lua_Integer);
            ffi::lua_pop(l, 1);
            let n = match who {
                Who::Plain => mine(core, l, me, who, true, true),
                Who::Select(_) => {
                    ffi::lua_pushvalue(l, v_idx);
                    mine(core, l, me, who, true, true)
                }
            };
            return Done::Now(n);
        }
        if let Who::Plain = who {
            if ffi::lua_isyieldable(l) == 0 {
                return Done::Fail(NOT_YIELDABLE.to_string());
            }
            let c = &mut *(ffi::lua_touserdata(l, ch_idx) as *mut RawChan);
            c.sendq.push_back(Waiter {
                epoch: core.epoch,
                task: me,
                th: l,
                select: None,
                lazy: false,
            });
            core.parked += 1;
        }
        Done::Blocked
    }
}

/// Receive from the channel at `ch_idx` for task `me`, running on `l`.
unsafe fn op_receive(
    core: &mut Core,
    l: *mut ffi::lua_State,
    ch_idx: c_int,
    me: TaskId,
    who: Who,
) -> Done {
    // SAFETY: `ch_idx` holds a checked channel; stack positions absolute.
    unsafe {
        ffi::lua_checkstack(l, 8);
        let c = &mut *(ffi::lua_touserdata(l, ch_idx) as *mut RawChan);
        let epoch = core.epoch;
        if c.len > 0 {
            let cap = c.cap;
            let slot = c.head + 1;
            c.head = (c.head + 1) % cap;
            c.len -= 1;
            let sender = pop_valid(&mut c.sendq, epoch);
            push_buffer(l, ch_idx, cap);
            ffi::lua_rawgeti(l, -1, slot as ffi::lua_Integer);
            ffi::lua_pushnil(l);
            ffi::lua_rawseti(l, -3, slot as ffi::lua_Integer);
            // stack: buffer, value
            match sender {
                Some(w) => {
                    let c = &mut *(ffi::lua_touserdata(l, ch_idx) as *mut RawChan);
                    let nslot = (c.head + c.len) % cap + 1;
                    c.len += 1;
                    push_sender_value(core, l, &w);
                    ffi::lua_pushvalue(l, -1);
                    ffi::lua_rawseti(l, -4, nslot as ffi::lua_Integer);
                    // stack: buffer, value, sender value
                    ffi::lua_insert(l, -3); // sender value, buffer, value
                    ffi::lua_remove(l, -2); // sender value, value
                    let n = mine(core, l, me, who, true, false);
                    // move my results below the sender value
                    ffi::lua_rotate(l, -(n + 1), n);
                    release_sender(core, l, w);
                    Done::Now(n)
                }
                None => {
                    ffi::lua_remove(l, -2);
                    Done::Now(mine(core, l, me, who, true, false))
                }
            }
        } else if let Some(w) = pop_valid(&mut c.sendq, epoch) {
            push_sender_value(core, l, &w);
            ffi::lua_pushvalue(l, -1);
            // stack: sv, sv
            let n = mine(core, l, me, who, true, false);
            ffi::lua_rotate(l, -(n + 1), n);
            release_sender(core, l, w);
            Done::Now(n)
        } else if c.closed {
            ffi::lua_pushnil(l);
            Done::Now(mine(core, l, me, who, false, false))
        } else {
            // A subscription channel with a backlog: take its oldest message now (unless
            // receivers already wait: they are served first, by the next delivery round).
            let p = ffi::lua_touserdata(l, ch_idx) as *const c_void;
            if let Some(topic) = c.topic.as_deref()
                && !has_valid(&mut c.recvq, epoch)
            {
                match mailbox::pull(core, l, topic, p) {
                    Ok(true) => return Done::Now(mine(core, l, me, who, true, false)),
                    Ok(false) => {}
                    Err(m) => return Done::Fail(m),
                }
            }
            if let Who::Plain = who {
                if ffi::lua_isyieldable(l) == 0 {
                    return Done::Fail(NOT_YIELDABLE.to_string());
                }
                let c = &mut *(ffi::lua_touserdata(l, ch_idx) as *mut RawChan);
                c.recvq.push_back(Waiter {
                    epoch,
                    task: me,
                    th: l,
                    select: None,
                    // `ch_receive` yields with `receive_k` (the thread can yield: checked
                    // above).
                    lazy: true,
                });
                core.parked += 1;
            }
            Done::Blocked
        }
    }
}

/// Close the channel at `ch_idx` (running on `l`), waking its waiters; `closer` is queued after
/// them. Returns whether anyone was woken.
unsafe fn op_close(
    core: &mut Core,
    l: *mut ffi::lua_State,
    ch_idx: c_int,
    closer: Option<TaskId>,
) -> bool {
    // SAFETY: `ch_idx` holds a checked channel.
    unsafe {
        ffi::lua_checkstack(l, 8);
        let c = &mut *(ffi::lua_touserdata(l, ch_idx) as *mut RawChan);
        if c.closed {
            return false;
        }
        c.closed = true;
        let senders = std::mem::take(&mut c.sendq);
        let receivers = std::mem::take(&mut c.recvq);
        let epoch = core.epoch;
        let mut woke = false;
        for w in senders.into_iter().filter(|w| w.epoch == epoch) {
            woke = true;
            let task = match w.select {
                Some((sid, _)) => match core.selects.remove(sid) {
                    Some(sel) => {
                        flush_select(l, &sel, sid);
                        ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, sel.cases_ref);
                        sel.task
                    }
                    None => continue,
                },
                None => w.task,
            };
            core.parked = core.parked.saturating_sub(1);
            if let Some(t) = core.tasks.get_mut(task) {
                t.send_closed = true;
            }
            core.queue.push_back(task);
        }
        for w in receivers.into_iter().filter(|w| w.epoch == epoch) {
            woke = true;
            ffi::lua_pushnil(l);
            match w.select {
                Some((sid, case)) => complete_select(core, l, sid, case, false),
                None => {
                    core.parked = core.parked.saturating_sub(1);
                    ffi::lua_pushboolean(l, 0);
                    wake_raw(core, l, w.task, 2);
                }
            }
        }
        if woke && let Some(t) = closer {
            core.queue.push_back(t);
        }
        woke
    }
}

// ------------------------------------------------------------------------------------------
// Lua methods

/// Yield the running task: `MARK` plus its `n` results already on top of `l` (queued), or
/// just `MARK` (parked).
unsafe fn yield_op(l: *mut ffi::lua_State, n: c_int, op: Op) -> c_int {
    // SAFETY: forwarded.
    unsafe { yield_op_k(l, n, op, None) }
}

/// [`yield_op`] with a continuation `k` run when the task resumes (instead of returning the
/// resume values directly).
unsafe fn yield_op_k(
    l: *mut ffi::lua_State,
    n: c_int,
    op: Op,
    k: Option<ffi::lua_KFunction>,
) -> c_int {
    // SAFETY: `l` is the running thread; yielding from a C function as its return is the
    // documented protocol. No destructors are live in the callers at this point.
    unsafe {
        if matches!(op, Op::Requeued) && take_back_if_alone(l) {
            // The n results on top are the function's return values.
            return n;
        }
        if with_core(|c| c.pending = Some(op)).is_err() {
            return raise(l, CoreError::NoProcess.message());
        }
        super::preempt::set_op_pending(true);
        ffi::lua_pushlightuserdata(l, mark().0);
        if n > 0 {
            ffi::lua_insert(l, -(n + 1));
        }
        ffi::lua_yieldk(l, n + 1, 0, k)
    }
}

/// A completed operation queued its task at the back of the run queue (upstream order). When
/// that task is the only runnable one, yielding would only make the engine resume it at once
/// (nothing else runs and no delivery happens between two resumes of one round), so the task
/// is taken back off the queue and the operation returns directly — a yield/resume pair less
/// per operation for a process draining a channel or its inbox.
///
/// Where the task cannot yield (inside a C function such as `table.sort`'s comparator) the
/// operation is complete all the same: the task is taken back off the queue and the results
/// are returned without the yield (a yield would raise and leave the task queued twice).
unsafe fn take_back_if_alone(l: *mut ffi::lua_State) -> bool {
    // SAFETY: `l` is the running thread (only queried).
    if unsafe { ffi::lua_isyieldable(l) } == 0 {
        return with_core(|c| {
            let me = c.current;
            if let Some(i) = c.queue.iter().rposition(|t| *t == me) {
                c.queue.remove(i);
            }
        })
        .is_ok();
    }
    with_core(|c| {
        let alone = c.queue.len() == 1 && c.queue.back() == Some(&c.current);
        if alone {
            c.queue.pop_back();
        }
        alone
    })
    .unwrap_or(false)
}

/// Raised by an operation that must wait where the task cannot yield (inside a C function
/// such as `table.sort`'s comparator) — Lua's own message for a yield there. Nothing is
/// registered: no waiter stays behind to take a later value.
const NOT_YIELDABLE: &str = "attempt to yield across a C-call boundary";

/// Run `f` with the core; raise the core error message on failure.
unsafe fn core_op<R>(l: *mut ffi::lua_State, f: impl FnOnce(&mut Core) -> R) -> Result<R, c_int> {
    match with_core(f) {
        Ok(r) => Ok(r),
        // SAFETY: raising with nothing live.
        Err(e) => Err(unsafe { raise(l, e.message()) }),
    }
}

unsafe extern "C-unwind" fn ch_send(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as `ch:send(v)`.
    unsafe {
        if to_chan(l, 1).is_null() {
            return raise(l, "bad argument #1 to 'send' (channel expected)");
        }
        ffi::lua_settop(l, 2);
        let r = match core_op(l, |core| {
            let me = core.current;
            op_send(core, l, 1, 2, me, Who::Plain)
        }) {
            Ok(r) => r,
            Err(n) => return n,
        };
        match r {
            Done::Closed => raise(l, "send on closed channel"),
            Done::Now(n) => yield_op(l, n, Op::Requeued),
            Done::Blocked => yield_op(l, 0, Op::Park),
            Done::Fail(m) => raise_owned(l, m),
        }
    }
}

unsafe extern "C-unwind" fn ch_receive(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as `ch:receive()`.
    unsafe {
        if to_chan(l, 1).is_null() {
            return raise(l, "bad argument #1 to 'receive' (channel expected)");
        }
        ffi::lua_settop(l, 1);
        let r = match core_op(l, |core| {
            let me = core.current;
            op_receive(core, l, 1, me, Who::Plain)
        }) {
            Ok(r) => r,
            Err(n) => return n,
        };
        match r {
            Done::Now(n) => yield_op(l, n, Op::Requeued),
            Done::Fail(m) => raise_owned(l, m),
            _ => yield_op_k(l, 0, Op::Park, Some(receive_k)),
        }
    }
}

/// Continuation of a blocked `ch:receive()`: its results are the resume values (`v, ok`),
/// with a message a delivery left unbuilt ([`super::message::lazy_mark`]) built here, on the
/// receiving thread inside its resume (see [`hand_off`]).
unsafe extern "C-unwind" fn receive_k(
    l: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: called by Lua on resume with the stack of `ch_receive` (the channel at 1) plus
    // the resume values; no Rust values are live in this frame.
    unsafe {
        let n = ffi::lua_gettop(l) - 1;
        if n >= 1
            && ffi::lua_type(l, 2) == ffi::LUA_TLIGHTUSERDATA
            && ffi::lua_touserdata(l, 2) == super::message::lazy_mark()
        {
            super::message::build_lazy(l, 2);
        }
        n
    }
}

unsafe extern "C-unwind" fn ch_close(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as `ch:close()`.
    unsafe {
        if to_chan(l, 1).is_null() {
            return raise(l, "bad argument #1 to 'close' (channel expected)");
        }
        ffi::lua_settop(l, 1);
        let woke = match core_op(l, |core| {
            let me = core.current;
            op_close(core, l, 1, Some(me))
        }) {
            Ok(r) => r,
            Err(n) => return n,
        };
        if woke {
            yield_op(l, 0, Op::Requeued)
        } else {
            0
        }
    }
}

unsafe fn new_case(l: *mut ffi::lua_State, send: bool) -> c_int {
    // SAFETY: channel at 1 (checked by the callers), value at 2 for send cases.
    unsafe {
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<RawCase>(), 2) as *mut RawCase;
        ptr::write(
            p,
            RawCase {
                magic: CASE_MAGIC,
                send,
            },
        );
        push_metatable(l, &CASE_MT);
        ffi::lua_setmetatable(l, -2);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_setiuservalue(l, -2, 1);
        if send {
            ffi::lua_pushvalue(l, 2);
            ffi::lua_setiuservalue(l, -2, 2);
        }
        1
    }
}

unsafe extern "C-unwind" fn ch_case_send(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as `ch:case_send(v)`.
    unsafe {
        if to_chan(l, 1).is_null() {
            return raise(l, "bad argument #1 to 'case_send' (channel expected)");
        }
        ffi::lua_settop(l, 2);
        new_case(l, true)
    }
}

unsafe extern "C-unwind" fn ch_case_receive(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as `ch:case_receive()`.
    unsafe {
        if to_chan(l, 1).is_null() {
            return raise(l, "bad argument #1 to 'case_receive' (channel expected)");
        }
        ffi::lua_settop(l, 1);
        new_case(l, false)
    }
}

/// `channel.new([n])`.
unsafe extern "C-unwind" fn channel_new(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua.
    unsafe {
        let cap = match ffi::lua_type(l, 1) {
            ffi::LUA_TNUMBER => {
                let n = ffi::lua_tonumberx(l, 1, ptr::null_mut());
                if n.is_finite() && n > 0.0 {
                    n.min(u32::MAX as f64 / 2.0) as u32
                } else {
                    0
                }
            }
            _ => 0,
        };
        push_new_channel(l, cap);
        1
    }
}

/// The continuation of `channel.select` after it waited: turns `ch, value, ok` into the
/// result table (or passes `nil, err` through for a select whose send case's channel closed).
unsafe extern "C-unwind" fn select_k(
    l: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: the engine resumed us with the values pushed by `complete_select` (3), by a
    // select's own immediate completion (3), by the default case (0 values plus the default
    // flag in the context), or `nil, err` (2).
    unsafe {
        let top = ffi::lua_gettop(l);
        // Arguments of select (cases, default) stay at 1..=2.
        let n = top - 2;
        if n == 2 {
            return 2;
        }
        if n == 0 {
            ffi::lua_createtable(l, 0, 2);
            ffi::lua_pushboolean(l, 1);
            ffi::lua_setfield(l, -2, c"default".as_ptr());
            ffi::lua_pushboolean(l, 1);
            ffi::lua_setfield(l, -2, c"ok".as_ptr());
            return 1;
        }
        // ch, value, ok
        ffi::lua_createtable(l, 0, 3);
        ffi::lua_pushvalue(l, top - 2);
        ffi::lua_setfield(l, -2, c"channel".as_ptr());
        ffi::lua_pushvalue(l, top - 1);
        ffi::lua_setfield(l, -2, c"value".as_ptr());
        ffi::lua_pushvalue(l, top);
        ffi::lua_setfield(l, -2, c"ok".as_ptr());
        1
    }
}

/// `channel.select(cases[, default])`.
unsafe extern "C-unwind" fn channel_select(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua. Argument 1 is the cases table (checked), 2 the optional default
    // flag; the stack is kept at exactly those two slots while the select waits.
    unsafe {
        if ffi::lua_type(l, 1) != ffi::LUA_TTABLE {
            let got = std::ffi::CStr::from_ptr(ffi::lua_typename(l, ffi::lua_type(l, 1)));
            let msg = format!(
                "bad argument #1 to 'select' (table expected, got {})",
                got.to_string_lossy()
            );
            ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
            drop(msg);
            ffi::luaL_where(l, 1);
            ffi::lua_insert(l, -2);
            ffi::lua_concat(l, 2);
            ffi::lua_error(l)
        }
        ffi::lua_settop(l, 2);
        let mut has_default =
            ffi::lua_toboolean(l, 2) != 0 && ffi::lua_type(l, 2) == ffi::LUA_TBOOLEAN;
        ffi::lua_getfield(l, 1, c"default".as_ptr());
        if ffi::lua_type(l, -1) == ffi::LUA_TBOOLEAN && ffi::lua_toboolean(l, -1) != 0 {
            has_default = true;
        }
        ffi::lua_pop(l, 1);
        // Collect the valid cases into a fresh array (non-case values are ignored).
        ffi::lua_createtable(l, 4, 0); // 3: cases
        let len = ffi::lua_rawlen(l, 1) as ffi::lua_Integer;
        let mut n: u32 = 0;
        for i in 1..=len {
            ffi::lua_rawgeti(l, 1, i);
            if !check_ud(l, -1, &CASE_MT).is_null() {
                n += 1;
                ffi::lua_rawseti(l, 3, n as ffi::lua_Integer);
            } else {
                ffi::lua_pop(l, 1);
            }
        }
        // First ready case, in declaration order.
        for i in 1..=n {
            ffi::lua_settop(l, 3);
            ffi::lua_rawgeti(l, 3, i as ffi::lua_Integer); // 4: case
            let case = &*(ffi::lua_touserdata(l, 4) as *const RawCase);
            let send = case.send;
            ffi::lua_getiuservalue(l, 4, 1); // 5: channel
            if to_chan(l, 5).is_null() {
                continue;
            }
            ffi::lua_getiuservalue(l, 4, 2); // 6: value (nil for receive)
            let r = match core_op(l, |core| {
                let me = core.current;
                let epoch = core.epoch;
                let c = &mut *(ffi::lua_touserdata(l, 5) as *mut RawChan);
                let ready =
                    if send {
                        has_valid(&mut c.recvq, epoch) || (!c.closed && c.len < c.cap)
                    } else {
                        c.len > 0
                            || has_valid(&mut c.sendq, epoch)
                            || c.closed
                            || (c.topic.as_deref().is_some_and(|t| {
                                mailbox::pullable(core, t, ffi::lua_touserdata(l, 5))
                            }) && !has_valid(&mut c.recvq, epoch))
                    };
                if !ready {
                    return None;
                }
                Some(if send {
                    op_send(core, l, 5, 6, me, Who::Select(5))
                } else {
                    op_receive(core, l, 5, me, Who::Select(5))
                })
            }) {
                Ok(r) => r,
                Err(n) => return n,
            };
            if let Some(Done::Fail(m)) = r {
                return raise_owned(l, m);
            }
            if let Some(Done::Now(k)) = r {
                // move the k results down to 3.., dropping the scratch slots
                for j in 0..k {
                    ffi::lua_copy(l, -(k - j), 3 + j);
                }
                ffi::lua_settop(l, 2 + k);
                return select_yield(l, k, Op::Requeued);
            }
        }
        ffi::lua_settop(l, 3);
        if has_default {
            ffi::lua_settop(l, 2);
            let me = match core_op(l, |core| {
                let me = core.current;
                core.queue.push_back(me);
                me
            }) {
                Ok(m) => m,
                Err(r) => return r,
            };
            let _ = me;
            return select_yield(l, 0, Op::Requeued);
        }
        if n == 0 {
            // Waits on nothing: not parked on any channel (the deadlock rule sees it).
            ffi::lua_settop(l, 2);
            return select_yield(l, 0, Op::Park);
        }
        // Block on every case (a thread that cannot yield must not leave waiters behind).
        if ffi::lua_isyieldable(l) == 0 {
            return raise(l, NOT_YIELDABLE);
        }
        ffi::lua_pushvalue(l, 3);
        let cases_ref = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        let r = core_op(l, |core| {
            let me = core.current;
            let epoch = core.epoch;
            let sid = core.selects.insert(SelectOp {
                task: me,
                cases_ref,
                n,
            });
            for i in 1..=n {
                ffi::lua_rawgeti(l, 3, i as ffi::lua_Integer);
                let send = (*(ffi::lua_touserdata(l, -1) as *const RawCase)).send;
                ffi::lua_getiuservalue(l, -1, 1);
                let c = to_chan(l, -1);
                if !c.is_null() {
                    let w = Waiter {
                        epoch,
                        task: me,
                        th: l,
                        select: Some((sid, (i - 1) as u16)),
                        lazy: false,
                    };
                    if send {
                        (*c).sendq.push_back(w);
                    } else {
                        (*c).recvq.push_back(w);
                    }
                }
                ffi::lua_pop(l, 2);
            }
            core.parked += 1;
        });
        if let Err(r) = r {
            return r;
        }
        ffi::lua_settop(l, 2);
        select_yield(l, 0, Op::Park)
    }
}

/// Yield from `select` with its continuation; `n` results are at 3.. (above the arguments).
unsafe fn select_yield(l: *mut ffi::lua_State, n: c_int, op: Op) -> c_int {
    // SAFETY: as `yield_op`, with a continuation.
    unsafe {
        if matches!(op, Op::Requeued) && take_back_if_alone(l) {
            // The stack is what the continuation expects after a resume: build the result.
            return select_k(l, ffi::LUA_OK, 0);
        }
        if with_core(|c| c.pending = Some(op)).is_err() {
            return raise(l, CoreError::NoProcess.message());
        }
        super::preempt::set_op_pending(true);
        ffi::lua_pushlightuserdata(l, mark().0);
        if n > 0 {
            ffi::lua_insert(l, -(n + 1));
        }
        ffi::lua_yieldk(l, n + 1, 0, Some(select_k))
    }
}

/// The `channel` module table.
pub(crate) fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 2)?;
    // SAFETY: both are valid lua_CFunctions following the protocol documented above.
    unsafe {
        t.raw_set("new", lua.create_c_function(channel_new)?)?;
        t.raw_set("select", lua.create_c_function(channel_select)?)?;
    }
    Ok(LuaValue::Table(t))
}

// ------------------------------------------------------------------------------------------
// Engine-side API (subscriptions, timers, futures)

/// Create a channel userdata with capacity `cap`.
pub(crate) fn new_channel(lua: &Lua, cap: usize) -> mlua::Result<AnyUserData> {
    // SAFETY: pushes one new channel on the current stack; `exec_raw` pops it as the result.
    unsafe {
        lua.exec_raw::<AnyUserData>((), |l| {
            push_new_channel(l, cap.min(u32::MAX as usize / 2) as u32);
        })
    }
}

/// The channel block of a userdata created by this module.
fn raw_of(ud: &AnyUserData) -> *mut RawChan {
    let p = ud.to_pointer() as *mut RawChan;
    // SAFETY: only used on userdata we created as channels (subscription channels); the
    // magic check guards against anything else.
    if p.is_null() || unsafe { (*p).magic } != CHAN_MAGIC {
        return ptr::null_mut();
    }
    p
}

/// Tag a channel with its subscription topic.
pub(crate) fn set_topic(ud: &AnyUserData, topic: &str) {
    let p = raw_of(ud);
    if !p.is_null() {
        // SAFETY: live channel block (we hold a reference to the userdata); no other access
        // is in progress (engine code, single-threaded per state).
        unsafe { (*p).topic = Some(topic.into()) };
    }
}

/// The subscription topic of `ud` if it is a channel (any userdata may be passed).
pub(crate) fn topic_of(lua: &Lua, ud: &AnyUserData) -> Option<Box<str>> {
    let v = LuaValue::UserData(ud.clone());
    lua.exec_raw_lua(|raw| {
        // SAFETY: push the value, check its metatable, read the block, restore the stack.
        unsafe {
            let l = raw.state();
            if ffi::lua_checkstack(l, 4) == 0 {
                return None;
            }
            let base = ffi::lua_gettop(l);
            if raw.push_value(&v).is_err() {
                ffi::lua_settop(l, base);
                return None;
            }
            let p = to_chan(l, -1);
            let t = if p.is_null() {
                None
            } else {
                (*p).topic.clone()
            };
            ffi::lua_settop(l, base);
            t
        }
    })
}

/// The block of a channel, held by the core for the delivery fast path.
///
/// Valid while the core also holds the channel userdata ([`super::core::Sub::chan`]); only
/// dereferenced by the engine on the owning process's thread.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChanRef(*mut RawChan);

// SAFETY: the pointee lives in the Lua state owned by the same process as the core holding
// this reference; the state and the core move between threads together and are only touched
// by the thread stepping the process.
unsafe impl Send for ChanRef {}

impl ChanRef {
    /// Whether this is the block at `p`.
    pub(crate) fn is(self, p: *const c_void) -> bool {
        self.0 as *const c_void == p
    }
}

/// The block reference of a channel userdata created by this module.
pub(crate) fn raw_ref(ud: &AnyUserData) -> ChanRef {
    ChanRef(raw_of(ud))
}

/// A subscription channel's readiness for a delivery.
pub(crate) enum Readiness {
    /// The user closed it.
    Closed,
    /// A receiver is waiting.
    Receiver,
    /// No receiver, but buffer room.
    Room,
    /// Neither.
    Busy,
}

/// Whether a non-blocking send on the channel would currently succeed, and how.
pub(crate) fn readiness(core: &Core, ch: ChanRef) -> Readiness {
    if ch.0.is_null() {
        return Readiness::Closed;
    }
    // SAFETY: see `ChanRef`: live block, exclusive access during the owner's step.
    let c = unsafe { &mut *ch.0 };
    if c.closed {
        Readiness::Closed
    } else if has_valid(&mut c.recvq, core.epoch) {
        Readiness::Receiver
    } else if c.len < c.cap {
        Readiness::Room
    } else {
        Readiness::Busy
    }
}

/// A value delivered by the engine: an mlua value, or a message (built on the stack).
pub(crate) enum Delivery {
    /// Any Lua value.
    Value(LuaValue),
    /// A `process.Message` for this data.
    Message(super::message::MessageData),
    /// The lazy mark of a message parked in the receiving task (engine-internal).
    Lazy,
}

impl Delivery {
    /// Push the value onto `l` (the current stack of `raw`).
    unsafe fn push(self, raw: &mlua::state::RawLua, l: *mut ffi::lua_State) -> mlua::Result<()> {
        // SAFETY: forwarded; `push_message` is protected and pushes exactly one value.
        unsafe {
            match self {
                Delivery::Value(v) => raw.push_value(&v),
                Delivery::Message(d) => {
                    super::message::push_message(l, d).map_err(mlua::Error::runtime)
                }
                Delivery::Lazy => {
                    ffi::lua_pushlightuserdata(l, super::message::lazy_mark());
                    Ok(())
                }
            }
        }
    }
}

/// Hand `v` to the first waiting receiver of the channel (after [`readiness`] said
/// `Receiver`). Runs without mlua's state lock ([`exec_unlocked`]).
///
/// # Safety
/// `lua` is the state of `core`'s process (`exec_unlocked`'s contract).
pub(crate) unsafe fn hand_off(
    lua: &Lua,
    core: &mut Core,
    ch: ChanRef,
    v: Delivery,
) -> mlua::Result<()> {
    // SAFETY: see `ChanRef`.
    let Some(w) = pop_valid(unsafe { &mut (*ch.0).recvq }, core.epoch) else {
        return Ok(());
    };
    // A message for a plain receive that yielded with `receive_k` is parked in its task and
    // built there when it resumes (inside its `lua_resume`: no protected call of its own).
    let v = match v {
        Delivery::Message(d) if w.lazy && w.select.is_none() => match core.tasks.get_mut(w.task) {
            Some(t) => match &mut t.lazy {
                Some(slot) if slot.is_some() => Delivery::Message(d),
                Some(slot) => {
                    **slot = Some(d);
                    Delivery::Lazy
                }
                slot @ None => {
                    *slot = Some(Box::new(Some(d)));
                    Delivery::Lazy
                }
            },
            None => Delivery::Message(d),
        },
        v => v,
    };
    let f = |raw: &mlua::state::RawLua| {
        // SAFETY: push the value on this Lua's current stack, move it to the receiver.
        unsafe {
            let l = raw.state();
            if ffi::lua_checkstack(l, 10) == 0 {
                return Err(mlua::Error::runtime("stack overflow delivering a message"));
            }
            let base = ffi::lua_gettop(l);
            v.push(raw, l)?;
            match w.select {
                Some((sid, case)) => complete_select(core, l, sid, case, true),
                None => {
                    core.parked = core.parked.saturating_sub(1);
                    ffi::lua_pushboolean(l, 1);
                    wake_raw(core, l, w.task, 2);
                }
            }
            ffi::lua_settop(l, base);
            Ok(())
        }
    };
    // SAFETY: forwarded (this function's contract).
    unsafe { exec_unlocked(lua, f) }
}

/// Buffer `v` in the channel (after [`readiness`] said `Room`). Runs without mlua's state
/// lock ([`exec_unlocked`]).
///
/// # Safety
/// `lua` is the state of the current process, if one is current (`exec_unlocked`'s
/// contract).
pub(crate) unsafe fn buffer(
    lua: &Lua,
    ch: ChanRef,
    ud: &AnyUserData,
    v: Delivery,
) -> mlua::Result<()> {
    let chv = LuaValue::UserData(ud.clone());
    let f = |raw: &mlua::state::RawLua| {
        // SAFETY: push the channel and the value, store into the ring, restore the stack.
        unsafe {
            let l = raw.state();
            if ffi::lua_checkstack(l, 10) == 0 {
                return Err(mlua::Error::runtime("stack overflow delivering a message"));
            }
            let base = ffi::lua_gettop(l);
            raw.push_value(&chv)?;
            v.push(raw, l)?;
            let c = &mut *ch.0;
            if c.len < c.cap {
                let cap = c.cap;
                let slot = (c.head + c.len) % cap + 1;
                c.len += 1;
                push_buffer(l, base + 1, cap);
                ffi::lua_pushvalue(l, base + 2);
                ffi::lua_rawseti(l, -2, slot as ffi::lua_Integer);
            }
            ffi::lua_settop(l, base);
            Ok(())
        }
    };
    // SAFETY: forwarded (this function's contract).
    unsafe { exec_unlocked(lua, f) }
}

/// Close `ch` from the engine (unsubscribe, one-shot delivery, timer stop); `closer`, if any,
/// is queued after the woken tasks. Returns whether anyone was woken.
pub(crate) fn close_channel(
    lua: &Lua,
    core: &mut Core,
    ch: &AnyUserData,
    closer: Option<TaskId>,
) -> mlua::Result<bool> {
    if raw_of(ch).is_null() {
        return Ok(false);
    }
    let chv = LuaValue::UserData(ch.clone());
    lua.exec_raw_lua(|raw| {
        // SAFETY: push the channel, close it, restore the stack.
        unsafe {
            let l = raw.state();
            if ffi::lua_checkstack(l, 10) == 0 {
                return Err(mlua::Error::runtime("stack overflow closing a channel"));
            }
            let base = ffi::lua_gettop(l);
            raw.push_value(&chv)?;
            let woke = op_close(core, l, base + 1, closer);
            ffi::lua_settop(l, base);
            Ok(woke)
        }
    })
}
