//! The `process` global (spec `lua-api.md` §3.7): identity, messaging, spawning and the
//! inbox/events/listen subscriptions.
//!
//! Failures come back as `nil, err` with structured errors: argument problems are `Invalid`
//! ("send requires at least destination and topic arguments", "cannot send to @ topics",
//! "spawn requires at least id and host arguments"), an unresolvable destination is
//! `NotFound` ("could not resolve '<dest>' as PID or registered name"), and errors of the
//! operation itself keep their kind ("process not found", "factory not found: …"). A
//! non-string id, host or destination raises.
//!
//! `process.send` delivers synchronously (per-sender order holds) without suspending the task;
//! `process.spawn` runs the child's top-level chunk on this thread, as upstream's Spawn
//! handler does; `process.exec` suspends the task until the child exits.
//!
//! `spawn_monitored`, `spawn_linked` and `spawn_linked_monitored` pass the monitor/link flags
//! in the spawn options; the topology component's lifecycle hook turns them into edges before
//! the child's first step (without it, the process manager delivers monitor EXIT events
//! itself and the linked variants fail with `Unavailable`). Names, `monitor`/`link` and the
//! spawner builder belong to the topology issue; `cancel` and `terminate` forward to the
//! runtime.

use std::ffi::c_int;

use mlua::{Lua, MultiValue, Value as LuaValue, ffi};
use wippy_rt::process::{CANCEL, EXIT, LINK_DOWN};
use wippy_rt::{Error, Kind, Package, Pid, Value};

use super::super::core::{Op, SubMode, with_core};
use super::super::mailbox::{self, EVENTS, INBOX};
use super::super::rawapi;
use super::super::yields::{self, ret1, ret2};
use crate::lua::convert;
use crate::lua::modules::errors::{error_value, nil_err, nil_error};
use crate::lua::vm::lazy::{self, Field};
use crate::lua::vm::raise;
use crate::system::process_manager::{StartOptions, StartRequest};

/// The fields of the `process` table: light C functions ([`rawfn`](super::super::rawfn)) built into the table
/// on first read ([`lazy`]), so an idle process that only touched `process.inbox` holds one
/// field. `process_system` adds its functions with [`lazy::Spec::extend`].
pub(crate) static SPEC: lazy::Spec = lazy::Spec::new(
    "process",
    &[
        ("pid", Field::Fn(crate::lua_fn!(pid))),
        ("id", Field::Fn(crate::lua_fn!(entry_id))),
        ("send", Field::Fn(send)),
        ("spawn", Field::Fn(crate::lua_fn!(spawn_plain))),
        (
            "spawn_monitored",
            Field::Fn(crate::lua_fn!(spawn_monitored)),
        ),
        ("spawn_linked", Field::Fn(crate::lua_fn!(spawn_linked))),
        (
            "spawn_linked_monitored",
            Field::Fn(crate::lua_fn!(spawn_linked_monitored)),
        ),
        ("exec", Field::Fn(crate::lua_fn!(exec))),
        ("cancel", Field::Fn(crate::lua_fn!(cancel))),
        ("terminate", Field::Fn(crate::lua_fn!(terminate))),
        ("inbox", Field::Fn(crate::lua_fn!(inbox))),
        ("events", Field::Fn(crate::lua_fn!(events))),
        ("listen", Field::Fn(crate::lua_fn!(listen))),
        ("unlisten", Field::Fn(crate::lua_fn!(unlisten))),
        ("get_options", Field::Fn(crate::lua_fn!(get_options))),
        ("set_options", Field::Fn(crate::lua_fn!(set_options))),
        ("event", Field::Call(crate::lua_fn!(event_table))),
    ],
);

/// The `process` table (see [`SPEC`]).
pub(crate) fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    // SAFETY: `lazy::push` pushes exactly one table; `exec_raw` runs it protected.
    unsafe { lua.exec_raw((), |l| lazy::push(l, &SPEC)) }
}

/// `process.event`: the event kind constants.
fn event_table(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    let ev = lua.create_table_with_capacity(0, 3)?;
    ev.raw_set("CANCEL", CANCEL)?;
    ev.raw_set("EXIT", EXIT)?;
    ev.raw_set("LINK_DOWN", LINK_DOWN)?;
    Ok(ret1(LuaValue::Table(ev)))
}

