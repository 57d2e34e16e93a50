//! `payload` global (spec `lua-api.md` §3.8.10): typed message payloads and transcoding.
//!
//! A [`Payload`] is data plus a format tag: either a live value ([`wippy_rt::Value`], format
//! `lua/any`, `golang/any` or `golang/error`) or encoded bytes (`json/plain`, `yaml/plain`,
//! `text/plain`, `application/octet-stream`, `application/msgpack`). `payload.new(v)` deep-copies
//! `v` (format `lua/any`, or `golang/error` for an error object). Methods: `:get_format()`,
//! `:data()` / `:unmarshal()` → the Lua value (decoding as needed) or `nil, err`,
//! `:transcode(format)` → a new Payload or `nil, err`; `tostring(p)` → `payload{format=<f>}`.
//!
//! The Lua objects are raw userdata (private `object` module): scalar payloads own no Rust
//! memory and need no finalizer. The engine builds Payloads for incoming messages with
//! [`payload_value`] / [`push_payload`]; values cross processes as `wippy_rt::Value`, so no
//! Lua object is shared.

use std::fmt::Write as _;

use mlua::{Lua, MultiValue, Value as LuaValue};
use wippy_rt::{Bytes, Error, Kind, Value};

use super::errors::{self, nil_error};
use super::json::{write_float, write_str};
use crate::lua::convert;

mod object;

pub use object::payload_value;
pub(crate) use object::{Slot, push_payload, push_plain_metatable, push_plain_slot};

/// `payload.format.JSON`.
pub const JSON: &str = "json/plain";
/// `payload.format.YAML`.
pub const YAML: &str = "yaml/plain";
/// `payload.format.STRING`.
pub const STRING: &str = "text/plain";
/// `payload.format.BYTES`.
pub const BYTES: &str = "application/octet-stream";
/// `payload.format.MSGPACK`.
pub const MSGPACK: &str = "application/msgpack";
/// `payload.format.LUA`.
pub const LUA: &str = "lua/any";
/// `payload.format.GOLANG`.
pub const GOLANG: &str = "golang/any";
/// `payload.format.ERROR`.
pub const ERROR: &str = "golang/error";

const FORMATS: [&str; 8] = [JSON, YAML, STRING, BYTES, MSGPACK, LUA, GOLANG, ERROR];

/// Payload contents.
#[derive(Clone, Debug)]
pub enum Data {
    /// A live value (`lua/any`, `golang/any`, `golang/error`).
    Value(Value),
    /// Encoded bytes (`json/plain`, `yaml/plain`, `text/plain`, octet-stream, msgpack).
    Encoded(Bytes),
}

/// A payload: format tag plus data.
#[derive(Clone, Debug)]
pub struct Payload {
    /// One of the `payload.format` strings.
    pub format: &'static str,
    /// The data.
    pub data: Data,
}

impl Payload {
    /// A `lua/any` (or `golang/error` for an error) payload holding `v`.
    pub fn from_value(v: Value) -> Payload {
        let format = if matches!(v, Value::Error(_)) {
            ERROR
        } else {
            LUA
        };
        Payload {
            format,
            data: Data::Value(v),
        }
    }

    /// The decoded value.
    pub fn value(&self) -> Result<Value, Error> {
        match &self.data {
            Data::Value(v) => Ok(v.clone()),
            Data::Encoded(b) => match self.format {
                JSON => serde_json::from_slice(b.as_bytes()).map_err(|e| {
                    Error::new(Kind::INTERNAL, e.to_string()).with_context("decode failed")
                }),
                YAML => serde_yaml::from_slice(b.as_bytes()).map_err(|e| {
                    Error::new(Kind::INTERNAL, e.to_string()).with_context("decode failed")
                }),
                MSGPACK => rmp_serde::from_slice(b.as_bytes()).map_err(|e| {
                    Error::new(Kind::INTERNAL, e.to_string()).with_context("decode failed")
                }),
                _ => Ok(Value::Str(b.clone())),
            },
        }
    }

