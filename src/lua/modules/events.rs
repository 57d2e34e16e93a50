//! The `events` module (spec `lua-api.md` §3.8.2, `runtime-internals.md` §8.6): bus events as
//! channels in Lua, and publishing from Lua.
//!
//! * `events.subscribe(system[, kind])` → Subscription, or `nil, err` (`Invalid` "system is
//!   required"). Patterns use the bridge's simple matcher (upstream): `""` or `"*"` match
//!   anything, a pattern ending in `*` is a **string-prefix** match (`"orders.*"` matches
//!   `orders.x` and `orders.x.y`), anything else is exact; `kind` defaults to everything.
//! * `sub:channel()` → the subscription's channel (the same each call, buffer 64) delivering
//!   `{system, kind, path, data?}` tables (`data` absent when the event had none);
//!   `sub:close()` → `true` (idempotent; the channel closes, receivers get `nil, false`).
//! * `events.send(system, kind, path[, data])` → `true`, or `nil, err` (`Invalid` "system is
//!   required" / "kind is required" / "path is required"); `data` is any Lua value.
//!
//! # Bridge
//!
//! One [`Bridge`] per runtime holds a single bus subscription (all systems) and the table of
//! Lua subscriptions `{id, pid, private topic, system/kind matchers}`. A bus event is matched
//! against the table on the bus's callback thread and sent to each matching process as an
//! ordinary package on the subscription's private topic (`@wippy/events/<n>`), which the
//! engine delivers into the subscription's channel. Subscriptions of a process are dropped
//! when it exits: the bridge monitors subscribers with a native watcher (and also drops a
//! subscription whose delivery finds the process gone).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use fnv::FnvHashMap;
use mlua::{AnyUserData, Lua, MultiValue, UserData, UserDataMethods, Value as LuaValue};
use wippy_rt::app_context::Key;
use wippy_rt::process::{EVENTS_TOPIC, EXIT, event_kind};
use wippy_rt::{BusEvent, Error, Handle, Kind, Package, Pid, Subscription, Value};

use crate::lua::convert;
use crate::lua::engine::core::{SubMode, with_core};
use crate::lua::engine::mailbox;
use crate::lua::engine::rawfn;
use crate::lua::engine::yields::{self, ret1};
use crate::lua::modules::errors::{nil_err, nil_error};
use crate::lua::modules::register_module;
use crate::lua::vm::raise;
use crate::system::System;
use crate::system::topology::{Topology, Watch};

/// Buffer of a subscription channel (upstream: 64).
pub const CHANNEL_BUFFER: usize = 64;

/// Application-context slot of the bridge.
pub static EVENTS_BRIDGE: Key<Bridge> = Key::new("lua.events.bridge");

/// A pattern of the bridge's simple matcher.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Matcher {
    Any,
    Prefix(String),
    Exact(String),
}

impl Matcher {
    fn new(p: &str) -> Matcher {
        if p.is_empty() || p == "*" {
            Matcher::Any
        } else if let Some(pre) = p.strip_suffix('*') {
            Matcher::Prefix(pre.to_string())
        } else {
            Matcher::Exact(p.to_string())
        }
    }
    fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Prefix(p) => s.starts_with(p.as_str()),
            Matcher::Exact(e) => s == e,
        }
    }
}

struct Sub {
    pid: Pid,
    topic: String,
    system: Matcher,
    kind: Matcher,
}

/// The per-runtime events bridge (see the module docs).
pub struct Bridge {
    handle: Handle,
    subs: RwLock<FnvHashMap<u64, Sub>>,
    /// Subscribers and how many subscriptions each holds (monitored while > 0).
    owners: Mutex<FnvHashMap<Pid, usize>>,
    next: AtomicU64,
    watch: OnceLock<Watch>,
    topology: Arc<Topology>,
    bus_sub: Mutex<Option<Subscription>>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("subscriptions", &self.len())
            .finish()
    }
}

impl Bridge {
    fn new(handle: Handle, topology: Arc<Topology>) -> Result<Arc<Bridge>, Error> {
        let b = Arc::new(Bridge {
            handle: handle.clone(),
            subs: RwLock::new(FnvHashMap::default()),
            owners: Mutex::new(FnvHashMap::default()),
            next: AtomicU64::new(1),
            watch: OnceLock::new(),
            topology: topology.clone(),
            bus_sub: Mutex::new(None),
        });
        let weak = Arc::downgrade(&b);
        let w = topology.watch(move |pkg| {
            if pkg.topic == EVENTS_TOPIC
                && pkg.payloads.first().and_then(event_kind) == Some(EXIT)
                && let Some(b) = weak.upgrade()
            {
                b.drop_owner(&pkg.from);
            }
        });
        let _ = b.watch.set(w);
        let weak = Arc::downgrade(&b);
        let sub = handle.bus().subscribe_fn("", "", move |ev| {
            if let Some(b) = weak.upgrade() {
                b.route(ev);
            }
        })?;
        *b.bus_sub.lock().unwrap_or_else(|e| e.into_inner()) = Some(sub);
        Ok(b)
    }

