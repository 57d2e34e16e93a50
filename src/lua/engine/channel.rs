//! Process-local channels and `channel.select` (spec `runtime-internals.md` §11.6, `lua-api.md`
//! §3.6).
//!
//! A channel is a userdata holding [`ChanData`] — capacity, closed flag, the queues of blocked
//! receivers and senders (task ids, never Lua values) — plus, once it buffers something, a Lua
//! table as its user value holding the buffered values under keys `head .. head+len-1`.
//! Values of blocked senders wait in the owning core ([`Core::send_vals`]); so no Lua value is
//! referenced from Rust through a channel, and the Lua GC sees (and collects) cycles through
//! channels as usual.
//!
//! Operations follow the original (`engine/channel.go`) exactly, including the order in which
//! tasks are woken: the task performing an operation yields and is queued *before* the partner
//! it wakes (sender before receiver on a hand-off, receiver before a sender whose value moved
//! into the freed buffer slot), and `close` queues the woken tasks first and the closer last
//! (it yields only if it woke someone). Receivers get `value, true` or `nil, false` on a closed,
//! drained channel; a sender blocked when the channel closes is resumed with
//! `nil, "send on closed channel"`; sending on a closed channel raises; closing twice is a
//! no-op.
//!
//! `channel.select{...}` scans its cases in declaration order and takes the first ready one;
//! with `default` and nothing ready it returns `{default = true, ok = true}`; otherwise the task
//! waits on every case (a [`SelectOp`]) and the first channel operation that matches one of
//! them completes the select and removes its other waiters. Results are
//! `{channel = ch, value = v, ok = b}`.
//!
//! Waiters carry their core's epoch: a waiter left by an earlier process on a recycled state
//! (function workers keep module-level channels) is skipped.

use std::collections::VecDeque;

use mlua::{
    AnyUserData, Lua, MetaMethod, MultiValue, Table, UserData, UserDataFields, UserDataMethods,
    Value as LuaValue,
};

use super::core::{Core, Op, SelectOp, TaskId, with_core};
use super::yields::{self, ret1};
use crate::lua::modules::errors;
use crate::lua::vm::raise;

/// A blocked channel operation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Waiter {
    epoch: u64,
    task: TaskId,
    /// `(select id, case index)` when the waiter belongs to a select.
    select: Option<(u32, u16)>,
    /// Slot of the value in [`Core::send_vals`] (plain senders only).
    slot: u32,
}

/// The Rust side of a channel.
#[derive(Debug, Default)]
pub(crate) struct ChanData {
    cap: usize,
    closed: bool,
    head: i64,
    len: usize,
    recvq: VecDeque<Waiter>,
    sendq: VecDeque<Waiter>,
    /// The topic when this channel belongs to a subscription.
    pub topic: Option<Box<str>>,
}

impl UserData for ChanData {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| {
            let t = lua.create_table_with_capacity(0, 5)?;
            yields::set_blocking(lua, &t, "send", |lua, args| {
                let (ch, v) = self_and(lua, &args, "send")?;
                chan_send(lua, ch, v)
            })?;
            yields::set_blocking(lua, &t, "receive", |lua, args| {
                let (ch, _) = self_and(lua, &args, "receive")?;
                chan_receive(lua, ch)
            })?;
            yields::set_blocking(lua, &t, "close", |lua, args| {
                let (ch, _) = self_and(lua, &args, "close")?;
                chan_close(lua, ch)
            })?;
            Ok(t)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_function("case_send", |lua, (ch, v): (AnyUserData, LuaValue)| {
            check_channel(&ch)?;
            lua.create_userdata(Case {
                chan: ch,
                send: Some(v),
            })
        });
        m.add_function("case_receive", |lua, ch: AnyUserData| {
            check_channel(&ch)?;
            lua.create_userdata(Case {
                chan: ch,
                send: None,
            })
        });
        m.add_meta_method(MetaMethod::ToString, |_, c, ()| {
            Ok(format!("channel{{cap={}}}", c.cap))
        });
    }
}

fn check_channel(ud: &AnyUserData) -> mlua::Result<()> {
    if ud.is::<ChanData>() {
        Ok(())
    } else {
        Err(mlua::Error::runtime("channel expected"))
    }
}

/// A select case (`ch:case_send(v)` / `ch:case_receive()`).
pub(crate) struct Case {
    chan: AnyUserData,
    send: Option<LuaValue>,
}

