//! `yaml` (spec `lua-api.md` §3.8.7).
//!
//! `yaml.encode(tbl[, {field_order = {"k1", ...}, sort_unordered = bool}])` → string, or
//! `nil, err` (`Invalid` "table expected" for a non-table, `Internal` when the value cannot be
//! represented). Mapping keys are ordered at every level: keys listed in `field_order` first
//! (in that order), then the others — sorted when `sort_unordered` is true, else in Lua's
//! traversal order. Integral floats are written as integers (as upstream's number handling).
//! Output uses 2-space indentation (Go's yaml.v3 uses 4; both parse identically).
//!
//! `yaml.decode(s)` → value, or `nil, err` (`Invalid` for a non-string or empty input,
//! `Internal` for a syntax error). Values are built directly as Lua values.

use mlua::{Lua, MultiValue, Table, Value as LuaValue};
use serde::de::DeserializeSeed;
use serde_yaml::{Mapping, Value as Y};
use wippy_rt::{Error, Kind, Value};

use super::errors::nil_error;
use super::json::LuaSeed;
use crate::lua::convert;

struct Order {
    fields: Vec<String>,
    sort: bool,
}

fn to_yaml(v: &Value, order: &Order) -> Result<Y, Error> {
    Ok(match v {
        Value::Nil | Value::Opaque(_) => Y::Null,
        Value::Bool(b) => Y::Bool(*b),
        Value::Int(i) => Y::Number((*i).into()),
        Value::Float(f) => {
            if f.fract() == 0.0 && f.is_finite() && f.abs() < 9.2e18 {
                Y::Number((*f as i64).into())
            } else {
                Y::Number((*f).into())
            }
        }
        Value::Str(s) => Y::String(s.to_string_lossy().into_owned()),
        Value::Array(a) => Y::Sequence(
            a.iter()
                .map(|x| to_yaml(x, order))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) => {
            let key_of = |k: &Value| match k {
                Value::Str(s) => s.to_string_lossy().into_owned(),
                Value::Int(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                _ => String::new(),
            };
            let mut entries: Vec<(String, &Value)> =
                m.iter().map(|(k, v)| (key_of(k), v)).collect();
            let mut out = Mapping::new();
            for f in &order.fields {
                if let Some(pos) = entries.iter().position(|(k, _)| k == f) {
                    let (k, v) = entries.remove(pos);
                    out.insert(Y::String(k), to_yaml(v, order)?);
                }
            }
            if order.sort {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            for (k, v) in entries {
                out.insert(Y::String(k), to_yaml(v, order)?);
            }
            Y::Mapping(out)
        }
        Value::Error(e) => Y::String(e.to_string()),
    })
}

fn options(v: Option<&LuaValue>) -> mlua::Result<Order> {
    let mut o = Order {
        fields: Vec::new(),
        sort: false,
    };
    if let Some(LuaValue::Table(t)) = v {
        if let LuaValue::Table(f) = t.raw_get::<LuaValue>("field_order")? {
            for s in f.sequence_values::<LuaValue>() {
                if let LuaValue::String(s) = s? {
                    o.fields.push(s.to_string_lossy());
                }
            }
        }
        o.sort = matches!(
            t.raw_get::<LuaValue>("sort_unordered")?,
            LuaValue::Boolean(true)
        );
    }
    Ok(o)
}

/// Encode a Lua table as YAML text.
pub fn encode(t: &Table, opts: Option<&LuaValue>) -> Result<String, Error> {
    let order = options(opts).map_err(|e| Error::invalid(e.to_string()))?;
    let v = convert::from_lua(&LuaValue::Table(t.clone()))?;
    let y = to_yaml(&v, &order)?;
    serde_yaml::to_string(&y)
        .map_err(|e| Error::new(Kind::INTERNAL, e.to_string()).with_context("encode failed"))
}

/// Decode YAML text into a Lua value.
pub fn decode(lua: &Lua, text: &str) -> Result<LuaValue, Error> {
    let de = serde_yaml::Deserializer::from_str(text);
    LuaSeed { lua, depth: 0 }
        .deserialize(de)
        .map_err(|e| Error::new(Kind::INTERNAL, e.to_string()).with_context("decode failed"))
}

/// The `yaml` module table.
pub fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 2)?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, args: MultiValue| match args.front() {
            Some(LuaValue::Table(tbl)) => match encode(tbl, args.get(1)) {
                Ok(s) => Ok(MultiValue::from_vec(vec![
                    LuaValue::String(lua.create_string(s)?),
                    LuaValue::Nil,
                ])),
                Err(e) => nil_error(lua, e),
            },
            _ => nil_error(lua, Error::invalid("table expected")),
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, args: MultiValue| match args.front() {
            Some(LuaValue::String(s)) if !s.as_bytes().is_empty() => {
                let text = s.to_string_lossy();
                match decode(lua, &text) {
                    Ok(v) => Ok(MultiValue::from_vec(vec![v, LuaValue::Nil])),
                    Err(e) => nil_error(lua, e),
                }
            }
            Some(LuaValue::String(_)) => nil_error(lua, Error::invalid("empty input")),
            _ => nil_error(lua, Error::invalid("string expected")),
        })?,
    )?;
    Ok(LuaValue::Table(t))
}
