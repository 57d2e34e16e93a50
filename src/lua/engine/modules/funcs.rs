//! `funcs` (spec `lua-api.md` §3.8.3): calling `function.lua` entries (and any other registered
//! function) from Lua.
//!
//! * `funcs.call(id, ...)` suspends the task until the call ends: `result, nil` or `nil, err`
//!   (the callee's error after boundary normalisation, kind kept; unknown target `NotFound`
//!   "no handler registered for target"). Arguments are deep copies; the callee inherits the
//!   caller's context values. A pooled callee that returns without blocking runs inside the
//!   caller's step and the task resumes in it (`pool.rs`, "Inline first step").
//! * `funcs.async(id, ...)` starts the call and returns a Future at once. The result arrives as
//!   a message on a private topic (one-value channel, then closed); the Future records it when
//!   it is delivered. `:response()`/`:channel()` → that channel (a Payload on success, the error
//!   object on failure); `:is_complete()`, `:is_canceled()`; `:result()` → `nil, nil` while
//!   pending, `Payload, nil`, `nil, err`, or `nil, err(Canceled)` after `:cancel()`;
//!   `:error()` → `err, true` (kind forced to Internal, context "async call failed") or
//!   `nil, false`; `:cancel()` → `true` (closes the channel; the call is not interrupted).
//! * `funcs.new()` → an immutable Executor: `:with_context(tbl)` (merged over inherited
//!   values), `:with_options(tbl)`, `:with_actor(a)` / `:with_scope(s)` (accepted and carried;
//!   there is no security model yet), `:call(id, ...)`, `:async(id, ...)`.
//!
//! Id validation (`Invalid`): "function ID required", "namespace required in function ID",
//! "name required in function ID"; a non-string id raises. When the calling process ends first,
//! its outstanding callees are terminated.

use mlua::{
    AnyUserData, Lua, MetaMethod, MultiValue, Table, UserData, UserDataMethods, Value as LuaValue,
};
use wippy_rt::{Error, Kind, Package, Pid, Value};

use super::super::core::{Op, SubMode, with_core};
use super::super::mailbox;
use super::super::pool::{self, Reply};
use super::super::rawfn;
use super::super::yields::{self, ret1, ret2};
use super::process::payloads;
use crate::lua::convert;
use crate::lua::modules::errors::{error_value, nil_error};
use crate::lua::modules::payload;
use crate::lua::vm::raise;
use crate::system::CallRequest;

/// Validate a function id.
fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::invalid("function ID required"));
    }
    match id.split_once(':') {
        None => Err(Error::invalid("namespace required in function ID")),
        Some(("", _)) => Err(Error::invalid("namespace required in function ID")),
        Some((_, "")) => Err(Error::invalid("name required in function ID")),
        Some(_) => Ok(()),
    }
}

/// Call settings carried by an Executor.
#[derive(Clone, Default)]
struct ExecCfg {
    context: Vec<(String, Value)>,
    options: Vec<(String, Value)>,
}

/// Build a call request from `args[offset..]` = `id, ...`, or the Lua results to return.
fn request(
    lua: &Lua,
    args: &MultiValue,
    offset: usize,
    op: &str,
    cfg: &ExecCfg,
) -> Result<CallRequest, mlua::Result<MultiValue>> {
    let id = match args.get(offset) {
        Some(LuaValue::String(s)) => s.to_string_lossy(),
        other => {
            let got = super::super::rawfn::arg_type(other);
            return Err(raise::raise_msg(
                lua,
                format!("bad argument #1 to '{op}' (string expected, got {got})"),
            ));
        }
    };
    if let Err(e) = check_id(&id) {
        return Err(nil_error(lua, e));
    }
    let args_v = payloads(args, offset + 1).map_err(|e| nil_error(lua, e))?;
    let (caller, mut context) = with_core(|c| (c.pid.clone(), (*c.context).clone()))
        .map_err(|e| yields::core_error(lua, e))?;
    for (k, v) in &cfg.context {
        match context.iter_mut().find(|(k2, _)| k2 == k) {
            Some(slot) => slot.1 = v.clone(),
            None => context.push((k.clone(), v.clone())),
        }
    }
    Ok(CallRequest {
        target: id,
        args: args_v,
        caller: Some(caller),
        context,
        options: cfg.options.clone(),
    })
}