impl UserData for Case {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, c, ()| {
            Ok(if c.send.is_some() {
                "channel.case{send}"
            } else {
                "channel.case{receive}"
            })
        });
    }
}

fn self_and<'a>(
    lua: &Lua,
    args: &'a MultiValue,
    method: &str,
) -> mlua::Result<(&'a AnyUserData, LuaValue)> {
    match args.front() {
        Some(LuaValue::UserData(ud)) if ud.is::<ChanData>() => {
            Ok((ud, args.get(1).cloned().unwrap_or(LuaValue::Nil)))
        }
        _ => Err(mlua::Error::runtime(format!(
            "bad argument #1 to '{method}' (channel expected)"
        )))
        .or_else(|e: mlua::Error| {
            let _ = lua;
            Err(e)
        }),
    }
}

/// Create a channel userdata with capacity `cap`.
pub(crate) fn new_channel(lua: &Lua, cap: usize) -> mlua::Result<AnyUserData> {
    lua.create_userdata(ChanData {
        cap,
        ..ChanData::default()
    })
}

fn vals(lua: &Lua, ch: &AnyUserData) -> mlua::Result<Table> {
    match ch.user_value::<LuaValue>()? {
        LuaValue::Table(t) => Ok(t),
        _ => {
            let t = lua.create_table()?;
            ch.set_user_value(&t)?;
            Ok(t)
        }
    }
}

fn buf_push(lua: &Lua, ch: &AnyUserData, d: &mut ChanData, v: LuaValue) -> mlua::Result<()> {
    let t = vals(lua, ch)?;
    t.raw_set(d.head + d.len as i64, v)?;
    d.len += 1;
    Ok(())
}

fn buf_pop(lua: &Lua, ch: &AnyUserData, d: &mut ChanData) -> mlua::Result<LuaValue> {
    let t = vals(lua, ch)?;
    let v: LuaValue = t.raw_get(d.head)?;
    t.raw_set(d.head, LuaValue::Nil)?;
    d.head += 1;
    d.len -= 1;
    Ok(v)
}

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

/// The result table of a select: `{channel, value, ok}`.
fn select_result(lua: &Lua, ch: &AnyUserData, v: LuaValue, ok: bool) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 3)?;
    t.raw_set("channel", ch)?;
    t.raw_set("value", v)?;
    t.raw_set("ok", ok)?;
    Ok(LuaValue::Table(t))
}

/// Complete the select `sid` through its case `case` with `value, ok`: wake its task with the
/// result table and remove its waiters from every case channel.
fn complete_select(
    lua: &Lua,
    core: &mut Core,
    sid: u32,
    case: u16,
    value: LuaValue,
    ok: bool,
) -> mlua::Result<()> {
    let Some(sel) = core.selects.remove(sid) else {
        return Ok(());
    };
    let ch = &sel.cases[case as usize].0;
    let r = select_result(lua, ch, value, ok)?;
    flush_select(&sel, sid);
    core.parked = core.parked.saturating_sub(1);
    core.wake(sel.task, vec![r]);
    Ok(())
}

/// Remove select `sid`'s waiters from its channels.
fn flush_select(sel: &SelectOp, sid: u32) {
    for (ch, _) in &sel.cases {
        let _ = ch.borrow_mut_scoped::<ChanData, _>(|d| {
            d.recvq.retain(|w| w.select.map(|s| s.0) != Some(sid));
            d.sendq.retain(|w| w.select.map(|s| s.0) != Some(sid));
        });
    }
}

/// Hand `v` to the receiver waiter `w` (value, true).
fn deliver_to_receiver(lua: &Lua, core: &mut Core, w: Waiter, v: LuaValue) -> mlua::Result<()> {
    match w.select {
        Some((sid, case)) => complete_select(lua, core, sid, case, v, true),
        None => {
            core.parked = core.parked.saturating_sub(1);
            core.wake(w.task, vec![v, LuaValue::Boolean(true)]);
            Ok(())
        }
    }
}

/// Wake the sender waiter `w` whose value was taken.
fn release_sender(lua: &Lua, core: &mut Core, w: Waiter, v: LuaValue) -> mlua::Result<()> {
    match w.select {
        Some((sid, case)) => complete_select(lua, core, sid, case, v, true),
        None => {
            core.parked = core.parked.saturating_sub(1);
            core.wake(w.task, vec![LuaValue::Boolean(true)]);
            Ok(())
        }
    }
}

