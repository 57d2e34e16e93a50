//! Mailbox and subscriptions: how messages reach Lua (spec `runtime-internals.md` §11.4).
//!
//! Every message a process receives is appended to its mailbox in arrival order. At the start
//! of each round of a step (and again before the step ends) the mailbox is flushed: each
//! message, in order, is offered to
//!
//! 1. the LINK_DOWN rule — on `@pid/events` without `trap_links` a LINK_DOWN makes the process
//!    fail with "linked process failed";
//! 2. the subscription of its exact topic, else (for topics not starting with `@`) the inbox
//!    subscription; with neither, the message stays in the mailbox (unbounded, as upstream)
//!    until something subscribes — except engine-private topics (`@wippy/…`: timers, futures),
//!    which are dropped when their subscription is gone;
//! 3. the subscription's channel, without blocking: handed to a waiting receiver or buffered if
//!    there is room; otherwise it stays queued. Zero-buffer channels (`inbox`, `events`)
//!    therefore take a message only while a task is blocked receiving (or selecting) on them.
//!    The Lua value is built only once delivery is certain. A message for a channel the user
//!    closed removes the subscription and is dropped.
//!
//! Delivered values: Message objects (`inbox`, `listen{message=true}`), event tables
//! (`events`), raw payload values (`listen`: one payload → the value, several → an array,
//! none → nil), a Time value (timers; one-shot ones then close their channel), or a future's
//! result (then closed).

use mlua::{AnyUserData, Lua, Value as LuaValue};
use wippy_rt::process::{EVENTS_TOPIC, INBOX_TOPIC, LINK_DOWN, event_kind};
use wippy_rt::{Package, Value};

use super::channel::{self, Delivery};
use super::core::{Core, ModeKind, PRIVATE_PREFIX, Sub, SubMode};
use super::message::MessageData;
use crate::lua::convert;

/// Subscribe `topic` with a new channel of capacity `cap` (or return the existing channel).
pub(crate) fn subscribe(
    lua: &Lua,
    core: &mut Core,
    topic: &str,
    cap: usize,
    mode: SubMode,
) -> mlua::Result<AnyUserData> {
    if let Some(s) = core.subs.get(topic) {
        return Ok(s.chan.clone());
    }
    let ch = channel::new_channel(lua, cap)?;
    channel::set_topic(&ch, topic);
    core.subs.insert(
        topic.to_string(),
        Sub {
            raw: channel::raw_ref(&ch),
            chan: ch.clone(),
            mode,
        },
    );
    flush(lua, core)?;
    Ok(ch)
}

/// Remove the subscription owning channel `ch` and close it. False when `ch` is not a
/// subscription channel (or was already removed).
pub(crate) fn unsubscribe(lua: &Lua, core: &mut Core, ch: &AnyUserData) -> mlua::Result<bool> {
    let Some(topic) = channel::topic_of(lua, ch) else {
        return Ok(false);
    };
    let owned = core
        .subs
        .get(&*topic)
        .is_some_and(|s| s.chan.to_pointer() == ch.to_pointer());
    if !owned {
        return Ok(false);
    }
    core.subs.remove(&*topic);
    if let Some(t) = core.timers.remove(&*topic) {
        t.cancel();
    }
    channel::close_channel(lua, core, ch, None)?;
    Ok(true)
}

/// Append an arriving package to the mailbox.
pub(crate) fn enqueue(core: &mut Core, pkg: Package) {
    core.mailbox.push_back(pkg);
}

/// Offer every queued message to the subscriptions (see the module docs).
pub(crate) fn flush(lua: &Lua, core: &mut Core) -> mlua::Result<()> {
    // Each queued message is offered once, in order; the ones kept rotate to the back, so the
    // retained order is the arrival order and the queue keeps its allocation.
    let n = core.mailbox.len();
    for _ in 0..n {
        let Some(pkg) = core.mailbox.pop_front() else {
            break;
        };
        if let Some(pkg) = deliver(lua, core, pkg)? {
            core.mailbox.push_back(pkg);
        }
    }
    Ok(())
}

