//! Lua modules and the module registry.
//!
//! Every module is registered by name with a *builder* that creates its value (usually a
//! table) in a given state. Values are built **once per state, on first use**, cached in the
//! state's registry and exposed read-only ([`crate::lua::vm::readonly`]): so a module costs
//! nothing until an entry lists it, and a recycled state reuses what it already built.
//!
//! Two kinds of names:
//! - **core** globals (`string`, `table`, `math`, `coroutine`, `os`, `errors`, `payload`, and
//!   whatever the engine registers as core, e.g. `channel`, `process`) are always visible:
//!   the sandbox's lazy loader builds them on first access;
//! - **listed** modules (`json`, `time`, …) are installed as globals of a process only when its
//!   entry lists them in `modules:` ([`install_modules`]).
//!
//! The engine adds the blocking modules with [`register_module`] and extends built-in tables
//! (e.g. `time.sleep`, `coroutine.spawn`) with [`extend_module`]; both must happen before the
//! first state is created, since built values are cached per state.
//!
//! Module files: [`stdlib`] (string/table/math/coroutine), [`os`], [`errors`], [`json`],
//! [`yaml`], [`base64`], [`payload`], [`logger`], [`hash`], [`uuid`], [`crypto`], [`time`],
//! [`env`](mod@env).

use std::sync::{Arc, LazyLock, RwLock};

use fnv::FnvHashMap;
use mlua::{Lua, Table, Value};
use wippy_rt::Error;

use crate::lua::vm::{StateData, data, readonly};

pub mod base64;
pub mod crypto;
pub mod env;
pub mod errors;
pub mod events;
pub mod hash;
pub mod json;
pub mod json_schema;
pub mod logger;
pub mod os;
pub mod payload;
pub mod process_system;
pub mod registry;
pub mod stdlib;
pub mod time;
pub mod uuid;
pub mod yaml;

/// Builds a module's value in one state.
pub type Builder = Arc<dyn Fn(&Lua) -> mlua::Result<Value> + Send + Sync>;
/// Adds fields to a built module table before it is frozen.
pub type Extension = Arc<dyn Fn(&Lua, &Table) -> mlua::Result<()> + Send + Sync>;

struct ModuleDef {
    build: Builder,
    core: bool,
    extensions: Vec<Extension>,
}

static REGISTRY: LazyLock<RwLock<FnvHashMap<String, ModuleDef>>> = LazyLock::new(|| {
    let mut m = FnvHashMap::default();
    let mut add = |name: &str, core: bool, f: fn(&Lua) -> mlua::Result<Value>| {
        m.insert(
            name.to_string(),
            ModuleDef {
                build: Arc::new(f),
                core,
                extensions: Vec::new(),
            },
        );
    };
    add("string", true, stdlib::string);
    add("table", true, stdlib::table);
    add("math", true, stdlib::math);
    add("coroutine", true, stdlib::coroutine);
    add("os", true, os::build);
    add("errors", true, errors::build);
    add("payload", true, payload::build);
    add("json", false, json::build);
    add("yaml", false, yaml::build);
    add("base64", false, base64::build);
    add("logger", false, logger::build);
    add("hash", false, hash::build);
    add("uuid", false, uuid::build);
    add("crypto", false, crypto::build);
    add("time", false, time::build);
    add("env", false, env::build);
    RwLock::new(m)
});

/// Registry key of the Lua-side module cache of states without [`StateData`] (bare states);
/// factory states keep the cache in their `StateData` (no Lua lookup on a hit).
const CACHE_KEY: &str = "wippy.modules";

fn lua_cache(lua: &Lua) -> mlua::Result<Table> {
    match lua.named_registry_value::<Option<Table>>(CACHE_KEY)? {
        Some(t) => Ok(t),
        None => {
            let t = lua.create_table()?;
            lua.set_named_registry_value(CACHE_KEY, &t)?;
            Ok(t)
        }
    }
}

/// Register (or replace) module `name`. `core` modules are always-visible globals.
pub fn register_module(name: &str, core: bool, build: Builder) {
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    let extensions = reg.remove(name).map(|d| d.extensions).unwrap_or_default();
    reg.insert(
        name.to_string(),
        ModuleDef {
            build,
            core,
            extensions,
        },
    );
}

/// Add fields to module `name`'s table each time it is built (before it is frozen).
/// Errors if the module is unknown.
pub fn extend_module(name: &str, ext: Extension) -> Result<(), Error> {
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    match reg.get_mut(name) {
        Some(d) => {
            d.extensions.push(ext);
            Ok(())
        }
        None => Err(unknown(name)),
    }
}

/// True if `name` is a registered module.
pub fn is_registered(name: &str) -> bool {
    REGISTRY
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .contains_key(name)
}

/// True if `name` is an always-visible core global.
pub fn is_core(name: &str) -> bool {
    REGISTRY
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        .is_some_and(|d| d.core)
}

/// The (frozen) value of module `name` in this state, built on first use; None if unknown.
pub fn module_value(lua: &Lua, name: &str) -> mlua::Result<Option<Value>> {
    let has_data = match lua.app_data_ref::<StateData>() {
        Some(d) => {
            if let Some((_, v)) = d.modules.iter().find(|(n, _)| **n == *name) {
                return Ok(Some(v.clone()));
            }
            true
        }
        None => false,
    };
    if !has_data {
        let cached: Value = lua_cache(lua)?.raw_get(name)?;
        if !cached.is_nil() {
            return Ok(Some(cached));
        }
    }
    let (build, extensions) = {
        let reg = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
        match reg.get(name) {
            Some(d) => (d.build.clone(), d.extensions.clone()),
            None => return Ok(None),
        }
    };
    let v = build(lua)?;
    if let Value::Table(t) = &v {
        for ext in &extensions {
            ext(lua, t)?;
        }
    }
    let v = readonly::freeze(lua, v)?;
    if has_data {
        if let Some(mut d) = lua.app_data_mut::<StateData>() {
            if d.modules.capacity() == 0 {
                d.modules.reserve_exact(2);
            }
            d.modules.push((name.into(), v.clone()));
        }
    } else {
        lua_cache(lua)?.raw_set(name, &v)?;
    }
    Ok(Some(v))
}

/// Install modules `names` as globals of the current process environment of `lua` (its
/// real globals when no process is bound). Unknown names → `Invalid` `unknown module '<name>'`.
pub fn install_modules(lua: &Lua, names: &[&str]) -> Result<(), Error> {
    if names.is_empty() {
        return Ok(());
    }
    let env = data::current_env(lua);
    for name in names {
        match module_value(lua, name) {
            Ok(Some(v)) => env
                .raw_set(*name, v)
                .map_err(|e| Error::internal(format!("installing module '{name}': {e}")))?,
            Ok(None) => return Err(unknown(name)),
            Err(e) => return Err(Error::internal(format!("building module '{name}': {e}"))),
        }
    }
    Ok(())
}

#[cold]
fn unknown(name: &str) -> Error {
    Error::invalid(format!("unknown module '{name}'"))
}