/// The value a sender waiter offers.
fn sender_value(core: &mut Core, w: &Waiter) -> LuaValue {
    match w.select {
        Some((sid, case)) => core
            .selects
            .get(sid)
            .and_then(|s| s.cases.get(case as usize))
            .and_then(|c| c.1.clone())
            .unwrap_or(LuaValue::Nil),
        None => core.send_vals.remove(w.slot).unwrap_or(LuaValue::Nil),
    }
}

/// What the performing task gets back.
enum Mine {
    Plain(Vec<LuaValue>),
    Select(AnyUserData, LuaValue, bool),
}

fn finish_mine(lua: &Lua, core: &mut Core, me: TaskId, mine: Mine) -> mlua::Result<()> {
    let args = match mine {
        Mine::Plain(v) => v,
        Mine::Select(ch, v, ok) => vec![select_result(lua, &ch, v, ok)?],
    };
    core.wake(me, args);
    Ok(())
}

/// Outcome of a send attempt by a task.
enum SendOutcome {
    Closed,
    Done,
    Blocked,
}

/// Send `v` on `ch` for task `me` (plain when `sel` is None).
fn do_send(
    lua: &Lua,
    core: &mut Core,
    ch: &AnyUserData,
    me: TaskId,
    v: LuaValue,
    sel: Option<(AnyUserData, (u32, u16))>,
) -> mlua::Result<SendOutcome> {
    let epoch = core.epoch;
    let mut d = ch.borrow_mut::<ChanData>()?;
    if d.closed {
        return Ok(SendOutcome::Closed);
    }
    let mine = |v: &LuaValue| match &sel {
        Some((c, _)) => Mine::Select(c.clone(), v.clone(), true),
        None => Mine::Plain(vec![LuaValue::Boolean(true)]),
    };
    if let Some(w) = pop_valid(&mut d.recvq, epoch) {
        drop(d);
        finish_mine(lua, core, me, mine(&v))?;
        deliver_to_receiver(lua, core, w, v)?;
        return Ok(SendOutcome::Done);
    }
    if d.len < d.cap {
        buf_push(lua, ch, &mut d, v.clone())?;
        drop(d);
        finish_mine(lua, core, me, mine(&v))?;
        return Ok(SendOutcome::Done);
    }
    match sel {
        Some(_) => Ok(SendOutcome::Blocked),
        None => {
            let slot = core.send_vals.insert(v);
            d.sendq.push_back(Waiter {
                epoch,
                task: me,
                select: None,
                slot,
            });
            core.parked += 1;
            Ok(SendOutcome::Blocked)
        }
    }
}

/// Receive from `ch` for task `me`; false when it must block (plain receives are queued).
fn do_receive(
    lua: &Lua,
    core: &mut Core,
    ch: &AnyUserData,
    me: TaskId,
    sel: Option<(AnyUserData, (u32, u16))>,
) -> mlua::Result<bool> {
    let epoch = core.epoch;
    let mut d = ch.borrow_mut::<ChanData>()?;
    let mine = |v: LuaValue, ok: bool| match &sel {
        Some((c, _)) => Mine::Select(c.clone(), v, ok),
        None => Mine::Plain(vec![v, LuaValue::Boolean(ok)]),
    };
    if d.len > 0 {
        let v = buf_pop(lua, ch, &mut d)?;
        if let Some(w) = pop_valid(&mut d.sendq, epoch) {
            let sv = sender_value(core, &w);
            buf_push(lua, ch, &mut d, sv.clone())?;
            drop(d);
            finish_mine(lua, core, me, mine(v, true))?;
            release_sender(lua, core, w, sv)?;
        } else {
            drop(d);
            finish_mine(lua, core, me, mine(v, true))?;
        }
        return Ok(true);
    }
    if let Some(w) = pop_valid(&mut d.sendq, epoch) {
        drop(d);
        let sv = sender_value(core, &w);
        finish_mine(lua, core, me, mine(sv.clone(), true))?;
        release_sender(lua, core, w, sv)?;
        return Ok(true);
    }
    if d.closed {
        drop(d);
        finish_mine(lua, core, me, mine(LuaValue::Nil, false))?;
        return Ok(true);
    }
    if sel.is_none() {
        d.recvq.push_back(Waiter {
            epoch,
            task: me,
            select: None,
            slot: 0,
        });
        core.parked += 1;
    }
    Ok(false)
}