    /// Number of live Lua subscriptions.
    pub fn len(&self) -> usize {
        self.subs.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no Lua subscription is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn add(&self, pid: &Pid, topic: String, system: &str, kind: &str) -> u64 {
        let id = self.next.fetch_add(1, Relaxed);
        {
            let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
            let n = owners.entry(pid.clone()).or_insert(0);
            if *n == 0
                && let Some(w) = self.watch.get()
            {
                let _ = self.topology.monitor(w.pid(), pid);
            }
            *n += 1;
        }
        self.subs.write().unwrap_or_else(|e| e.into_inner()).insert(
            id,
            Sub {
                pid: pid.clone(),
                topic,
                system: Matcher::new(system),
                kind: Matcher::new(kind),
            },
        );
        id
    }

    fn remove(&self, id: u64) {
        let sub = self
            .subs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(sub) = sub {
            let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = owners.get_mut(&sub.pid) {
                *n -= 1;
                if *n == 0 {
                    owners.remove(&sub.pid);
                    if let Some(w) = self.watch.get() {
                        self.topology.unmonitor(w.pid(), &sub.pid);
                    }
                }
            }
        }
    }

    /// The subscriber exited: drop all its subscriptions.
    fn drop_owner(&self, pid: &Pid) {
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(pid);
        self.subs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, s| s.pid != *pid);
    }

    /// Deliver one bus event to every matching subscription.
    fn route(&self, ev: &BusEvent) {
        let targets: Vec<(u64, Pid, String)> = {
            let g = self.subs.read().unwrap_or_else(|e| e.into_inner());
            if g.is_empty() {
                return;
            }
            g.iter()
                .filter(|(_, s)| s.system.matches(&ev.system) && s.kind.matches(&ev.kind))
                .map(|(id, s)| (*id, s.pid.clone(), s.topic.clone()))
                .collect()
        };
        if targets.is_empty() {
            return;
        }
        let mut m = vec![
            (Value::str("system"), Value::str(&ev.system)),
            (Value::str("kind"), Value::str(&ev.kind)),
            (Value::str("path"), Value::str(&ev.path)),
        ];
        if !ev.data.is_nil() {
            m.push((Value::str("data"), plain(&ev.data)));
        }
        let payload = Value::Map(m);
        for (id, pid, topic) in targets {
            let r = self
                .handle
                .send(Package::new(Pid::zero(), pid, topic, vec![payload.clone()]));
            if let Err(e) = r
                && e.kind() == &Kind::NOT_FOUND
            {
                self.remove(id);
            }
        }
    }
}

/// Event data as Lua sees it: native objects (opaque values) become nil.
fn plain(v: &Value) -> Value {
    match v {
        Value::Opaque(_) => Value::Nil,
        Value::Array(a) => Value::Array(a.iter().map(plain).collect()),
        Value::Map(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), plain(v))).collect()),
        other => other.clone(),
    }
}

/// Create the bridge for `sys` and register the `events` module (once per OS process).
/// Needs the topology installed; call in boot's load phase.
///
/// # Errors
/// `Unavailable` without the topology; the bus's subscribe errors.
pub fn install(sys: &Arc<System>) -> Result<Arc<Bridge>, Error> {
    let cx = sys.handle.app_context();
    if let Some(b) = cx.get(&EVENTS_BRIDGE) {
        return Ok(b);
    }
    let topo = Topology::of(&sys.handle)
        .ok_or_else(|| Error::unavailable("events needs the topology installed"))?;
    let b = Bridge::new(sys.handle.clone(), topo)?;
    if !cx.is_sealed() {
        cx.set_arc(&EVENTS_BRIDGE, b.clone());
    }
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| register_module("events", false, Arc::new(build)));
    Ok(b)
}

/// A Lua subscription.
struct LuaSubscription {
    id: u64,
    chan: AnyUserData,
    bridge: Arc<Bridge>,
    closed: bool,
}

