//! The blocking part of `time` (spec `lua-api.md` §3.8.1): `sleep`, `after`, `timer`,
//! `ticker`, added to the pure `time` module through its extension point.
//!
//! * `time.sleep(d)` suspends the task on a runtime timer (a completion handed straight to the
//!   reactor, no dispatcher round trip); `d <= 0` only yields to the other tasks of the
//!   process; a bad `d` returns `nil, err` (`Invalid`) without suspending.
//! * `time.after(d)` subscribes a private topic with a one-value channel and arms a runtime
//!   one-shot timer that messages the process; the channel receives one Time and closes.
//!   `d <= 0` → `nil, err`.
//! * `time.timer(d)` is the same behind a Timer object: `:response()`/`:channel()` return the
//!   same channel, `:stop()` returns whether it stopped a pending timer (the channel closes
//!   either way), `:reset(d)` re-arms it (returns whether it was pending; a bad or non-positive
//!   `d` raises).
//! * `time.ticker(d)` ticks into a 16-slot channel, dropping ticks that find it full;
//!   `:stop()` closes it.
//!
//! Everything is process-bound: the timers message the process and are cancelled when it ends.

use std::time::{Duration, Instant};

use mlua::{AnyUserData, Lua, MultiValue, Table, UserData, UserDataMethods, Value as LuaValue};
use wippy_rt::Error;

use super::super::core::{Op, SubMode, with_core};
use super::super::rawfn;
use super::super::yields::{self, ret1};
use super::super::{channel, mailbox};
use crate::lua::modules::errors::nil_error;
use crate::lua::modules::time as pure;

/// A Time value for a timer firing at `at` (unix seconds, float).
pub(crate) fn time_at(lua: &Lua, at: f64) -> mlua::Result<LuaValue> {
    let sec = at.floor();
    let nsec = ((at - sec) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
    let mut t = pure::Time::now();
    t.sec = sec as i64;
    t.nsec = nsec;
    pure::time_value(lua, t)
}

fn duration(v: Option<&LuaValue>) -> Result<i64, Error> {
    pure::duration_arg(v.unwrap_or(&LuaValue::Nil))
}

fn sleep(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let ns = match duration(args.front()) {
        Ok(n) => n,
        Err(e) => return nil_error(lua, e.with_context("time.sleep")),
    };
    if ns <= 0 {
        return match with_core(|c| {
            let me = c.current;
            c.wake(me, Vec::new());
        }) {
            Ok(()) => yields::suspend(lua, Op::Queued),
            Err(e) => yields::core_error(lua, e),
        };
    }
    let deadline = Instant::now() + Duration::from_nanos(ns as u64);
    yields::suspend(lua, Op::Sleep(deadline))
}

/// Subscribe a fresh private topic and arm a one-shot timer on it.
fn arm_once(
    lua: &Lua,
    ns: i64,
) -> mlua::Result<Result<(String, AnyUserData), super::super::core::CoreError>> {
    with_core(|c| -> mlua::Result<(String, AnyUserData)> {
        let topic = c.private_topic("timer");
        // SAFETY: a Lua callback: `lua` is the state of the process whose core
        // `with_core` lent (`mailbox::flush`'s contract).
        let ch = unsafe { mailbox::subscribe(lua, c, &topic, 1, SubMode::TimerOnce) }?;
        let deadline = Instant::now() + Duration::from_nanos(ns as u64);
        let h = c.handle.timer(deadline, &c.pid, &topic);
        c.timers.insert(topic.clone(), h);
        Ok((topic, ch))
    })
    .map_or_else(|e| Ok(Err(e)), |r| r.map(Ok))
}

fn after(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let ns = match duration(args.front()) {
        Ok(n) if n > 0 => n,
        Ok(_) => return nil_error(lua, Error::invalid("duration must be positive")),
        Err(e) => return nil_error(lua, e),
    };
    match arm_once(lua, ns)? {
        Ok((_, ch)) => Ok(ret1(LuaValue::UserData(ch))),
        Err(e) => yields::core_error(lua, e),
    }
}

/// A `time.timer` object.
struct Timer {
    topic: String,
    chan: AnyUserData,
}

impl UserData for Timer {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("response", |_, t, ()| Ok(t.chan.clone()));
        m.add_method("channel", |_, t, ()| Ok(t.chan.clone()));
        m.add_method("stop", |lua, t, ()| {
            let r = with_core(|c| -> mlua::Result<bool> {
                let was = c.timers.remove(&t.topic).is_some_and(|h| h.cancel());
                if c.subs.contains_key(&t.topic) {
                    mailbox::unsubscribe(lua, c, &t.chan)?;
                } else {
                    channel::close_channel(lua, c, &t.chan, None)?;
                }
                Ok(was)
            });
            match r {
                Ok(r) => r,
                Err(e) => Err(mlua::Error::runtime(e.message())),
            }
        });
        m.add_method_mut("reset", |lua, t, d: LuaValue| {
            let ns = match pure::duration_arg(&d) {
                Ok(n) if n > 0 => n,
                Ok(_) => return Err(mlua::Error::runtime("duration must be positive")),
                Err(e) => return Err(mlua::Error::runtime(e.message().to_string())),
            };
            let deadline = Instant::now() + Duration::from_nanos(ns as u64);
            let r = with_core(|c| -> mlua::Result<bool> {
                if let Some(h) = c.timers.get(&t.topic)
                    && c.subs.contains_key(&t.topic)
                {
                    return Ok(h.reset(deadline));
                }
                // Fired or stopped: a fresh subscription on a fresh topic.
                let topic = c.private_topic("timer");
                // SAFETY: a Lua callback: `lua` is the state of the process whose core
                // `with_core` lent (`mailbox::flush`'s contract).
                let ch = unsafe { mailbox::subscribe(lua, c, &topic, 1, SubMode::TimerOnce) }?;
                let h = c.handle.timer(deadline, &c.pid, &topic);
                c.timers.insert(topic.clone(), h);
                t.topic = topic;
                t.chan = ch;
                Ok(false)
            });
            match r {
                Ok(r) => r,
                Err(e) => Err(mlua::Error::runtime(e.message())),
            }
        });
    }
}

