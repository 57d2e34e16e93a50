//! `errors`: the structured error object model (spec `lua-api.md` §3.5) and the helpers that
//! move errors between Lua and [`wippy_rt::Error`] (§3.2 boundary normalisation).
//!
//! An error object is a userdata [`LuaError`]: an `Arc<wippy_rt::Error>` (kind, message, wrap
//! context, tri-state retryable, details) plus the Lua call stack captured where it was
//! created (and, for wrapped errors, the stacks of the inner levels). Semantics:
//! - `tostring(e)`, `e .. s`, `s .. e`, `e1 .. e2` and `e:message()` use the **message only**;
//!   the wrap context is visible only in `e:stack()` and in the Go-side string
//!   (`"<ctx>: <message>"`, [`wippy_rt::Error`]'s `Display`) used by logs, JSON and the
//!   terminal host.
//! - `errors.wrap(p, ctx)` creates an error whose message is `p`'s Go-side string and whose
//!   context is `ctx`; kind, retryable and details are copied from `p`.
//! - `:kind()`/`:retryable()` are getters that ignore arguments (the builder style in some
//!   upstream docs sets nothing there either).
//!
//! Raised errors: `error(e)` raises the object itself and `pcall` returns it intact. When a
//! failure leaves a process or function it is normalised ([`normalize_boundary`]): kind `""`
//! becomes `Internal`, the wrap context is dropped (message only), retryable and details are
//! kept; a returned plain string becomes `Internal`, non-retryable.

use std::sync::Arc;

use mlua::{AnyUserData, Lua, MetaMethod, MultiValue, Table, UserData, UserDataMethods, Value};
use wippy_rt::{Error, Kind};

use crate::lua::convert;
use crate::lua::vm::raise;

/// Maximum number of Lua frames captured by `errors.new`/`errors.wrap`.
const MAX_FRAMES: usize = 32;

/// One captured Lua stack frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Stack level (1 = where the error was created).
    pub level: usize,
    /// Chunk name (`short_src`).
    pub source: String,
    /// Current line (-1 when unknown, e.g. C functions).
    pub line: i64,
    /// Function name when known.
    pub name: String,
    /// `"Lua"`, `"C"` or `"main"`.
    pub what: &'static str,
}

/// The frames of one wrap level (innermost level last in the chain).
#[derive(Debug)]
pub struct Trace {
    /// Thread identity string.
    pub thread: String,
    /// Frames captured at this level.
    pub frames: Vec<Frame>,
    /// The wrap context of this level (None for the original error).
    pub context: Option<String>,
    /// The trace of the wrapped (inner) error.
    pub parent: Option<Arc<Trace>>,
}

/// The Lua error object (userdata).
#[derive(Clone, Debug)]
pub struct LuaError {
    /// The structured error.
    pub err: Arc<Error>,
    /// Where it was created, when created from Lua.
    pub trace: Option<Arc<Trace>>,
}

impl LuaError {
    /// An error object for `err` with no Lua stack.
    pub fn new(err: Error) -> LuaError {
        LuaError {
            err: Arc::new(err),
            trace: None,
        }
    }

    /// The `:stack()` text: each wrap level's context line followed by its frames.
    pub fn stack_text(&self) -> String {
        let mut out = String::new();
        let mut level = self.trace.clone();
        if level.is_none()
            && let Some(s) = self.err.stack()
        {
            return s.to_string();
        }
        while let Some(t) = level {
            match &t.context {
                Some(c) => out.push_str(&format!("{c}\n")),
                None => out.push_str(&format!("{}\n", self.err.message())),
            }
            for f in &t.frames {
                let name = if f.name.is_empty() { "?" } else { &f.name };
                if f.line >= 0 {
                    out.push_str(&format!(
                        "\t{}:{}: in {} {}\n",
                        f.source, f.line, f.what, name
                    ));
                } else {
                    out.push_str(&format!("\t{}: in {} {}\n", f.source, f.what, name));
                }
            }
            level = t.parent.clone();
        }
        out
    }

    /// The structured error with the stack text attached (what crosses a boundary).
    pub fn to_rt(&self) -> Arc<Error> {
        if self.trace.is_some() && self.err.stack().is_none() {
            Arc::new((*self.err).clone().with_stack(self.stack_text()))
        } else {
            self.err.clone()
        }
    }
}