/// Try to deliver one message; `Some(pkg)` = keep it queued.
fn deliver(lua: &Lua, core: &mut Core, pkg: Package) -> mlua::Result<Option<Package>> {
    if pkg.topic == EVENTS_TOPIC
        && !core.trap_links
        && pkg.payloads.first().and_then(event_kind) == Some(LINK_DOWN)
    {
        core.link_down = true;
        return Ok(None);
    }
    let exact = core.subs.contains_key(&pkg.topic);
    if !exact {
        if pkg.topic.starts_with(PRIVATE_PREFIX) {
            return Ok(None);
        }
        if pkg.topic.starts_with('@') || !core.subs.contains_key(INBOX_TOPIC) {
            return Ok(Some(pkg));
        }
    }
    let key: &str = if exact { &pkg.topic } else { INBOX_TOPIC };
    let (raw, mode) = {
        let s = &core.subs[key];
        (s.raw, s.mode.kind())
    };
    let receiver = match channel::readiness(core, raw) {
        channel::Readiness::Receiver => true,
        channel::Readiness::Room => false,
        channel::Readiness::Closed => {
            // The user closed a subscription channel: the subscription goes away.
            let key = key.to_string();
            core.subs.remove(&key);
            if let Some(t) = core.timers.remove(&key) {
                t.cancel();
            }
            return Ok(None);
        }
        // Ticks that find the buffer full are dropped (upstream tickers drop missed ticks).
        channel::Readiness::Busy if mode == ModeKind::Ticker => return Ok(None),
        channel::Readiness::Busy => return Ok(Some(pkg)),
    };
    let key = key.to_string();
    let one_shot = matches!(mode, ModeKind::TimerOnce | ModeKind::Future);
    let value = match mode {
        ModeKind::Messages => Delivery::Message(MessageData {
            from: pkg.from,
            topic: pkg.topic,
            payloads: pkg.payloads,
        }),
        ModeKind::Events => Delivery::Value(match pkg.payloads.first() {
            Some(v) => convert::to_lua(lua, v)?,
            None => LuaValue::Nil,
        }),
        ModeKind::Raw => Delivery::Value(payloads_value(lua, &pkg.payloads)?),
        ModeKind::TimerOnce | ModeKind::Ticker => {
            let at = pkg.payloads.first().and_then(Value::as_f64).unwrap_or(0.0);
            Delivery::Value(super::modules::time::time_at(lua, at)?)
        }
        ModeKind::Future => {
            let SubMode::Future(fut) = &core.subs[&key].mode else {
                unreachable!("mode kind matches");
            };
            let fut = fut.clone();
            Delivery::Value(super::modules::funcs::future_delivered(
                lua,
                &fut,
                &pkg.payloads,
            )?)
        }
    };
    if receiver {
        channel::hand_off(lua, core, raw, value)?;
    } else {
        let ch = core.subs[&key].chan.clone();
        channel::buffer(lua, raw, &ch, value)?;
    }
    if one_shot {
        if let Some(sub) = core.subs.remove(&key) {
            core.timers.remove(&key);
            channel::close_channel(lua, core, &sub.chan, None)?;
        }
    }
    Ok(None)
}

/// The Lua value of a message's payloads for raw listeners.
pub(crate) fn payloads_value(lua: &Lua, payloads: &[Value]) -> mlua::Result<LuaValue> {
    match payloads.len() {
        0 => Ok(LuaValue::Nil),
        1 => convert::to_lua(lua, &payloads[0]),
        n => {
            let t = lua.create_table_with_capacity(n, 0)?;
            for (i, v) in payloads.iter().enumerate() {
                t.raw_set(i + 1, convert::to_lua(lua, v)?)?;
            }
            Ok(LuaValue::Table(t))
        }
    }
}

/// True when `topic` may be used with `process.listen`.
pub(crate) fn listen_topic_error(topic: &str) -> Option<&'static str> {
    if topic.is_empty() {
        Some("topic cannot be empty")
    } else if topic.starts_with('@') {
        Some("cannot listen to @ topics")
    } else {
        None
    }
}

/// The events topic (re-exported for the `process` module).
pub(crate) const EVENTS: &str = EVENTS_TOPIC;
/// The inbox topic.
pub(crate) const INBOX: &str = INBOX_TOPIC;
