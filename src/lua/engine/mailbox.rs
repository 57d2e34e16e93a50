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

use mlua::{AnyUserData, Lua, MetaMethod, UserData, UserDataMethods, Value as LuaValue};
use wippy_rt::process::{EVENTS_TOPIC, INBOX_TOPIC, LINK_DOWN, event_kind};
use wippy_rt::{Package, Pid, Value};

use super::channel::{self, TrySend};
use super::core::{Core, PRIVATE_PREFIX, Sub, SubMode};
use crate::lua::convert;
use crate::lua::modules::payload;

/// A received message (`process.Message`).
pub(crate) struct Message {
    from: Pid,
    topic: String,
    payloads: Vec<Value>,
}

impl UserData for Message {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("topic", |_, msg, ()| Ok(msg.topic.clone()));
        m.add_method("from", |_, msg, ()| {
            Ok(if msg.from.is_zero() {
                String::new()
            } else {
                msg.from.as_str().to_string()
            })
        });
        m.add_method("payload", |lua, msg, ()| -> mlua::Result<LuaValue> {
            match msg.payloads.len() {
                0 => Ok(LuaValue::Nil),
                1 => payload::payload_value(
                    lua,
                    payload::Payload::from_value(msg.payloads[0].clone()),
                ),
                n => {
                    let t = lua.create_table_with_capacity(n, 0)?;
                    for (i, v) in msg.payloads.iter().enumerate() {
                        t.raw_set(
                            i + 1,
                            payload::payload_value(lua, payload::Payload::from_value(v.clone()))?,
                        )?;
                    }
                    Ok(LuaValue::Table(t))
                }
            }
        });
        m.add_meta_method(MetaMethod::ToString, |_, msg, ()| {
            Ok(format!("process.Message{{topic={}}}", msg.topic))
        });
    }
}

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
    ch.borrow_mut_scoped::<channel::ChanData, _>(|d| d.topic = Some(topic.into()))?;
    core.subs.insert(
        topic.to_string(),
        Sub {
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
    let topic = ch
        .borrow_scoped::<channel::ChanData, _>(|d| d.topic.clone())
        .ok()
        .flatten();
    let Some(topic) = topic else {
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
    if core.mailbox.is_empty() {
        return Ok(());
    }
    let mut keep = std::collections::VecDeque::new();
    while let Some(pkg) = core.mailbox.pop_front() {
        if let Some(pkg) = deliver(lua, core, pkg)? {
            keep.push_back(pkg);
        }
    }
    // Messages that arrived during delivery (none today) stay behind the retained ones.
    keep.append(&mut core.mailbox);
    core.mailbox = keep;
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
    let (topic, sub) = match core.subs.get(&pkg.topic) {
        Some(s) => (pkg.topic.clone(), (s.chan.clone(), s.mode.clone())),
        None => {
            if pkg.topic.starts_with(PRIVATE_PREFIX) {
                return Ok(None);
            }
            match (!pkg.topic.starts_with('@'))
                .then(|| core.subs.get(INBOX_TOPIC))
                .flatten()
            {
                Some(s) => (INBOX_TOPIC.to_string(), (s.chan.clone(), s.mode.clone())),
                None => return Ok(Some(pkg)),
            }
        }
    };
    let (ch, mode) = sub;
    if channel::is_closed(&ch) {
        // The user closed a subscription channel: the subscription goes away.
        core.subs.remove(&topic);
        if let Some(t) = core.timers.remove(&topic) {
            t.cancel();
        }
        return Ok(None);
    }
    if !channel::can_deliver(core, &ch) {
        return match mode {
            // Ticks that find the buffer full are dropped (upstream tickers drop missed ticks).
            SubMode::Ticker => Ok(None),
            _ => Ok(Some(pkg)),
        };
    }
    let one_shot = matches!(mode, SubMode::TimerOnce | SubMode::Future(_));
    let value = match &mode {
        SubMode::Messages => LuaValue::UserData(lua.create_userdata(Message {
            from: pkg.from,
            topic: pkg.topic,
            payloads: pkg.payloads,
        })?),
        SubMode::Events => match pkg.payloads.first() {
            Some(v) => convert::to_lua(lua, v)?,
            None => LuaValue::Nil,
        },
        SubMode::Raw => payloads_value(lua, &pkg.payloads)?,
        SubMode::TimerOnce | SubMode::Ticker => {
            let at = pkg.payloads.first().and_then(Value::as_f64).unwrap_or(0.0);
            super::modules::time::time_at(lua, at)?
        }
        SubMode::Future(fut) => super::modules::funcs::future_delivered(lua, fut, &pkg.payloads)?,
    };
    match channel::try_send(lua, core, &ch, value)? {
        TrySend::Sent | TrySend::Full => {}
        TrySend::Closed => {
            core.subs.remove(&topic);
            return Ok(None);
        }
    }
    if one_shot {
        core.subs.remove(&topic);
        core.timers.remove(&topic);
        channel::close_channel(lua, core, &ch, None)?;
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