fn timer(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let ns = match duration(args.front()) {
        Ok(n) if n > 0 => n,
        Ok(_) => return nil_error(lua, Error::invalid("duration must be positive")),
        Err(e) => return nil_error(lua, e),
    };
    match arm_once(lua, ns)? {
        Ok((topic, chan)) => Ok(ret1(LuaValue::UserData(
            lua.create_userdata(Timer { topic, chan })?,
        ))),
        Err(e) => yields::core_error(lua, e),
    }
}

/// A `time.ticker` object.
struct Ticker {
    topic: String,
    chan: AnyUserData,
}

/// Buffer of a ticker channel (upstream: 16).
const TICKER_BUFFER: usize = 16;

impl UserData for Ticker {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("response", |_, t, ()| Ok(t.chan.clone()));
        m.add_method("channel", |_, t, ()| Ok(t.chan.clone()));
        m.add_method("stop", |lua, t, ()| {
            let r = with_core(|c| -> mlua::Result<bool> {
                if let Some(h) = c.timers.remove(&t.topic) {
                    h.cancel();
                }
                if c.subs.contains_key(&t.topic) {
                    mailbox::unsubscribe(lua, c, &t.chan)?;
                } else {
                    channel::close_channel(lua, c, &t.chan, None)?;
                }
                Ok(true)
            });
            match r {
                Ok(r) => r,
                Err(e) => Err(mlua::Error::runtime(e.message())),
            }
        });
    }
}

fn ticker(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let ns = match duration(args.front()) {
        Ok(n) if n > 0 => n,
        Ok(_) => return nil_error(lua, Error::invalid("duration must be positive")),
        Err(e) => return nil_error(lua, e),
    };
    let r = with_core(|c| -> mlua::Result<(String, AnyUserData)> {
        let topic = c.private_topic("ticker");
        // SAFETY: a Lua callback: `lua` is the state of the process whose core
        // `with_core` lent (`mailbox::flush`'s contract).
        let ch = unsafe { mailbox::subscribe(lua, c, &topic, TICKER_BUFFER, SubMode::Ticker) }?;
        let h = c
            .handle
            .ticker(Duration::from_nanos(ns as u64), &c.pid, &topic);
        c.timers.insert(topic.clone(), h);
        Ok((topic, ch))
    });
    match r {
        Ok(Ok((topic, chan))) => Ok(ret1(LuaValue::UserData(
            lua.create_userdata(Ticker { topic, chan })?,
        ))),
        Ok(Err(e)) => Err(e),
        Err(e) => yields::core_error(lua, e),
    }
}

/// Add the blocking members to a freshly built `time` table.
pub(crate) fn extend(lua: &Lua, t: &Table) -> mlua::Result<()> {
    rawfn::set(lua, t, "sleep", crate::lua_fn!(sleep))?;
    rawfn::set(lua, t, "after", crate::lua_fn!(after))?;
    rawfn::set(lua, t, "timer", crate::lua_fn!(timer))?;
    rawfn::set(lua, t, "ticker", crate::lua_fn!(ticker))?;
    Ok(())
}