fn capture(lua: &Lua, context: Option<String>, parent: Option<Arc<Trace>>) -> Arc<Trace> {
    let mut frames = Vec::new();
    // Level 1 is the Rust function (errors.new itself); Lua frames start at 2.
    for level in 2..(2 + MAX_FRAMES) {
        let f = lua.inspect_stack(level, |d| {
            let src = d.source();
            Frame {
                level: level - 1,
                source: src.short_src.map(|s| s.into_owned()).unwrap_or_default(),
                line: d.current_line().map(|l| l as i64).unwrap_or(-1),
                name: d.names().name.map(|s| s.into_owned()).unwrap_or_default(),
                what: src.what,
            }
        });
        match f {
            Some(f) => frames.push(f),
            None => break,
        }
    }
    let thread = format!("thread: {:p}", lua.current_thread().to_pointer());
    Arc::new(Trace {
        thread,
        frames,
        context,
        parent,
    })
}

impl UserData for LuaError {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("kind", |_, e, _: MultiValue| {
            Ok(e.err.kind().as_str().to_string())
        });
        m.add_method("message", |_, e, _: MultiValue| {
            Ok(e.err.message().to_string())
        });
        m.add_method("retryable", |_, e, _: MultiValue| Ok(e.err.retryable()));
        m.add_method("details", |lua, e, _: MultiValue| {
            details_table(lua, &e.err)
        });
        m.add_method("stack", |_, e, _: MultiValue| Ok(e.stack_text()));
        m.add_meta_method(MetaMethod::ToString, |_, e, ()| {
            Ok(e.err.message().to_string())
        });
        m.add_meta_function(MetaMethod::Concat, |lua, (a, b): (Value, Value)| {
            let mut s = concat_part(lua, &a)?;
            s.extend_from_slice(&concat_part(lua, &b)?);
            lua.create_string(&s)
        });
    }
}

fn concat_part(lua: &Lua, v: &Value) -> mlua::Result<Vec<u8>> {
    if let Some(e) = as_error(v) {
        return Ok(e.err.message().as_bytes().to_vec());
    }
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Integer(_) | Value::Number(_) => Ok(lua
            .coerce_string(v.clone())?
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default()),
        other => Err(mlua::Error::RuntimeError(format!(
            "attempt to concatenate a {} value",
            other.type_name()
        ))),
    }
}

fn details_table(lua: &Lua, e: &Error) -> mlua::Result<Value> {
    if e.details().is_empty() {
        return Ok(Value::Nil);
    }
    let t = lua.create_table_with_capacity(0, e.details().len())?;
    for (k, v) in e.details() {
        t.raw_set(k.as_str(), convert::to_lua(lua, v)?)?;
    }
    Ok(Value::Table(t))
}

/// The error object inside `v`, if `v` is one.
pub fn as_error(v: &Value) -> Option<LuaError> {
    match v {
        Value::UserData(ud) => ud.borrow::<LuaError>().ok().map(|e| e.clone()),
        _ => None,
    }
}

/// True if `ud` is an error object.
pub fn is_error_userdata(ud: &AnyUserData) -> bool {
    ud.is::<LuaError>()
}

/// A Lua error object for `err` (no Lua stack).
pub fn error_value(lua: &Lua, err: Error) -> mlua::Result<Value> {
    Ok(Value::UserData(lua.create_userdata(LuaError::new(err))?))
}

/// A Lua error object sharing `err`.
pub fn error_value_arc(lua: &Lua, err: Arc<Error>) -> mlua::Result<Value> {
    Ok(Value::UserData(
        lua.create_userdata(LuaError { err, trace: None })?,
    ))
}

/// `nil, err` — the usual failure return of module functions.
pub fn nil_err(lua: &Lua, kind: Kind, msg: impl Into<String>) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        Value::Nil,
        error_value(lua, Error::new(kind, msg))?,
    ]))
}

/// `nil, err` for an existing error.
pub fn nil_error(lua: &Lua, err: Error) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        Value::Nil,
        error_value(lua, err)?,
    ]))
}

/// The §3.2 boundary normalisation of an error leaving a process or function VM.
pub fn normalize_boundary(err: &Error) -> Error {
    let kind = if err.kind().is_unknown() {
        Kind::INTERNAL
    } else {
        err.kind().clone()
    };
    let mut out = Error::new(kind, err.message())
        .with_retryable(err.retryable())
        .with_details(err.details().to_vec());
    if let Some(s) = err.stack() {
        out = out.with_stack(s);
    }
    out
}