fn call_with(
    lua: &Lua,
    args: MultiValue,
    offset: usize,
    cfg: &ExecCfg,
) -> mlua::Result<MultiValue> {
    match request(lua, &args, offset, "call", cfg) {
        Ok(req) => yields::suspend(lua, Op::Call(Box::new(req))),
        Err(r) => r,
    }
}

/// The Rust side of a Future.
pub(crate) struct Future {
    chan: AnyUserData,
    topic: String,
    result: Option<Result<Value, std::sync::Arc<Error>>>,
    canceled: bool,
}

impl UserData for Future {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("response", |_, f, ()| Ok(f.chan.clone()));
        m.add_method("channel", |_, f, ()| Ok(f.chan.clone()));
        m.add_method("is_complete", |_, f, ()| Ok(f.result.is_some()));
        m.add_method("is_canceled", |_, f, ()| Ok(f.canceled));
        m.add_method("result", |lua, f, ()| -> mlua::Result<MultiValue> {
            if f.canceled {
                return Ok(ret2(
                    LuaValue::Nil,
                    error_value(lua, Error::new(Kind::CANCELED, "canceled"))?,
                ));
            }
            match &f.result {
                None => Ok(ret2(LuaValue::Nil, LuaValue::Nil)),
                Some(Ok(v)) => Ok(ret2(
                    payload::payload_value(lua, payload::Payload::from_value(v.clone()))?,
                    LuaValue::Nil,
                )),
                Some(Err(e)) => Ok(ret2(
                    LuaValue::Nil,
                    crate::lua::modules::errors::error_value_arc(lua, e.clone())?,
                )),
            }
        });
        m.add_method("error", |lua, f, ()| -> mlua::Result<MultiValue> {
            match &f.result {
                Some(Err(e)) => {
                    let err = Error::new(Kind::INTERNAL, e.message())
                        .with_retryable(e.retryable())
                        .with_details(e.details().to_vec())
                        .with_context("async call failed");
                    Ok(ret2(error_value(lua, err)?, LuaValue::Boolean(true)))
                }
                _ => Ok(ret2(LuaValue::Nil, LuaValue::Boolean(false))),
            }
        });
        m.add_method_mut("cancel", |lua, f, ()| {
            f.canceled = true;
            let chan = f.chan.clone();
            let r = with_core(|c| mailbox::unsubscribe(lua, c, &chan));
            match r {
                Ok(Ok(_)) => Ok(true),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(mlua::Error::runtime(e.message())),
            }
        });
        m.add_meta_method(MetaMethod::ToString, |_, f, ()| {
            Ok(format!("future{{topic={}}}", f.topic))
        });
    }
}

/// Record a future's result message and return the value its channel receives.
pub(crate) fn future_delivered(
    lua: &Lua,
    fut: &AnyUserData,
    payloads: &[Value],
) -> mlua::Result<LuaValue> {
    let ok = matches!(payloads.first(), Some(Value::Bool(true)));
    let v = payloads.get(1).cloned().unwrap_or(Value::Nil);
    let result = if ok {
        Ok(v)
    } else {
        match v {
            Value::Error(e) => Err(e),
            other => Err(std::sync::Arc::new(Error::internal(format!(
                "async call failed: {}",
                other.type_name()
            )))),
        }
    };
    let value = match &result {
        Ok(v) => payload::payload_value(lua, payload::Payload::from_value(v.clone()))?,
        Err(e) => crate::lua::modules::errors::error_value_arc(lua, e.clone())?,
    };
    fut.borrow_mut_scoped::<Future, _>(|f| f.result = Some(result))?;
    Ok(value)
}