/// Close `ch`, waking every waiter; `closer` (if any) is queued after them. Returns whether
/// anyone was woken. Closing a closed channel does nothing.
pub(crate) fn close_channel(
    lua: &Lua,
    core: &mut Core,
    ch: &AnyUserData,
    closer: Option<TaskId>,
) -> mlua::Result<bool> {
    let epoch = core.epoch;
    let (senders, receivers) = {
        let mut d = ch.borrow_mut::<ChanData>()?;
        if d.closed {
            return Ok(false);
        }
        d.closed = true;
        (std::mem::take(&mut d.sendq), std::mem::take(&mut d.recvq))
    };
    let mut woke = false;
    for w in senders.into_iter().filter(|w| w.epoch == epoch) {
        woke = true;
        let err = errors::error_value(
            lua,
            wippy_rt::Error::new(wippy_rt::Kind::UNKNOWN, "send on closed channel"),
        )?;
        match w.select {
            Some((sid, _)) => {
                if let Some(sel) = core.selects.remove(sid) {
                    flush_select(&sel, sid);
                    core.parked = core.parked.saturating_sub(1);
                    core.wake(sel.task, vec![LuaValue::Nil, err]);
                }
            }
            None => {
                core.send_vals.remove(w.slot);
                core.parked = core.parked.saturating_sub(1);
                core.wake(w.task, vec![LuaValue::Nil, err]);
            }
        }
    }
    for w in receivers.into_iter().filter(|w| w.epoch == epoch) {
        woke = true;
        match w.select {
            Some((sid, case)) => complete_select(lua, core, sid, case, LuaValue::Nil, false)?,
            None => {
                core.parked = core.parked.saturating_sub(1);
                core.wake(w.task, vec![LuaValue::Nil, LuaValue::Boolean(false)]);
            }
        }
    }
    if woke && let Some(t) = closer {
        core.wake(t, Vec::new());
    }
    Ok(woke)
}

/// Non-blocking delivery from outside any task (mailbox → subscription channel).
pub(crate) enum TrySend {
    /// Handed to a receiver or buffered.
    Sent,
    /// No receiver waiting and no room.
    Full,
    /// The channel is closed.
    Closed,
}

/// Whether a non-blocking send on `ch` would currently succeed (or find it closed).
pub(crate) fn can_deliver(core: &Core, ch: &AnyUserData) -> bool {
    ch.borrow_mut_scoped::<ChanData, _>(|d| {
        d.closed || d.len < d.cap || has_valid(&mut d.recvq, core.epoch)
    })
    .unwrap_or(false)
}

/// Deliver `v` to `ch` without blocking.
pub(crate) fn try_send(
    lua: &Lua,
    core: &mut Core,
    ch: &AnyUserData,
    v: LuaValue,
) -> mlua::Result<TrySend> {
    let epoch = core.epoch;
    let mut d = ch.borrow_mut::<ChanData>()?;
    if d.closed {
        return Ok(TrySend::Closed);
    }
    if let Some(w) = pop_valid(&mut d.recvq, epoch) {
        drop(d);
        deliver_to_receiver(lua, core, w, v)?;
        return Ok(TrySend::Sent);
    }
    if d.len < d.cap {
        buf_push(lua, ch, &mut d, v)?;
        return Ok(TrySend::Sent);
    }
    Ok(TrySend::Full)
}

/// True when the channel is closed.
pub(crate) fn is_closed(ch: &AnyUserData) -> bool {
    ch.borrow_scoped::<ChanData, _>(|d| d.closed)
        .unwrap_or(true)
}

fn chan_send(lua: &Lua, ch: &AnyUserData, v: LuaValue) -> mlua::Result<MultiValue> {
    let r = with_core(|core| {
        let me = core.current;
        do_send(lua, core, ch, me, v, None)
    });
    match r {
        Err(e) => yields::core_error(lua, e),
        Ok(Err(e)) => Err(e),
        Ok(Ok(SendOutcome::Closed)) => raise::raise_msg(lua, "send on closed channel"),
        Ok(Ok(SendOutcome::Done)) => yields::suspend(lua, Op::Queued),
        Ok(Ok(SendOutcome::Blocked)) => yields::suspend(lua, Op::Park),
    }
}

fn chan_receive(lua: &Lua, ch: &AnyUserData) -> mlua::Result<MultiValue> {
    let r = with_core(|core| {
        let me = core.current;
        do_receive(lua, core, ch, me, None)
    });
    match r {
        Err(e) => yields::core_error(lua, e),
        Ok(Err(e)) => Err(e),
        Ok(Ok(true)) => yields::suspend(lua, Op::Queued),
        Ok(Ok(false)) => yields::suspend(lua, Op::Park),
    }
}

