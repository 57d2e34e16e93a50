//! The process-system part of the `process` global (spec `lua-api.md` §3.7):
//! `monitor`/`unmonitor`/`link`/`unlink`, `cancel`/`terminate`, `process.registry.*`, the
//! immutable spawner builder (`process.with_context`, `process.with_options`) and
//! `process.upgrade`. (The engine's `process.spawn*` variants pass monitor/link/name through
//! the spawn options; the topology's lifecycle hook applies them.) Added to the engine's `process` table through the module
//! registry's extension hook ([`install`]).
//!
//! Every function is a light C function ([`rawfn`]: no Lua allocation per state), and
//! `process.registry` is built on first access by an `__index` on the `process` table, then
//! frozen and cached in it (until then `pairs(process)` does not list it): an idle process
//! that never names a process pays neither the table nor its interned key strings.
//!
//! All of these are immediate operations on the topology (no yield: the original dispatched
//! commands 3–8 and resumed at once; here the call completes in place).
//!
//! # Results and errors
//!
//! * Spawns return the child PID string or `nil, err` with the spawn's own error kind
//!   ("factory not found: …", "host not found", the child's init error, …); argument problems
//!   are `Invalid` ("spawn_linked requires at least id and host arguments"), non-string ids,
//!   hosts and destinations raise.
//! * Destinations resolve **PID first, then registered names**; failure → `nil, err`
//!   `NotFound` `"could not resolve '<dest>' as PID or registered name"`.
//! * A failed monitor/link/cancel/terminate comes back as `nil, err` wrapping the topology
//!   error with context (`"monitor failed"`, …) and kind **forced to `Internal`**, as upstream
//!   (so `process.monitor` of an exited PID gives an `Internal` error whose message is
//!   "pid not registered"). `unmonitor`/`unlink` never fail.
//! * `process.cancel(dest[, arg[, deadline]])` (decision 0061): `arg` may be a reason string,
//!   a deadline — milliseconds (number), a Go duration string (`"5s"`) or a `time` Duration —
//!   or a table `{reason =, deadline =}`; a third argument may give the deadline after a reason.
//!   With a deadline the target is terminated if it has not exited when it passes.
//! * `process.registry.register(name[, pid|scope[, scope|pid]])` → `true` / `nil, err`
//!   (both argument orders of the docs and of newer upstream code are accepted: a number is the
//!   scope, a string the PID); `lookup(name)` → PID / `nil, err` (`NotFound` "name not
//!   registered"); `unregister(name[, scope])` → boolean. Scopes other than `LOCAL` →
//!   `Unavailable` `"registry scope <S> requires clustering"`.
//!
//! # Spawner
//!
//! `process.with_context(tbl)` / `process.with_options(tbl)` return an immutable Spawner; every
//! `with_*` returns a new one: `:with_context(tbl)` (merged over the values inherited from the
//! calling process), `:with_options(tbl)` (extra lifecycle attributes of the spawn),
//! `:with_actor(a)` / `:with_scope(s)` (carried as attributes `security.actor` /
//! `security.scope`; there is no security model yet), `:with_name(name)` (spawn-or-signal: if
//! the name is taken by a live process, nothing is spawned, the messages go to it and its PID
//! is returned), `:with_message(topic, ...)` (sent right after the spawn, or to the existing
//! process), and `:spawn`, `:spawn_monitored`, `:spawn_linked`, `:spawn_linked_monitored`.
//! There is no `:exec` (upstream).
//!
//! # Upgrade
//!
//! `process.upgrade(id_or_nil, ...)` replaces the running code after the current step with a
//! fresh instance of entry `id` (nil: the same entry) started with `...` as its arguments; it
//! does not return. The PID, the runtime event queue, the engine's undelivered mailbox, the
//! `trap_links` option and everything the topology holds under the PID (links, monitors,
//! names) are kept; subscriptions, channels and coroutines of the old code end. A failure
//! (unknown entry, init error) ends the process with `upgrade: …` (upstream). Function
//! calls cannot upgrade (`Invalid`).