    /// The payload in another format.
    pub fn transcode(&self, format: &str) -> Result<Payload, Error> {
        let Some(&target) = FORMATS.iter().find(|f| **f == format) else {
            return Err(Error::invalid(format!("unsupported format: {format}")));
        };
        if target == self.format {
            return Ok(self.clone());
        }
        let v = self.value()?;
        let encoded = |b: Vec<u8>| {
            Ok(Payload {
                format: target,
                data: Data::Encoded(Bytes::from(b)),
            })
        };
        match target {
            LUA | GOLANG => Ok(Payload {
                format: target,
                data: Data::Value(v),
            }),
            ERROR => match v {
                Value::Error(_) => Ok(Payload {
                    format: ERROR,
                    data: Data::Value(v),
                }),
                other => Err(Error::invalid(format!(
                    "cannot transcode {} to {ERROR}",
                    other.type_name()
                ))),
            },
            JSON => encoded(value_to_json(&v)?.into_bytes()),
            YAML => encoded(
                serde_yaml::to_string(&v)
                    .map_err(|e| {
                        Error::new(Kind::INTERNAL, e.to_string()).with_context("encode failed")
                    })?
                    .into_bytes(),
            ),
            MSGPACK => encoded(rmp_serde::to_vec(&v).map_err(|e| {
                Error::new(Kind::INTERNAL, e.to_string()).with_context("encode failed")
            })?),
            _ => match v {
                Value::Str(s) => Ok(Payload {
                    format: target,
                    data: Data::Encoded(s),
                }),
                Value::Int(i) => encoded(i.to_string().into_bytes()),
                Value::Float(_) | Value::Bool(_) | Value::Nil => {
                    encoded(value_to_json(&v)?.into_bytes())
                }
                Value::Error(e) => encoded(e.to_string().into_bytes()),
                other => encoded(value_to_json(&other)?.into_bytes()),
            },
        }
    }
}

/// JSON text of a [`Value`] with upstream's number rules (see the `json` module).
pub fn value_to_json(v: &Value) -> Result<String, Error> {
    let mut out = String::new();
    vjson(v, &mut out, 0)?;
    Ok(out)
}

fn vjson(v: &Value, out: &mut String, depth: usize) -> Result<(), Error> {
    if depth > super::json::MAX_DEPTH {
        return Err(Error::new(Kind::INTERNAL, "maximum nesting depth exceeded")
            .with_context("encode failed"));
    }
    match v {
        Value::Nil | Value::Opaque(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_float(out, *f),
        Value::Str(s) => write_str(out, s.as_bytes()),
        Value::Error(e) => write_str(out, e.to_string().as_bytes()),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                vjson(x, out, depth + 1)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            // Keys sorted, like `json.encode` (deterministic output).
            let mut entries: Vec<&(Value, Value)> = m.iter().collect();
            entries.sort_by_key(|e| key_text(&e.0));
            out.push('{');
            for (i, (k, x)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match k {
                    Value::Str(s) => write_str(out, s.as_bytes()),
                    Value::Int(n) => write_str(out, n.to_string().as_bytes()),
                    Value::Float(f) => {
                        let mut s = String::new();
                        write_float(&mut s, *f);
                        write_str(out, s.as_bytes());
                    }
                    other => {
                        return Err(Error::new(
                            Kind::INTERNAL,
                            format!("cannot encode {} key", other.type_name()),
                        )
                        .with_context("encode failed"));
                    }
                }
                out.push(':');
                vjson(x, out, depth + 1)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn key_text(k: &Value) -> Vec<u8> {
    match k {
        Value::Str(s) => s.as_bytes().to_vec(),
        Value::Int(n) => n.to_string().into_bytes(),
        Value::Float(f) => {
            let mut s = String::new();
            write_float(&mut s, *f);
            s.into_bytes()
        }
        _ => Vec::new(),
    }
}

/// The Payload inside a Lua value, if it is a payload object (a copy of its data).
pub fn payload_arg(v: &LuaValue) -> Option<Payload> {
    let LuaValue::UserData(ud) = v else {
        return None;
    };
    let lua = ud.weak_lua().try_upgrade()?;
    lua.exec_raw_lua(|raw| {
        // SAFETY: push the value on mlua's current stack, read it, pop it (same state).
        unsafe {
            let l = raw.state();
            if mlua::ffi::lua_checkstack(l, 2) == 0 {
                return None;
            }
            raw.push_value(v).ok()?;
            let p = object::payload_at(l, -1);
            mlua::ffi::lua_pop(l, 1);
            p
        }
    })
}

/// The `payload` table.
pub fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 2)?;
    let f = lua.create_table_with_capacity(0, 8)?;
    for (k, v) in [
        ("JSON", JSON),
        ("YAML", YAML),
        ("STRING", STRING),
        ("BYTES", BYTES),
        ("MSGPACK", MSGPACK),
        ("LUA", LUA),
        ("GOLANG", GOLANG),
        ("ERROR", ERROR),
    ] {
        f.raw_set(k, v)?;
    }
    t.raw_set("format", f)?;
    t.raw_set(
        "new",
        lua.create_function(|lua, v: LuaValue| {
            let value = if let Some(e) = errors::as_error(&v) {
                Value::Error(e.to_rt())
            } else {
                match convert::from_lua(&v) {
                    Ok(x) => x,
                    Err(e) => return nil_error(lua, e),
                }
            };
            Ok(MultiValue::from_vec(vec![payload_value(
                lua,
                Payload::from_value(value),
            )?]))
        })?,
    )?;
    Ok(LuaValue::Table(t))
}
