//! `logger` (spec `lua-api.md` §3.8.9): structured logging through the `log` facade.
//!
//! The module value **is** a Logger object. `logger:debug|info|warn|error(msg[, fields])`,
//! `logger:with(fields)` → child Logger carrying extra fields, `logger:named(name)` → child
//! Logger with a dotted name (`""` raises). Dot-calls (`logger.info("x")`) are accepted too
//! (upstream rejects them; being lenient breaks nothing).
//!
//! `msg` must be a string (numbers are converted, anything else raises). Fields: string keys
//! only (others are skipped); strings, integers, floats and booleans keep their type, error
//! objects log their Go-side string, tables are logged as JSON text, other values by type
//! name. Every record gets `pid` and `location` (`<entry id>:<line>`) fields, plus `logger`
//! for named loggers. Only in `logger:error` is an `error` field special: it is emitted as the
//! record's `error` field and **removed from the caller's table** (upstream mutates it too).
//!
//! Records go to target `"lua"` (so `RUST_LOG=lua=debug` style filters work); the level is
//! checked before any field is converted.

use std::sync::Arc;

use log::kv::{Key, Source, VisitSource};
use mlua::{AnyUserData, Lua, MultiValue, Table, UserData, UserDataMethods, Value};

use super::errors;
use crate::lua::vm::data;

/// One field value.
#[derive(Clone, Debug)]
pub enum Field {
    /// Text.
    Str(String),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Boolean.
    Bool(bool),
}

impl Field {
    fn to_kv(&self) -> log::kv::Value<'_> {
        match self {
            Field::Str(s) => log::kv::Value::from(s.as_str()),
            Field::Int(i) => log::kv::Value::from(*i),
            Field::Float(f) => log::kv::Value::from(*f),
            Field::Bool(b) => log::kv::Value::from(*b),
        }
    }
}

struct Kvs<'a>(&'a [(String, Field)]);

impl Source for Kvs<'_> {
    fn visit<'kvs>(&'kvs self, v: &mut dyn VisitSource<'kvs>) -> Result<(), log::kv::Error> {
        for (k, f) in self.0 {
            v.visit_pair(Key::from_str(k), f.to_kv())?;
        }
        Ok(())
    }
}

/// A Logger object: a name and inherited fields.
#[derive(Clone, Debug, Default)]
pub struct Logger {
    name: Option<Arc<str>>,
    fields: Arc<Vec<(String, Field)>>,
}

fn field_of(v: &Value) -> Option<Field> {
    Some(match v {
        Value::String(s) => Field::Str(s.to_string_lossy()),
        Value::Integer(i) => Field::Int(*i),
        Value::Number(f) => Field::Float(*f),
        Value::Boolean(b) => Field::Bool(*b),
        Value::Nil => return None,
        Value::Table(_) => {
            Field::Str(super::json::encode(v).unwrap_or_else(|e| format!("<{}>", e.message())))
        }
        Value::UserData(_) => match errors::as_error(v) {
            Some(e) => Field::Str(e.err.to_string()),
            None => Field::Str(v.type_name().to_string()),
        },
        other => Field::Str(other.type_name().to_string()),
    })
}

fn collect_fields(
    t: &Table,
    out: &mut Vec<(String, Field)>,
    skip_error: bool,
) -> mlua::Result<Option<Value>> {
    let mut error_val = None;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Value::String(k) = k else { continue };
        let k = k.to_string_lossy();
        if skip_error && k == "error" {
            error_val = Some(v);
            continue;
        }
        if let Some(f) = field_of(&v) {
            out.retain(|(ok, _)| *ok != k);
            out.push((k, f));
        }
    }
    Ok(error_val)
}