fn chan_close(lua: &Lua, ch: &AnyUserData) -> mlua::Result<MultiValue> {
    let r = with_core(|core| {
        let me = core.current;
        close_channel(lua, core, ch, Some(me))
    });
    match r {
        Err(e) => yields::core_error(lua, e),
        Ok(Err(e)) => Err(e),
        Ok(Ok(true)) => yields::suspend(lua, Op::Queued),
        Ok(Ok(false)) => Ok(MultiValue::new()),
    }
}

/// `channel.select(cases[, default])`.
fn select(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let t = match args.front() {
        Some(LuaValue::Table(t)) => t.clone(),
        other => {
            let got = other.map(LuaValue::type_name).unwrap_or("no value");
            return raise::raise_msg(
                lua,
                format!("bad argument #1 to 'select' (table expected, got {got})"),
            );
        }
    };
    let mut has_default = matches!(args.get(1), Some(LuaValue::Boolean(true)));
    if matches!(t.raw_get::<LuaValue>("default")?, LuaValue::Boolean(true)) {
        has_default = true;
    }
    let mut cases: Vec<(AnyUserData, Option<LuaValue>)> = Vec::new();
    for v in t.sequence_values::<LuaValue>() {
        if let LuaValue::UserData(ud) = v?
            && let Ok(c) = ud.borrow::<Case>()
        {
            cases.push((c.chan.clone(), c.send.clone()));
        }
    }
    let r = with_core(|core| -> mlua::Result<Op> {
        let me = core.current;
        let epoch = core.epoch;
        // First ready case, in declaration order.
        for (i, (ch, send)) in cases.iter().enumerate() {
            let ready = ch.borrow_mut_scoped::<ChanData, _>(|d| match send {
                Some(_) => has_valid(&mut d.recvq, epoch) || (!d.closed && d.len < d.cap),
                None => d.len > 0 || has_valid(&mut d.sendq, epoch) || d.closed,
            })?;
            if !ready {
                continue;
            }
            let tag = Some((ch.clone(), (u32::MAX, i as u16)));
            match send {
                Some(v) => match do_send(lua, core, ch, me, v.clone(), tag)? {
                    SendOutcome::Done => return Ok(Op::Queued),
                    _ => continue,
                },
                None => {
                    if do_receive(lua, core, ch, me, tag)? {
                        return Ok(Op::Queued);
                    }
                }
            }
        }
        if has_default {
            let r = lua.create_table_with_capacity(0, 2)?;
            r.raw_set("default", true)?;
            r.raw_set("ok", true)?;
            core.wake(me, vec![LuaValue::Table(r)]);
            return Ok(Op::Queued);
        }
        if cases.is_empty() {
            // Waits on nothing: not parked on any channel (the deadlock rule sees it).
            return Ok(Op::Park);
        }
        let sid = core.selects.insert(SelectOp {
            task: me,
            cases: cases.clone(),
        });
        for (i, (ch, send)) in cases.iter().enumerate() {
            let w = Waiter {
                epoch,
                task: me,
                select: Some((sid, i as u16)),
                slot: 0,
            };
            ch.borrow_mut_scoped::<ChanData, _>(|d| match send {
                Some(_) => d.sendq.push_back(w),
                None => d.recvq.push_back(w),
            })?;
        }
        core.parked += 1;
        Ok(Op::Park)
    });
    match r {
        Err(e) => yields::core_error(lua, e),
        Ok(Err(e)) => Err(e),
        Ok(Ok(op)) => yields::suspend(lua, op),
    }
}

/// The `channel` module table.
pub(crate) fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 2)?;
    t.raw_set(
        "new",
        lua.create_function(|lua, n: Option<LuaValue>| {
            let cap = match n {
                Some(LuaValue::Integer(i)) => i.max(0) as usize,
                Some(LuaValue::Number(f)) if f.is_finite() => f.max(0.0) as usize,
                _ => 0,
            };
            new_channel(lua, cap)
        })?,
    )?;
    yields::set_blocking(lua, &t, "select", select)?;
    Ok(LuaValue::Table(t))
}

/// A one-value result (for callers outside this module).
pub(crate) fn one(v: LuaValue) -> MultiValue {
    ret1(v)
}