use std::sync::{Arc, Once};
use std::time::Duration;

use crate::lua::vm::lazy::Field;
use mlua::{Lua, MultiValue, Table, UserData, UserDataMethods, Value as LuaValue};
use wippy_rt::{Error, Kind, Pid, Value};

use crate::config::duration::parse_duration;
use crate::lua::convert;
use crate::lua::engine::core::with_core;
use crate::lua::engine::modules::process::payloads;
use crate::lua::engine::rawfn;
use crate::lua::engine::yields::{self, ret1};
use crate::lua::modules::errors::{nil_err, nil_error};
use crate::lua::modules::extend_module;
use crate::lua::vm::{raise, readonly};
use crate::system::System;
use crate::system::names::Scope;
use crate::system::process_manager::{NameResolver, ProcessManager, StartOptions, StartRequest};
use crate::system::topology::{CancelArg, Topology};

static EXTEND: Once = Once::new();

/// Resolves spawn-or-signal names for the process manager.
struct Names(std::sync::Weak<Topology>);

impl NameResolver for Names {
    fn resolve(&self, name: &str) -> Option<Pid> {
        self.0.upgrade()?.names().get(name)
    }
}

/// Install the process-system Lua surface for `sys`: the `process` extensions and
/// `system.supervisor` (once per OS process, before any Lua state builds the modules), the
/// process manager's name resolver,
/// the `events` module with its bus bridge and the `registry` module. Needs the topology and
/// the Lua engine installed first (boot's load phase).
///
/// # Errors
/// `Unavailable` when the topology is missing; the module registry's error when the engine's
/// `process` module is not registered.
pub fn install(sys: &Arc<System>) -> Result<(), Error> {
    let topo = Topology::of(&sys.handle)
        .ok_or_else(|| Error::unavailable("the process system needs the topology installed"))?;
    if let Some(pm) = ProcessManager::of(sys) {
        pm.set_name_resolver(Arc::new(Names(Arc::downgrade(&topo))));
    }
    crate::lua::modules::events::install(sys)?;
    crate::lua::modules::registry::register();
    let mut r = Ok(());
    EXTEND.call_once(|| {
        crate::lua::engine::modules::process::SPEC.extend(PROCESS_FIELDS);
        r = extend_module("system", Arc::new(extend_system));
    });
    r
}