/// The structured error of a *raised* Lua error value (what `pcall` returned, or the value
/// [`crate::lua::vm::protect::protected`] reports), **not** yet normalised: error objects keep
/// everything; strings become kind `""` with that message; mlua errors are unwrapped; other
/// values use their `tostring`.
pub fn value_to_rt(lua: &Lua, v: &Value) -> Error {
    if let Some(e) = as_error(v) {
        return (*e.to_rt()).clone();
    }
    match v {
        Value::String(s) => Error::new(Kind::UNKNOWN, s.to_string_lossy()),
        Value::Error(e) => mlua_error_to_rt(e),
        Value::Nil => Error::new(Kind::UNKNOWN, "nil"),
        other => {
            let s = lua
                .globals()
                .get::<mlua::Function>("tostring")
                .and_then(|f| f.call::<String>(other.clone()))
                .unwrap_or_else(|_| other.type_name().to_string());
            Error::new(Kind::UNKNOWN, s)
        }
    }
}

/// The structured error of an `mlua::Error` (not normalised): callback wrappers are peeled,
/// an `ExternalError` holding a `wippy_rt::Error` is returned as is, memory errors become
/// `Internal` "not enough memory", syntax errors `Invalid`, anything else kind `""` with its
/// message.
pub fn mlua_error_to_rt(e: &mlua::Error) -> Error {
    match e {
        mlua::Error::CallbackError { cause, .. } => mlua_error_to_rt(cause),
        mlua::Error::WithContext { cause, context } => {
            mlua_error_to_rt(cause).wrap(context.clone())
        }
        mlua::Error::RuntimeError(m) => Error::new(Kind::UNKNOWN, m.clone()),
        mlua::Error::MemoryError(m) => Error::internal(format!("not enough memory: {m}")),
        mlua::Error::SyntaxError { message, .. } => Error::invalid(message.clone()),
        mlua::Error::ExternalError(x) => match x.downcast_ref::<Error>() {
            Some(err) => err.clone(),
            None => Error::new(Kind::UNKNOWN, x.to_string()),
        },
        other => Error::new(Kind::UNKNOWN, other.to_string()),
    }
}

/// §3.2: the runtime error for a Lua error that made a call fail (raised, or surfaced by mlua),
/// normalised for the boundary.
pub fn lua_error_to_rt(e: &mlua::Error) -> Error {
    normalize_boundary(&mlua_error_to_rt(e))
}

/// §3.2: the runtime error for a raised value (see [`value_to_rt`]), normalised.
pub fn raised_value_to_rt(lua: &Lua, v: &Value) -> Error {
    normalize_boundary(&value_to_rt(lua, v))
}

/// §3.2: the failure carried by a function's **second return value**, if any: a string becomes
/// an `Internal`, non-retryable error; an error object is normalised; other values (nil
/// included) mean success.
pub fn returned_error_to_rt(v: &Value) -> Option<Error> {
    if let Some(e) = as_error(v) {
        return Some(normalize_boundary(&e.to_rt()));
    }
    match v {
        Value::String(s) => Some(Error::internal(s.to_string_lossy()).with_retryable(Some(false))),
        _ => None,
    }
}

fn arg_type(v: Option<&Value>) -> &'static str {
    v.map(|v| v.type_name()).unwrap_or("no value")
}

fn details_from_table(t: &Table) -> mlua::Result<Vec<(String, wippy_rt::Value)>> {
    let mut out = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        if let Value::String(k) = k {
            let v = convert::from_lua(&v).unwrap_or(wippy_rt::Value::Nil);
            out.push((k.to_string_lossy(), v));
        }
    }
    Ok(out)
}

fn new_error(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let a = args.front();
    let err = match a {
        Some(Value::String(s)) => Error::new(Kind::UNKNOWN, s.to_string_lossy()),
        Some(Value::Table(t)) => {
            let msg = match t.raw_get::<Value>("message")? {
                Value::Nil => {
                    return raise::raise_msg(
                        lua,
                        "bad argument #1 to 'new' (message field is required)",
                    );
                }
                Value::String(s) => s.to_string_lossy(),
                _ => {
                    return raise::raise_msg(
                        lua,
                        "bad argument #1 to 'new' (message must be a string)",
                    );
                }
            };
            let mut e = Error::new(Kind::UNKNOWN, msg);
            if let Value::String(k) = t.raw_get::<Value>("kind")? {
                e = e.with_kind(Kind::new(k.to_string_lossy()));
            }
            if let Value::Boolean(r) = t.raw_get::<Value>("retryable")? {
                e = e.with_retryable(Some(r));
            }
            if let Value::Table(d) = t.raw_get::<Value>("details")? {
                e = e.with_details(details_from_table(&d)?);
            }
            e
        }
        other => {
            let got = arg_type(other);
            return raise::raise_msg(
                lua,
                format!("bad argument #1 to 'new' (string or table expected, got {got})"),
            );
        }
    };
    let trace = capture(lua, None, None);
    let ud = lua.create_userdata(LuaError {
        err: Arc::new(err),
        trace: Some(trace),
    })?;
    Ok(MultiValue::from_vec(vec![Value::UserData(ud)]))
}