fn async_with(
    lua: &Lua,
    args: MultiValue,
    offset: usize,
    cfg: &ExecCfg,
) -> mlua::Result<MultiValue> {
    let req = match request(lua, &args, offset, "async", cfg) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let r = with_core(
        |c| -> mlua::Result<(
            AnyUserData,
            Pid,
            wippy_rt::Handle,
            String,
            std::sync::Arc<super::super::shared::Engine>,
        )> {
            let topic = c.private_topic("future");
            let chan = super::super::channel::new_channel(lua, 1)?;
            let fut = lua.create_userdata(Future {
                chan: chan.clone(),
                topic: topic.clone(),
                result: None,
                canceled: false,
            })?;
            super::super::channel::set_topic(&chan, &topic);
            c.subs.insert(
                topic.clone(),
                super::super::core::Sub {
                    raw: super::super::channel::raw_ref(&chan),
                    chan,
                    mode: SubMode::Future(fut.clone()),
                },
            );
            Ok((
                fut,
                c.pid.clone(),
                c.handle.clone(),
                topic,
                c.engine.clone(),
            ))
        },
    );
    let (fut, pid, handle, topic, engine) = match r {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return Err(e),
        Err(e) => return yields::core_error(lua, e),
    };
    let reply = Reply::Boxed(Box::new(move |r: Result<Value, Error>| {
        let payloads = match r {
            Ok(v) => vec![Value::Bool(true), v],
            Err(e) => vec![Value::Bool(false), Value::Error(std::sync::Arc::new(e))],
        };
        let _ = handle.send(Package::new(Pid::zero(), pid, topic, payloads));
    }));
    // Outside `with_core`: the call may start the callee on this thread.
    if let Some(callee) = pool::call(&engine, req, reply) {
        let _ = with_core(|c| {
            let tag = c.tag();
            c.callees.insert(tag, callee);
        });
    }
    Ok(ret1(LuaValue::UserData(fut)))
}

/// An immutable call configuration (`funcs.new()`).
#[derive(Clone, Default)]
struct Executor {
    cfg: ExecCfg,
}

fn table_pairs(t: &Table) -> mlua::Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair?;
        if let LuaValue::String(k) = k {
            let v =
                convert::from_lua(&v).map_err(|e| mlua::Error::runtime(e.message().to_string()))?;
            out.push((k.to_string_lossy(), v));
        }
    }
    Ok(out)
}

fn merge(into: &mut Vec<(String, Value)>, add: Vec<(String, Value)>) {
    for (k, v) in add {
        match into.iter_mut().find(|(k2, _)| *k2 == k) {
            Some(slot) => slot.1 = v,
            None => into.push((k, v)),
        }
    }
}

impl UserData for Executor {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("with_context", |_, e, t: Table| {
            let mut n = e.clone();
            merge(&mut n.cfg.context, table_pairs(&t)?);
            Ok(n)
        });
        m.add_method("with_options", |_, e, t: Table| {
            let mut n = e.clone();
            merge(&mut n.cfg.options, table_pairs(&t)?);
            Ok(n)
        });
        m.add_method("with_actor", |_, e, a: LuaValue| {
            if a.is_nil() {
                return Err(mlua::Error::runtime("actor is required"));
            }
            Ok(e.clone())
        });
        m.add_method("with_scope", |_, e, s: LuaValue| {
            if s.is_nil() {
                return Err(mlua::Error::runtime("scope is required"));
            }
            Ok(e.clone())
        });
        m.add_meta_method(MetaMethod::ToString, |_, _, ()| Ok("funcs.Executor"));
    }

    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| {
            let t = lua.create_table_with_capacity(0, 2)?;
            rawfn::set(lua, &t, "call", crate::lua_fn!(executor_call))?;
            rawfn::set(lua, &t, "async", crate::lua_fn!(executor_async))?;
            Ok(t)
        });
    }
}

fn executor_call(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let cfg = executor_cfg(&args)?;
    call_with(lua, args, 1, &cfg)
}

fn executor_async(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let cfg = executor_cfg(&args)?;
    async_with(lua, args, 1, &cfg)
}

fn call(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    call_with(lua, args, 0, &ExecCfg::default())
}

fn async_call(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    async_with(lua, args, 0, &ExecCfg::default())
}

fn new_executor(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    Ok(yields::ret1(LuaValue::UserData(
        lua.create_userdata(Executor::default())?,
    )))
}

fn executor_cfg(args: &MultiValue) -> mlua::Result<ExecCfg> {
    match args.front() {
        Some(LuaValue::UserData(ud)) => Ok(ud.borrow::<Executor>()?.cfg.clone()),
        _ => Err(mlua::Error::runtime("executor expected (use ':' to call)")),
    }
}

/// The `funcs` table.
pub(crate) fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 3)?;
    rawfn::set(lua, &t, "call", crate::lua_fn!(call))?;
    rawfn::set(lua, &t, "async", crate::lua_fn!(async_call))?;
    rawfn::set(lua, &t, "new", crate::lua_fn!(new_executor))?;
    Ok(LuaValue::Table(t))
}