impl UserData for LuaSubscription {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("channel", |_, s, ()| Ok(s.chan.clone()));
        m.add_method_mut("close", |lua, s, ()| {
            if !s.closed {
                s.closed = true;
                s.bridge.remove(s.id);
                let ch = s.chan.clone();
                let _ = with_core(|c| mailbox::unsubscribe(lua, c, &ch));
            }
            Ok(true)
        });
        m.add_meta_method(mlua::MetaMethod::ToString, |_, s, ()| {
            Ok(format!("events.Subscription{{id={}}}", s.id))
        });
    }
}

fn str_or_empty(v: Option<&LuaValue>) -> Option<String> {
    match v {
        None | Some(LuaValue::Nil) => Some(String::new()),
        Some(LuaValue::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    }
}

/// What `subscribe` sets up inside the core: owner PID, private topic, channel, bridge.
type Subscribed = (Pid, String, AnyUserData, Arc<Bridge>);

fn subscribe(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let Some(system) = str_or_empty(args.front()) else {
        return raise::raise_msg(lua, "bad argument #1 to 'subscribe' (string expected)");
    };
    let Some(kind) = str_or_empty(args.get(1)) else {
        return raise::raise_msg(lua, "bad argument #2 to 'subscribe' (string expected)");
    };
    if system.is_empty() {
        return nil_err(lua, Kind::INVALID, "system is required");
    }
    let r = with_core(|c| -> mlua::Result<Result<Subscribed, Error>> {
        let Some(bridge) = c.handle.app_context().get(&EVENTS_BRIDGE) else {
            return Ok(Err(Error::internal("events bridge is not installed")));
        };
        let topic = c.private_topic("events");
        // SAFETY: a Lua callback: `lua` is the state of the process whose core
        // `with_core` lent (`mailbox::flush`'s contract).
        let ch = unsafe { mailbox::subscribe(lua, c, &topic, CHANNEL_BUFFER, SubMode::Raw) }?;
        Ok(Ok((c.pid.clone(), topic, ch, bridge)))
    });
    let (pid, topic, chan, bridge) = match r {
        Ok(Ok(Ok(x))) => x,
        Ok(Ok(Err(e))) => return nil_error(lua, e),
        Ok(Err(e)) => return Err(e),
        Err(e) => return yields::core_error(lua, e),
    };
    let id = bridge.add(&pid, topic, &system, &kind);
    let ud = lua.create_userdata(LuaSubscription {
        id,
        chan,
        bridge,
        closed: false,
    })?;
    Ok(ret1(LuaValue::UserData(ud)))
}

fn send(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut parts = Vec::with_capacity(3);
    for (i, what) in ["system", "kind", "path"].iter().enumerate() {
        match args.get(i) {
            Some(LuaValue::String(s)) if !s.as_bytes().is_empty() => {
                parts.push(s.to_string_lossy())
            }
            None | Some(LuaValue::Nil) | Some(LuaValue::String(_)) => {
                return nil_err(lua, Kind::INVALID, format!("{what} is required"));
            }
            Some(other) => {
                return raise::raise_msg(
                    lua,
                    format!(
                        "bad argument #{} to 'send' (string expected, got {})",
                        i + 1,
                        other.type_name()
                    ),
                );
            }
        }
    }
    let data = match args.get(3) {
        None => Value::Nil,
        Some(v) => match convert::from_lua(v) {
            Ok(v) => v,
            Err(e) => return nil_error(lua, e),
        },
    };
    let handle = match with_core(|c| c.handle.clone()) {
        Ok(h) => h,
        Err(e) => return yields::core_error(lua, e),
    };
    let path = parts.pop().expect("three parts");
    let kind = parts.pop().expect("three parts");
    let system = parts.pop().expect("three parts");
    handle
        .bus()
        .publish(BusEvent::new(system, kind, path, data));
    Ok(ret1(LuaValue::Boolean(true)))
}

/// The `events` table: light C functions ([`rawfn`]), no Lua allocation per function.
fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 2)?;
    rawfn::set(lua, &t, "subscribe", crate::lua_fn!(subscribe))?;
    rawfn::set(lua, &t, "send", crate::lua_fn!(send))?;
    Ok(LuaValue::Table(t))
}

#[cfg(test)]
mod tests {
    use super::Matcher;

    #[test]
    fn bridge_matching_is_prefix_based() {
        assert!(Matcher::new("").matches("anything.at.all"));
        assert!(Matcher::new("*").matches("x"));
        assert!(Matcher::new("orders.*").matches("orders.x.y"));
        assert!(!Matcher::new("orders.*").matches("order"));
        assert!(Matcher::new("registry").matches("registry"));
        assert!(!Matcher::new("registry").matches("registry.x"));
    }
}