fn pid(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    match with_core(|c| c.pid.as_str().to_string()) {
        Ok(s) => Ok(ret1(LuaValue::String(lua.create_string(s)?))),
        Err(e) => nil_err(lua, Kind::INTERNAL, e.message()),
    }
}

fn entry_id(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    match with_core(|c| c.entry.id.clone()) {
        Ok(s) => Ok(ret1(LuaValue::String(lua.create_string(s)?))),
        Err(e) => nil_err(lua, Kind::INTERNAL, e.message()),
    }
}

fn inbox(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    subscribe(lua, INBOX, 0, SubMode::Messages)
}

fn events(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    subscribe(lua, EVENTS, 0, SubMode::Events)
}

fn get_options(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    let trap = with_core(|c| c.trap_links).unwrap_or(false);
    let r = lua.create_table_with_capacity(0, 1)?;
    r.raw_set("trap_links", trap)?;
    Ok(ret1(LuaValue::Table(r)))
}

/// A required string argument: raises `bad argument #n to 'f' (string expected, got T)`.
fn str_arg(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    f: &str,
) -> Result<String, mlua::Result<MultiValue>> {
    match args.get(i) {
        Some(LuaValue::String(s)) => Ok(s.to_string_lossy()),
        other => {
            let got = super::super::rawfn::arg_type(other);
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

/// Resolve a destination: a PID string, else a registered name.
fn resolve(dest: &str) -> Result<Pid, Error> {
    Pid::parse(dest).or_else(|_| {
        // Then a registered name (the topology's LOCAL registry).
        with_core(|c| {
            crate::system::topology::Topology::of(&c.handle).and_then(|t| t.names().get(dest))
        })
        .ok()
        .flatten()
        .ok_or_else(|| unresolved(dest))
    })
}

/// Convert call arguments `args[from..]` to payload values.
pub(crate) fn payloads(args: &MultiValue, from: usize) -> Result<Vec<Value>, Error> {
    args.iter().skip(from).map(convert::from_lua).collect()
}

/// `process.send(dest, topic, ...)`: the hot path, a raw C function (see
/// [`super::super::rawapi`]): strings are read in place, scalar payloads converted directly,
/// recent destinations come from the core's PID cache.
unsafe extern "C-unwind" fn send(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua. Argument errors raise before any Rust value with a destructor
    // exists; afterwards only non-raising API calls are made until the result is pushed by
    // `push_nil_err` (which never raises).
    unsafe {
        let top = ffi::lua_gettop(l);
        let types = [ffi::lua_type(l, 1), ffi::lua_type(l, 2)];
        if top < 2 || types.contains(&ffi::LUA_TNIL) {
            return rawapi::push_nil_err(
                l,
                Error::invalid("send requires at least destination and topic arguments"),
            );
        }
        for i in 1..=2 {
            if types[i as usize - 1] != ffi::LUA_TSTRING {
                let msg = format!(
                    "bad argument #{i} to 'send' (string expected, got {})",
                    rawapi::type_name(l, i)
                );
                ffi::luaL_where(l, 1);
                ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
                drop(msg);
                ffi::lua_concat(l, 2);
                ffi::lua_error(l);
            }
        }
        let topic = rawapi::str_at(l, 2);
        if topic.first() == Some(&b'@') {
            return rawapi::push_nil_err(l, Error::invalid("cannot send to @ topics"));
        }
        let topic = match std::str::from_utf8(topic) {
            Ok(t) => t.to_owned(),
            Err(_) => String::from_utf8_lossy(topic).into_owned(),
        };
        let dest = rawapi::str_at(l, 1);
        // Scalars are converted in place; the mlua handle is fetched only for a table or
        // userdata payload.
        let mut payloads = Vec::with_capacity((top - 2).max(0) as usize);
        let mut lua: Option<Lua> = None;
        for i in 3..=top {
            let v = match rawapi::scalar_at(l, i) {
                Some(v) => Ok(v),
                None => {
                    if lua.is_none() {
                        match with_core(|c| c.lua.clone()) {
                            Ok(h) => lua = Some(h),
                            Err(e) => {
                                drop(payloads);
                                drop(topic);
                                return rawapi::push_nil_err(l, Error::internal(e.message()));
                            }
                        }
                    }
                    match &lua {
                        Some(h) => rawapi::value_at(h, l, i),
                        None => Err(Error::internal("no Lua handle")),
                    }
                }
            };
            match v {
                Ok(v) => payloads.push(v),
                Err(e) => {
                    drop(payloads);
                    drop(topic);
                    drop(lua);
                    return rawapi::push_nil_err(l, e);
                }
            }
        }
        drop(lua);
        let r = with_core(|c| -> Result<(), Error> {
            let to = c
                .pid_of(dest)
                .map_err(|_| unresolved(&String::from_utf8_lossy(dest)))?;
            c.handle
                .send(Package::new(c.pid.clone(), to, topic, payloads))
        });
        match r {
            Ok(Ok(())) => {
                ffi::lua_pushboolean(l, 1);
                1
            }
            Ok(Err(e)) => rawapi::push_nil_err(l, e),
            Err(e) => rawapi::push_nil_err(l, Error::internal(e.message())),
        }
    }
}

#[cold]
fn unresolved(dest: &str) -> Error {
    Error::new(
        Kind::NOT_FOUND,
        format!("could not resolve '{dest}' as PID or registered name"),
    )
    .with_detail("dest", dest)
}

/// Build a start request from `id, host, ...` (`op` names the function in errors).
fn start_request(
    lua: &Lua,
    args: &MultiValue,
    op: &str,
) -> Result<StartRequest, mlua::Result<MultiValue>> {
    if args.len() < 2 {
        return Err(nil_err(
            lua,
            Kind::INVALID,
            format!("{op} requires at least id and host arguments"),
        ));
    }
    let id = str_arg(lua, args, 0, op)?;
    let host = str_arg(lua, args, 1, op)?;
    let input = payloads(args, 2).map_err(|e| nil_error(lua, e))?;
    let parent = with_core(|c| c.pid.clone()).ok();
    let context = with_core(|c| (*c.context).clone()).unwrap_or_default();
    Ok(StartRequest {
        host,
        source: id,
        input,
        options: StartOptions {
            parent,
            ..StartOptions::default()
        },
        context,
        ..StartRequest::default()
    })
}

fn spawn_plain(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    spawn(lua, args, "spawn", false, false)
}

fn spawn_monitored(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    spawn(lua, args, "spawn_monitored", true, false)
}

fn spawn_linked(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    spawn(lua, args, "spawn_linked", false, true)
}

fn spawn_linked_monitored(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    spawn(lua, args, "spawn_linked_monitored", true, true)
}

fn spawn(
    lua: &Lua,
    args: MultiValue,
    op: &str,
    monitor: bool,
    link: bool,
) -> mlua::Result<MultiValue> {
    let mut req = match start_request(lua, &args, op) {
        Ok(r) => r,
        Err(r) => return r,
    };
    req.options.monitor = monitor;
    req.options.link = link;
    let pm = match with_core(|c| c.engine.pm.clone()) {
        Ok(pm) => pm,
        Err(e) => return yields::core_error(lua, e),
    };
    if link && !pm.links_supported() {
        return nil_err(
            lua,
            Kind::UNAVAILABLE,
            "links need the process topology component, which is not installed",
        );
    }
    // Not inside `with_core`: the child's init runs Lua (its own core) on this thread.
    match pm.start(req) {
        Ok(pid) => Ok(ret1(LuaValue::String(lua.create_string(pid.as_str())?))),
        Err(e) => nil_error(lua, e),
    }
}

fn exec(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let req = match start_request(lua, &args, "exec") {
        Ok(r) => r,
        Err(r) => return r,
    };
    match req.source.split_once(':') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => {}
        _ => {
            return nil_err(
                lua,
                Kind::INVALID,
                "invalid process ID format (namespace:name required)",
            );
        }
    }
    yields::suspend(lua, Op::Exec(Box::new(req)))
}

fn cancel(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let dest = match str_arg(lua, &args, 0, "cancel") {
        Ok(s) => s,
        Err(r) => return r,
    };
    let reason = match args.get(1) {
        Some(LuaValue::String(s)) => s.to_string_lossy(),
        _ => String::new(),
    };
    let to = match resolve(&dest) {
        Ok(p) => p,
        Err(e) => return nil_error(lua, e),
    };
    match with_core(|c| c.handle.cancel(&to, &c.pid, &reason)) {
        Ok(Ok(())) => Ok(ret1(LuaValue::Boolean(true))),
        Ok(Err(e)) => nil_error(lua, e),
        Err(e) => yields::core_error(lua, e),
    }
}

fn terminate(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let dest = match str_arg(lua, &args, 0, "terminate") {
        Ok(s) => s,
        Err(r) => return r,
    };
    let to = match resolve(&dest) {
        Ok(p) => p,
        Err(e) => return nil_error(lua, e),
    };
    match with_core(|c| c.handle.terminate(&to)) {
        Ok(Ok(())) => Ok(ret1(LuaValue::Boolean(true))),
        Ok(Err(e)) => nil_error(lua, e),
        Err(e) => yields::core_error(lua, e),
    }
}

fn subscribe(lua: &Lua, topic: &str, cap: usize, mode: SubMode) -> mlua::Result<MultiValue> {
    // SAFETY: a callback runs on its process's state, and `with_core` gives that process's
    // core (the core current on this thread is the one stepping `lua`).
    match with_core(|c| unsafe { mailbox::subscribe(lua, c, topic, cap, mode) }) {
        Ok(Ok(ch)) => Ok(ret1(LuaValue::UserData(ch))),
        Ok(Err(e)) => Err(e),
        Err(e) => yields::core_error(lua, e),
    }
}

fn listen(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let topic = match str_arg(lua, &args, 0, "listen") {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(msg) = mailbox::listen_topic_error(&topic) {
        return nil_err(lua, Kind::INVALID, msg);
    }
    let messages = match args.get(1) {
        Some(LuaValue::Table(o)) => {
            matches!(o.raw_get::<LuaValue>("message")?, LuaValue::Boolean(true))
        }
        _ => false,
    };
    let mode = if messages {
        SubMode::Messages
    } else {
        SubMode::Raw
    };
    subscribe(lua, &topic, 1, mode)
}

fn unlisten(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let ch = match args.front() {
        Some(LuaValue::UserData(ud)) => ud.clone(),
        _ => {
            return Ok(ret2(
                LuaValue::Boolean(false),
                error_value(lua, channel_not_found())?,
            ));
        }
    };
    match with_core(|c| mailbox::unsubscribe(lua, c, &ch)) {
        Ok(Ok(true)) => Ok(ret1(LuaValue::Boolean(true))),
        Ok(Ok(false)) => Ok(ret2(
            LuaValue::Boolean(false),
            error_value(lua, channel_not_found())?,
        )),
        Ok(Err(e)) => Err(e),
        Err(e) => yields::core_error(lua, e),
    }
}

#[cold]
fn channel_not_found() -> Error {
    Error::new(Kind::NOT_FOUND, "channel not found").wrap("unsubscribe")
}

fn set_options(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let Some(LuaValue::Table(t)) = args.into_iter().next() else {
        return Ok(ret2(
            LuaValue::Boolean(false),
            error_value(lua, Error::invalid("options parameter must be a table"))?,
        ));
    };
    let mut first_err: Option<Error> = None;
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair?;
        let key = match &k {
            LuaValue::String(s) => s.to_string_lossy(),
            other => other.type_name().to_string(),
        };
        match key.as_str() {
            "trap_links" => match v {
                LuaValue::Boolean(b) => {
                    let _ = with_core(|c| c.trap_links = b);
                }
                _ => {
                    first_err.get_or_insert(Error::invalid("trap_links must be a boolean"));
                }
            },
            other => {
                first_err.get_or_insert(Error::invalid(format!("option {other} is not supported")));
            }
        }
    }
    match first_err {
        None => Ok(ret2(LuaValue::Boolean(true), LuaValue::Nil)),
        Some(e) => Ok(ret2(LuaValue::Boolean(false), error_value(lua, e)?)),
    }
}