/// `system.supervisor.state(id)` → `{id, status, desired, details, retry_count, last_update,
/// started_at}` or nil; `system.supervisor.states()` → array of those, sorted by id.
fn extend_system(lua: &Lua, t: &Table) -> mlua::Result<()> {
    let sup = lua.create_table_with_capacity(0, 2)?;
    sup.raw_set(
        "state",
        lua.create_function(|lua, id: String| {
            let st = with_core(|c| {
                crate::system::supervisor::Supervisor::of(&c.handle).and_then(|s| s.state(&id))
            })
            .ok()
            .flatten();
            match st {
                Some(s) => convert::to_lua(lua, &s.to_value()),
                None => Ok(LuaValue::Nil),
            }
        })?,
    )?;
    sup.raw_set(
        "states",
        lua.create_function(|lua, ()| {
            let states = with_core(|c| {
                crate::system::supervisor::Supervisor::of(&c.handle)
                    .map(|s| s.states())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
            let out = lua.create_table_with_capacity(states.len(), 0)?;
            for (i, s) in states.iter().enumerate() {
                out.raw_set(i + 1, convert::to_lua(lua, &s.to_value())?)?;
            }
            Ok(out)
        })?,
    )?;
    t.raw_set("supervisor", sup)
}

/// The functions this component adds to the `process` table (light C functions, built into
/// a state's table on first read; `registry` is a table built on first read).
static PROCESS_FIELDS: &[(&str, Field)] = &[
    ("monitor", Field::Fn(crate::lua_fn!(monitor))),
    ("unmonitor", Field::Fn(crate::lua_fn!(unmonitor))),
    ("link", Field::Fn(crate::lua_fn!(link))),
    ("unlink", Field::Fn(crate::lua_fn!(unlink))),
    ("cancel", Field::Fn(crate::lua_fn!(cancel))),
    ("terminate", Field::Fn(crate::lua_fn!(terminate))),
    ("registry", Field::Call(crate::lua_fn!(registry_value))),
    ("upgrade", Field::Fn(crate::lua_fn!(upgrade))),
    ("with_context", Field::Fn(crate::lua_fn!(with_context))),
    ("with_options", Field::Fn(crate::lua_fn!(with_options))),
];

/// `process.registry`: the name registry functions, frozen.
fn registry_value(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    let reg = readonly::freeze(lua, LuaValue::Table(registry_table(lua)?))?;
    Ok(ret1(reg))
}

fn monitor(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    edge(lua, &args, "monitor", |t, me, to| t.monitor(me, to))
}

fn unmonitor(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    edge(lua, &args, "unmonitor", |t, me, to| {
        t.unmonitor(me, to);
        Ok(())
    })
}

fn link(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    edge(lua, &args, "link", |t, me, to| t.link(me, to))
}

fn unlink(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    edge(lua, &args, "unlink", |t, me, to| {
        t.unlink(me, to);
        Ok(())
    })
}

fn terminate(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    edge(lua, &args, "terminate", |t, _, to| t.terminate(to))
}

/// `process.with_context(tbl)`: a Spawner carrying the caller's context merged with `tbl`.
fn with_context(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let tbl = match table_arg(lua, &args, 0, "with_context") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut sp = Spawner::inherit()?;
    merge_pairs(&mut sp.context, &tbl)?;
    spawner_value(lua, sp)
}

/// `process.with_options(tbl)`: a Spawner with the lifecycle attributes of `tbl`.
fn with_options(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let tbl = match table_arg(lua, &args, 0, "with_options") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut sp = Spawner::inherit()?;
    merge_pairs(&mut sp.options, &tbl)?;
    spawner_value(lua, sp)
}

// ===== helpers =====

/// A table argument, or the `raise` result to return.
fn table_arg(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    f: &str,
) -> Result<Table, mlua::Result<MultiValue>> {
    match args.get(i) {
        Some(LuaValue::Table(t)) => Ok(t.clone()),
        other => {
            let got = rawfn::arg_type(other);
            Err(raise::raise_msg(
                lua,
                format!(
                    "bad argument #{} to '{f}' (table expected, got {got})",
                    i + 1
                ),
            ))
        }
    }
}

/// A required string argument, or the `raise` result to return.
fn str_arg(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    f: &str,
) -> Result<String, mlua::Result<MultiValue>> {
    match args.get(i) {
        Some(LuaValue::String(s)) => Ok(s.to_string_lossy()),
        other => {
            let got = rawfn::arg_type(other);
            Err(raise::raise_msg(
                lua,
                format!(
                    "bad argument #{} to '{f}' (string expected, got {got})",
                    i + 1
                ),
            ))
        }
    }
}

/// The running process's PID, handle-installed topology and context.
fn current() -> Result<(Pid, Arc<Topology>), Error> {
    let (pid, topo) = with_core(|c| (c.pid.clone(), Topology::of(&c.handle)))
        .map_err(|e| Error::internal(e.message()))?;
    let topo = topo.ok_or_else(|| Error::internal("topology is not installed"))?;
    Ok((pid, topo))
}

/// Merge string-keyed pairs of `tbl` into `into` (later keys replace earlier ones).
fn merge_pairs(into: &mut Vec<(String, Value)>, tbl: &Table) -> mlua::Result<()> {
    for pair in tbl.pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair?;
        let LuaValue::String(k) = k else {
            return Err(mlua::Error::RuntimeError(
                "context keys must be strings".into(),
            ));
        };
        let k = k.to_string_lossy();
        let v = convert::from_lua(&v).map_err(|e| mlua::Error::RuntimeError(e.to_string()))?;
        match into.iter_mut().find(|(k2, _)| *k2 == k) {
            Some(slot) => slot.1 = v,
            None => into.push((k, v)),
        }
    }
    Ok(())
}

/// An operation on the caller and a resolved destination: `true` / `nil, err`.
fn edge(
    lua: &Lua,
    args: &MultiValue,
    op: &str,
    f: impl FnOnce(&Topology, &Pid, &Pid) -> Result<(), Error>,
) -> mlua::Result<MultiValue> {
    if args.is_empty() || matches!(args.front(), Some(LuaValue::Nil)) {
        return nil_err(
            lua,
            Kind::INVALID,
            format!("{op} requires a destination argument"),
        );
    }
    let dest = match str_arg(lua, args, 0, op) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (me, topo) = match current() {
        Ok(x) => x,
        Err(e) => return raise::raise_msg(lua, e.message()),
    };
    let to = match topo.resolve(&dest) {
        Ok(p) => p,
        Err(e) => return nil_error(lua, e),
    };
    match f(&topo, &me, &to) {
        Ok(()) => Ok(ret1(LuaValue::Boolean(true))),
        Err(e) => nil_error(lua, op_error(e, op)),
    }
}

/// A topology failure as the Lua caller sees it: wrapped with `"<op> failed"`, kind Internal.
fn op_error(e: Error, op: &str) -> Error {
    e.wrap(format!("{op} failed")).with_kind(Kind::INTERNAL)
}

// ===== spawn =====

fn spawn(
    lua: &Lua,
    args: &MultiValue,
    offset: usize,
    op: &str,
    monitor: bool,
    link: bool,
    sp: Option<&Spawner>,
) -> mlua::Result<MultiValue> {
    if args.len() < offset + 2 {
        return nil_err(
            lua,
            Kind::INVALID,
            format!("{op} requires at least id and host arguments"),
        );
    }
    let id = match str_arg(lua, args, offset, op) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let host = match str_arg(lua, args, offset + 1, op) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let input = match payloads(args, offset + 2) {
        Ok(v) => v,
        Err(e) => return nil_error(lua, e),
    };
    let core = with_core(|c| (c.pid.clone(), (*c.context).clone(), c.engine.pm.clone()));
    let (parent, inherited, pm) = match core {
        Ok(x) => x,
        Err(e) => return yields::core_error(lua, e),
    };
    let mut req = StartRequest {
        host,
        source: id,
        input,
        options: StartOptions {
            parent: Some(parent),
            monitor,
            link,
            name: None,
        },
        context: inherited,
        ..StartRequest::default()
    };
    if let Some(sp) = sp {
        req.context = sp.context.clone();
        req.options.name = sp.name.clone();
        req.messages = sp.messages.clone();
        req.attrs = sp.attrs();
    }
    // Not inside `with_core`: the child's init runs Lua (its own core) on this thread. The
    // process manager does spawn-or-signal for names (messages go to the existing holder).
    match pm.start(req) {
        Ok(pid) => Ok(ret1(LuaValue::String(lua.create_string(pid.as_str())?))),
        Err(e) => nil_error(lua, e),
    }
}

// ===== cancel =====

/// A deadline argument: milliseconds, a Go duration string, or a Duration object.
fn deadline_of(v: &LuaValue) -> Option<Result<Duration, Error>> {
    match v {
        LuaValue::Integer(ms) => Some(Ok(Duration::from_millis((*ms).max(0) as u64))),
        LuaValue::Number(ms) if ms.is_finite() => {
            Some(Ok(Duration::from_secs_f64((ms / 1000.0).max(0.0))))
        }
        LuaValue::String(s) => {
            let s = s.to_string_lossy();
            looks_like_duration(&s).then(|| {
                parse_duration(&s)
                    .map_err(|e| Error::invalid(format!("invalid duration format: {e}")))
            })
        }
        LuaValue::UserData(ud) => ud
            .borrow::<crate::lua::modules::time::Duration>()
            .ok()
            .map(|d| Ok(Duration::from_nanos(d.0.max(0) as u64))),
        _ => None,
    }
}

/// A string is a duration when it is a number followed by a Go unit (`5s`, `1m30s`, `250ms`);
/// anything else is a reason.
fn looks_like_duration(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && s.as_bytes()[0].is_ascii_digit()
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && parse_duration(s).is_ok()
}

fn cancel(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let invalid = |lua: &Lua, msg: &str| nil_err(lua, Kind::INVALID, msg.to_string());
    const BAD_ARG: &str = "cancel: second argument must be a reason string, a deadline (milliseconds, duration string or Duration) or {reason=, deadline=}";
    let mut arg = CancelArg::default();
    match args.get(1) {
        None | Some(LuaValue::Nil) => {}
        Some(LuaValue::Table(t)) => {
            if let LuaValue::String(s) = t.raw_get::<LuaValue>("reason")? {
                arg.reason = s.to_string_lossy();
            }
            match t.raw_get::<LuaValue>("deadline")? {
                LuaValue::Nil => {}
                d => match deadline_of(&d) {
                    Some(Ok(d)) => arg.deadline = Some(d),
                    Some(Err(e)) => return nil_error(lua, e),
                    None => return invalid(lua, BAD_ARG),
                },
            }
        }
        Some(v) => match deadline_of(v) {
            Some(Ok(d)) => arg.deadline = Some(d),
            Some(Err(e)) => return nil_error(lua, e),
            None => match v {
                LuaValue::String(s) => arg.reason = s.to_string_lossy(),
                _ => return invalid(lua, BAD_ARG),
            },
        },
    }
    if let Some(v) = args.get(2).filter(|v| !v.is_nil()) {
        match deadline_of(v) {
            Some(Ok(d)) => arg.deadline = Some(d),
            Some(Err(e)) => return nil_error(lua, e),
            None => return invalid(lua, BAD_ARG),
        }
    }
    edge(lua, &args, "cancel", |t, me, to| t.cancel(me, to, &arg))
}

// ===== upgrade =====

/// `process.upgrade(id_or_nil, ...)`: hot-swap the running code (does not return).
fn upgrade(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let source = match args.front() {
        None | Some(LuaValue::Nil) => None,
        Some(LuaValue::String(s)) => Some(s.to_string_lossy()),
        Some(other) => {
            return raise::raise_msg(
                lua,
                format!(
                    "bad argument #1 to 'upgrade' (string or nil expected, got {})",
                    rawfn::arg_type(Some(other))
                ),
            );
        }
    };
    let input = match payloads(&args, 1) {
        Ok(v) => v,
        Err(e) => return nil_error(lua, e),
    };
    match with_core(|c| c.entry.kind) {
        Ok(crate::lua::engine::LuaKind::Process) => {}
        Ok(_) => {
            return nil_err(lua, Kind::INVALID, "upgrade is only available to processes");
        }
        Err(e) => return yields::core_error(lua, e),
    }
    yields::suspend(lua, crate::lua::engine::core::Op::Upgrade(source, input))
}

// ===== process.registry =====

fn scope_of(v: &LuaValue) -> Result<Scope, Error> {
    match v {
        LuaValue::Integer(n) => Scope::from_code(*n),
        LuaValue::Number(n) if n.fract() == 0.0 => Scope::from_code(*n as i64),
        _ => Err(Error::invalid(
            "scope must be a number (process.registry.LOCAL|EVENTUAL|CONSISTENT|STRONG)",
        )),
    }
}

fn registry_table(lua: &Lua) -> mlua::Result<Table> {
    let reg = lua.create_table_with_capacity(0, 7)?;
    reg.raw_set("LOCAL", 0)?;
    reg.raw_set("CONSISTENT", 1)?;
    reg.raw_set("EVENTUAL", 2)?;
    reg.raw_set("STRONG", 3)?;
    rawfn::set(lua, &reg, "register", crate::lua_fn!(register))?;
    rawfn::set(lua, &reg, "lookup", crate::lua_fn!(lookup))?;
    rawfn::set(lua, &reg, "unregister", crate::lua_fn!(unregister))?;
    Ok(reg)
}

/// `process.registry.register(name[, pid|scope[, scope|pid]])`.
fn register(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let name = match str_arg(lua, &args, 0, "register") {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (me, topo) = match current() {
        Ok(x) => x,
        Err(e) => return raise::raise_msg(lua, e.message()),
    };
    let mut scope = Scope::Local;
    let mut pid = me;
    for v in args.iter().skip(1).take(2) {
        match v {
            LuaValue::Nil => {}
            LuaValue::String(s) => match Pid::parse(&s.to_string_lossy()) {
                Ok(p) => pid = p,
                Err(e) => return nil_error(lua, e.wrap("invalid pid")),
            },
            other => match scope_of(other) {
                Ok(s) => scope = s,
                Err(e) => return nil_error(lua, e),
            },
        }
    }
    match topo.names().register_in(scope, &name, &pid) {
        Ok(()) => Ok(ret1(LuaValue::Boolean(true))),
        Err(e) => nil_error(lua, e),
    }
}

/// `process.registry.lookup(name[, scope])`.
fn lookup(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let name = match str_arg(lua, &args, 0, "lookup") {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(v) = args.get(1).filter(|v| !v.is_nil())
        && let Err(e) = scope_of(v).and_then(|s| s.require_local())
    {
        return nil_error(lua, e);
    }
    let (_, topo) = match current() {
        Ok(x) => x,
        Err(e) => return raise::raise_msg(lua, e.message()),
    };
    match topo.names().lookup(&name) {
        Ok(p) => Ok(ret1(LuaValue::String(lua.create_string(p.as_str())?))),
        Err(e) => nil_error(lua, e),
    }
}

/// `process.registry.unregister(name[, scope])`.
fn unregister(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let name = match str_arg(lua, &args, 0, "unregister") {
        Ok(s) => s,
        Err(r) => return r,
    };
    let scope = match args.get(1).filter(|v| !v.is_nil()) {
        Some(v) => match scope_of(v) {
            Ok(s) => s,
            Err(e) => return nil_error(lua, e),
        },
        None => Scope::Local,
    };
    let (_, topo) = match current() {
        Ok(x) => x,
        Err(e) => return raise::raise_msg(lua, e.message()),
    };
    match topo.names().unregister_in(scope, &name) {
        Ok(b) => Ok(ret1(LuaValue::Boolean(b))),
        Err(e) => nil_error(lua, e),
    }
}

// ===== Spawner =====

/// The immutable spawner builder (see the module docs).
#[derive(Clone, Default)]
struct Spawner {
    context: Vec<(String, Value)>,
    options: Vec<(String, Value)>,
    actor: Option<Value>,
    scope: Option<Value>,
    name: Option<String>,
    messages: Vec<(String, Vec<Value>)>,
}

impl Spawner {
    /// A spawner carrying the calling process's context values.
    fn inherit() -> mlua::Result<Spawner> {
        let context = with_core(|c| (*c.context).clone())
            .map_err(|e| mlua::Error::RuntimeError(e.message().into()))?;
        Ok(Spawner {
            context,
            ..Spawner::default()
        })
    }

    /// Lifecycle attributes of a spawn: the options plus the carried security values.
    fn attrs(&self) -> Vec<(String, Value)> {
        let mut a = self.options.clone();
        if let Some(v) = &self.actor {
            a.push(("security.actor".into(), v.clone()));
        }
        if let Some(v) = &self.scope {
            a.push(("security.scope".into(), v.clone()));
        }
        a
    }
}

fn spawner_value(lua: &Lua, sp: Spawner) -> mlua::Result<MultiValue> {
    Ok(ret1(LuaValue::UserData(lua.create_userdata(sp)?)))
}

impl UserData for Spawner {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("with_context", |lua, sp, tbl: Table| {
            let mut n = sp.clone();
            merge_pairs(&mut n.context, &tbl)?;
            spawner_value(lua, n)
        });
        m.add_method("with_options", |lua, sp, tbl: Table| {
            let mut n = sp.clone();
            merge_pairs(&mut n.options, &tbl)?;
            spawner_value(lua, n)
        });
        m.add_method("with_actor", |lua, sp, v: LuaValue| {
            if v.is_nil() {
                return Err(mlua::Error::RuntimeError(
                    "bad argument #1 to 'with_actor' (actor cannot be nil)".into(),
                ));
            }
            let mut n = sp.clone();
            n.actor = Some(convert::from_lua(&v).unwrap_or(Value::Nil));
            spawner_value(lua, n)
        });
        m.add_method("with_scope", |lua, sp, v: LuaValue| {
            if v.is_nil() {
                return Err(mlua::Error::RuntimeError(
                    "bad argument #1 to 'with_scope' (scope cannot be nil)".into(),
                ));
            }
            let mut n = sp.clone();
            n.scope = Some(convert::from_lua(&v).unwrap_or(Value::Nil));
            spawner_value(lua, n)
        });
        m.add_method("with_name", |lua, sp, name: String| {
            if name.is_empty() {
                return Err(mlua::Error::RuntimeError(
                    "bad argument #1 to 'with_name' (name cannot be empty)".into(),
                ));
            }
            let mut n = sp.clone();
            n.name = Some(name);
            spawner_value(lua, n)
        });
        m.add_method("with_message", |lua, sp, args: MultiValue| {
            let topic = match args.front() {
                Some(LuaValue::String(s)) => s.to_string_lossy(),
                _ => {
                    return Err(mlua::Error::RuntimeError(
                        "bad argument #1 to 'with_message' (string expected)".into(),
                    ));
                }
            };
            if topic.starts_with('@') {
                return Err(mlua::Error::RuntimeError(
                    "bad argument #1 to 'with_message' (cannot send to @ topics)".into(),
                ));
            }
            let p = payloads(&args, 1).map_err(|e| mlua::Error::RuntimeError(e.to_string()))?;
            let mut n = sp.clone();
            n.messages.push((topic, p));
            spawner_value(lua, n)
        });
        for (name, monitor, link) in [
            ("spawn", false, false),
            ("spawn_monitored", true, false),
            ("spawn_linked", false, true),
            ("spawn_linked_monitored", true, true),
        ] {
            m.add_method(name, move |lua, sp, args: MultiValue| {
                spawn_from_method(lua, sp, args, name, monitor, link)
            });
        }
        m.add_meta_method(mlua::MetaMethod::ToString, |_, sp, ()| {
            Ok(format!(
                "process.Spawner{{context={}, name={}}}",
                sp.context.len(),
                sp.name.as_deref().unwrap_or("")
            ))
        });
    }
}

/// Spawner spawns raise clean messages through the trampoline-less method path: errors of
/// the spawn itself are returned as `nil, err`.
fn spawn_from_method(
    lua: &Lua,
    sp: &Spawner,
    args: MultiValue,
    op: &str,
    monitor: bool,
    link: bool,
) -> mlua::Result<MultiValue> {
    let r = spawn(lua, &args, 0, op, monitor, link, Some(sp))?;
    // `spawn` returns `(RAISE, msg)` for argument errors; turn that into a Lua error here,
    // since methods are not wrapped in the raising trampoline.
    if let Some(LuaValue::LightUserData(p)) = r.front()
        && *p == raise::sentinel()
    {
        let msg = match r.get(1) {
            Some(LuaValue::String(s)) => s.to_string_lossy(),
            _ => "spawn failed".into(),
        };
        return Err(mlua::Error::RuntimeError(msg));
    }
    Ok(r)
}