impl Logger {
    fn emit(&self, lua: &Lua, level: log::Level, args: &[Value]) -> mlua::Result<MultiValue> {
        let msg = match args.first() {
            Some(Value::String(s)) => s.to_string_lossy(),
            Some(v @ (Value::Integer(_) | Value::Number(_))) => lua
                .coerce_string(v.clone())?
                .map(|s| s.to_string_lossy())
                .unwrap_or_default(),
            other => {
                let got = other.map(|v| v.type_name()).unwrap_or("no value");
                return Err(mlua::Error::RuntimeError(format!(
                    "bad argument #1 (string expected, got {got})"
                )));
            }
        };
        let table = match args.get(1) {
            Some(Value::Table(t)) => Some(t.clone()),
            _ => None,
        };
        // The error key is removed from the caller's table even when the level is disabled.
        let error_field = match (&table, level) {
            (Some(t), log::Level::Error) => match t.raw_get::<Value>("error")? {
                Value::Nil => None,
                v => {
                    t.raw_set("error", Value::Nil)?;
                    Some(match &v {
                        Value::String(s) => s.to_string_lossy(),
                        Value::Integer(_) | Value::Number(_) => lua
                            .coerce_string(v.clone())?
                            .map(|s| s.to_string_lossy())
                            .unwrap_or_default(),
                        // Upstream converts with string/number conversion only: an error object
                        // renders as an empty error there.
                        _ => String::new(),
                    })
                }
            },
            _ => None,
        };
        if !log::log_enabled!(target: "lua", level) {
            return Ok(MultiValue::new());
        }
        let mut fields: Vec<(String, Field)> = Vec::with_capacity(self.fields.len() + 4);
        let info = data::process_info(lua);
        fields.push((
            "pid".into(),
            Field::Str(info.pid.map(|p| p.to_string()).unwrap_or_default()),
        ));
        fields.push(("location".into(), Field::Str(data::location(lua, 1))));
        if let Some(n) = &self.name {
            fields.push(("logger".into(), Field::Str(n.to_string())));
        }
        fields.extend(self.fields.iter().cloned());
        if let Some(t) = &table {
            collect_fields(t, &mut fields, level == log::Level::Error)?;
        }
        if let Some(e) = error_field {
            fields.push(("error".into(), Field::Str(e)));
        }
        let kvs = Kvs(&fields);
        log::logger().log(
            &log::Record::builder()
                .level(level)
                .target("lua")
                .args(format_args!("{msg}"))
                .key_values(&kvs)
                .build(),
        );
        Ok(MultiValue::new())
    }
}

/// Split `(self, args...)` of a method or dot call.
fn self_and_args(args: MultiValue) -> (Option<Logger>, Vec<Value>) {
    let mut v: Vec<Value> = args.into_iter().collect();
    let me = match v.first() {
        Some(Value::UserData(ud)) => ud.borrow::<Logger>().ok().map(|l| l.clone()),
        _ => None,
    };
    if me.is_some() {
        v.remove(0);
    }
    (me, v)
}

fn level_fn(level: log::Level) -> impl Fn(&Lua, MultiValue) -> mlua::Result<MultiValue> {
    move |lua, args| {
        let (me, rest) = self_and_args(args);
        me.unwrap_or_default().emit(lua, level, &rest)
    }
}

impl UserData for Logger {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_function("debug", level_fn(log::Level::Debug));
        m.add_function("info", level_fn(log::Level::Info));
        m.add_function("warn", level_fn(log::Level::Warn));
        m.add_function("error", level_fn(log::Level::Error));
        m.add_function("with", |lua, args: MultiValue| {
            let (me, rest) = self_and_args(args);
            let me = me.unwrap_or_default();
            let mut fields = (*me.fields).clone();
            if let Some(Value::Table(t)) = rest.first() {
                collect_fields(t, &mut fields, false)?;
            }
            let child = Logger {
                name: me.name.clone(),
                fields: Arc::new(fields),
            };
            lua.create_userdata(child)
        });
        m.add_function(
            "named",
            |lua, args: MultiValue| -> mlua::Result<AnyUserData> {
                let (me, rest) = self_and_args(args);
                let me = me.unwrap_or_default();
                let name = match rest.first() {
                    Some(Value::String(s)) if !s.as_bytes().is_empty() => s.to_string_lossy(),
                    _ => {
                        return Err(mlua::Error::RuntimeError(
                            "logger name must be a non-empty string".into(),
                        ));
                    }
                };
                let full: Arc<str> = match &me.name {
                    Some(n) => format!("{n}.{name}").into(),
                    None => name.into(),
                };
                lua.create_userdata(Logger {
                    name: Some(full),
                    fields: me.fields.clone(),
                })
            },
        );
    }
}

/// The `logger` module value (a root Logger).
pub fn build(lua: &Lua) -> mlua::Result<Value> {
    Ok(Value::UserData(lua.create_userdata(Logger::default())?))
}
