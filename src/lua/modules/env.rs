//! `env` — the read side of environment variables (spec `lua-api.md` §3.8.11).
//!
//! Resolution, permissions and storage belong to the boot/registry layer, which installs an
//! [`EnvProvider`] with [`set_provider`] (backed by `env.variable` / `env.storage.*` entries).
//! This module only adapts it to Lua: `env.get(key)` → string, nil / nil, err (`Invalid` for a
//! non-string or empty key; the provider's `NotFound` / `PermissionDenied` errors otherwise);
//! `env.set(key, value)` → true, nil / nil, err (numbers are converted to strings);
//! `env.get_all()` → table, nil. The caller's identity (entry ID, so its namespace) is passed to
//! the provider. Without a provider every key is `NotFound`, `set` is `PermissionDenied` and
//! `get_all` is empty — there is **no** fallback to the OS environment (upstream has none).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use mlua::{Lua, MultiValue, Value};
use wippy_rt::{Error, Kind};

use super::errors::{nil_err, nil_error};
use crate::lua::vm::ProcessInfo;
use crate::lua::vm::data::process_info;

/// Backs the `env` module.
pub trait EnvProvider: Send + Sync {
    /// The value of `key` for `caller` (`NotFound` when unset).
    fn get(&self, caller: &ProcessInfo, key: &str) -> Result<String, Error>;
    /// Set `key` for `caller`.
    fn set(&self, caller: &ProcessInfo, key: &str, value: &str) -> Result<(), Error>;
    /// Every visible key/value (storage keys, filtered by permission).
    fn get_all(&self, caller: &ProcessInfo) -> Result<Vec<(String, String)>, Error>;
}

static PROVIDER: RwLock<Option<Arc<dyn EnvProvider>>> = RwLock::new(None);

/// Install the provider used by every state (boot calls this once).
pub fn set_provider(p: Arc<dyn EnvProvider>) {
    *PROVIDER.write().unwrap_or_else(|e| e.into_inner()) = Some(p);
}

fn provider() -> Option<Arc<dyn EnvProvider>> {
    PROVIDER.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A simple in-memory provider (tests, and a base for a boot-time implementation).
#[derive(Default)]
pub struct MapEnv {
    vars: Mutex<BTreeMap<String, String>>,
    readonly: Vec<String>,
}

impl MapEnv {
    /// A provider with `vars`; keys in `readonly` reject `set`.
    pub fn new(vars: impl IntoIterator<Item = (String, String)>, readonly: Vec<String>) -> MapEnv {
        MapEnv {
            vars: Mutex::new(vars.into_iter().collect()),
            readonly,
        }
    }
}

impl EnvProvider for MapEnv {
    fn get(&self, _caller: &ProcessInfo, key: &str) -> Result<String, Error> {
        match self.vars.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
            Some(v) if !v.is_empty() => Ok(v.clone()),
            _ => Err(Error::not_found("environment variable not found")),
        }
    }
    fn set(&self, _caller: &ProcessInfo, key: &str, value: &str) -> Result<(), Error> {
        if self.readonly.iter().any(|k| k == key) {
            return Err(Error::new(
                Kind::PERMISSION_DENIED,
                "environment variable is read-only",
            ));
        }
        self.vars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), value.to_string());
        Ok(())
    }
    fn get_all(&self, _caller: &ProcessInfo) -> Result<Vec<(String, String)>, Error> {
        Ok(self
            .vars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

fn key_arg(args: &MultiValue) -> Result<String, Error> {
    match args.front() {
        Some(Value::String(s)) if !s.as_bytes().is_empty() => Ok(s.to_string_lossy()),
        Some(Value::String(_)) => Err(Error::invalid("key cannot be empty")),
        _ => Err(Error::invalid("key must be a string")),
    }
}

/// The `env` module table.
pub fn build(lua: &Lua) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(0, 3)?;
    t.raw_set(
        "get",
        lua.create_function(|lua, args: MultiValue| {
            let key = match key_arg(&args) {
                Ok(k) => k,
                Err(e) => return nil_error(lua, e),
            };
            let Some(p) = provider() else {
                return nil_err(lua, Kind::NOT_FOUND, "environment variable not found");
            };
            match p.get(&process_info(lua), &key) {
                Ok(v) => Ok(MultiValue::from_vec(vec![
                    Value::String(lua.create_string(v)?),
                    Value::Nil,
                ])),
                Err(e) => nil_error(lua, e),
            }
        })?,
    )?;
    t.raw_set(
        "set",
        lua.create_function(|lua, args: MultiValue| {
            let key = match key_arg(&args) {
                Ok(k) => k,
                Err(e) => return nil_error(lua, e),
            };
            let value = match args.get(1) {
                Some(Value::String(s)) => s.to_string_lossy(),
                Some(v @ (Value::Integer(_) | Value::Number(_))) => lua
                    .coerce_string(v.clone())?
                    .map(|s| s.to_string_lossy())
                    .unwrap_or_default(),
                _ => return nil_err(lua, Kind::INVALID, "value must be a string"),
            };
            let Some(p) = provider() else {
                return nil_err(
                    lua,
                    Kind::PERMISSION_DENIED,
                    "environment is not configured",
                );
            };
            match p.set(&process_info(lua), &key, &value) {
                Ok(()) => Ok(MultiValue::from_vec(vec![Value::Boolean(true), Value::Nil])),
                Err(e) => nil_error(lua, e),
            }
        })?,
    )?;
    t.raw_set(
        "get_all",
        lua.create_function(|lua, ()| {
            let out = lua.create_table()?;
            if let Some(p) = provider() {
                match p.get_all(&process_info(lua)) {
                    Ok(all) => {
                        for (k, v) in all {
                            out.raw_set(k, v)?;
                        }
                    }
                    Err(e) => return nil_error(lua, e),
                }
            }
            Ok(MultiValue::from_vec(vec![Value::Table(out), Value::Nil]))
        })?,
    )?;
    Ok(Value::Table(t))
}