fn wrap_error(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let parent = match args.front() {
        Some(v @ Value::UserData(_)) if as_error(v).is_some() => as_error(v).expect("checked"),
        Some(Value::String(s)) => LuaError::new(Error::new(Kind::UNKNOWN, s.to_string_lossy())),
        other => {
            let got = arg_type(other);
            return raise::raise_msg(
                lua,
                format!("bad argument #1 to 'wrap' (error or string expected, got {got})"),
            );
        }
    };
    let ctx = match args.get(1) {
        Some(Value::String(s)) => s.to_string_lossy(),
        Some(v) if as_error(v).is_some() => as_error(v).expect("checked").err.message().to_string(),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => lua
            .coerce_string(v.clone())?
            .map(|s| s.to_string_lossy())
            .unwrap_or_default(),
        other => {
            let got = arg_type(other);
            return raise::raise_msg(
                lua,
                format!("bad argument #2 to 'wrap' (string or error expected, got {got})"),
            );
        }
    };
    let wrapped = parent.err.wrap(ctx.clone());
    let trace = capture(lua, Some(ctx), parent.trace.clone());
    let ud = lua.create_userdata(LuaError {
        err: Arc::new(wrapped),
        trace: Some(trace),
    })?;
    Ok(MultiValue::from_vec(vec![Value::UserData(ud)]))
}

fn is_kind(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let kind = match args.get(1) {
        Some(Value::String(s)) => s.to_string_lossy(),
        other => {
            let got = arg_type(other);
            return raise::raise_msg(
                lua,
                format!("bad argument #2 to 'is' (string expected, got {got})"),
            );
        }
    };
    let r = args
        .front()
        .and_then(as_error)
        .is_some_and(|e| e.err.kind().as_str() == kind);
    Ok(MultiValue::from_vec(vec![Value::Boolean(r)]))
}

fn call_stack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let Some(e) = args.front().and_then(as_error) else {
        return Ok(MultiValue::from_vec(vec![Value::Nil]));
    };
    let Some(trace) = &e.trace else {
        return Ok(MultiValue::from_vec(vec![Value::Nil]));
    };
    let frames = lua.create_table_with_capacity(trace.frames.len(), 0)?;
    for (i, f) in trace.frames.iter().enumerate() {
        let t = lua.create_table_with_capacity(0, 5)?;
        t.raw_set("level", f.level as i64)?;
        t.raw_set("source", f.source.as_str())?;
        t.raw_set("line", f.line)?;
        t.raw_set("name", f.name.as_str())?;
        t.raw_set("type", f.what)?;
        frames.raw_set(i + 1, t)?;
    }
    let out = lua.create_table_with_capacity(0, 2)?;
    out.raw_set("thread", trace.thread.as_str())?;
    out.raw_set("frames", frames)?;
    Ok(MultiValue::from_vec(vec![Value::Table(out)]))
}

/// The `errors` module table.
pub fn build(lua: &Lua) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(0, 16)?;
    for (name, kind) in [
        ("UNKNOWN", Kind::UNKNOWN),
        ("NOT_FOUND", Kind::NOT_FOUND),
        ("ALREADY_EXISTS", Kind::ALREADY_EXISTS),
        ("INVALID", Kind::INVALID),
        ("PERMISSION_DENIED", Kind::PERMISSION_DENIED),
        ("UNAVAILABLE", Kind::UNAVAILABLE),
        ("INTERNAL", Kind::INTERNAL),
        ("CANCELED", Kind::CANCELED),
        ("CONFLICT", Kind::CONFLICT),
        ("TIMEOUT", Kind::TIMEOUT),
        ("RATE_LIMITED", Kind::RATE_LIMITED),
    ] {
        t.raw_set(name, kind.as_str())?;
    }
    t.raw_set("new", raise::function(lua, new_error)?)?;
    t.raw_set("wrap", raise::function(lua, wrap_error)?)?;
    t.raw_set("is", raise::function(lua, is_kind)?)?;
    t.raw_set("call_stack", lua.create_function(call_stack)?)?;
    Ok(Value::Table(t))
}
