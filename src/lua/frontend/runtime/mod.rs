//! Run-time side of the dialect: type objects on an mlua state.
//!
//! [`install_type_runtime`] only defines the global `__wippy_types` (one function), so states
//! that never load a typed chunk pay nothing more. Everything else is built on demand in each
//! state by the prelude `__wippy_types(descriptor|nil, _ENV, <call factory>)`:
//!
//! 1. Without a descriptor (the chunk only calls built-in type names): the state's shared type
//!    table. Type tables resolve the built-in names (`nil boolean number integer string any
//!    unknown never`) through an `__index` that creates each built-in type object on first use and
//!    caches it per state (one identity per name, so built-ins work as table keys).
//! 2. With a descriptor (the source of the chunk's top-level `type`/`interface` statements): the
//!    compiled [`model::TypeModule`], shared process-wide through a cache keyed by the descriptor
//!    bytes (parsed once per process, whatever the number of states); then one type object per
//!    declaration, set in a new type table and — go-lua's `injectProtoTypes` — as a global of the
//!    chunk's environment when that global is nil. Built-in names are never injected and never
//!    shadow the built-ins in the chunk's table.
//!
//! The first type object created in a state registers the userdata metatable (metamethods only,
//! plus the small compiled `__call` wrapper); type methods are shared functions created on first
//! use and cached per state.
//!
//! Reserved names (documented in `docs/frontend.md`): global `__wippy_types`, chunk local
//! `__wippy_T`, registry keys starting with `__wippy_type`.

mod check;
mod fast;
mod model;
mod object;
mod relate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use mlua::{Lua, Table, Value};

use super::TYPES_ENTRY_GLOBAL;
use model::{Closure, Prim, TypeModule};
pub(crate) use object::CALL_FACTORY;
use object::{FACTORY_KEY, TypeObj, builtin};

/// Registry key of the per-state built-in type table.
const BUILTINS_KEY: &str = "__wippy_type_builtins";
/// Registry key of the metatable of type tables.
const TABLE_MT_KEY: &str = "__wippy_type_table_mt";
/// Registry key of the built-ins-only type table returned by `__wippy_types()`.
const SHARED_TABLE_KEY: &str = "__wippy_type_shared";

/// Distinct descriptors kept compiled; past this the cache is cleared (each entry is the size of
/// its declarations; applications have at most a few hundred typed chunks).
const MODULE_CACHE_MAX: usize = 4096;

/// Install the helpers generated code references (`__wippy_types`) into `lua`'s globals.
///
/// Call it on every state that will load a chunk whose
/// [`Translation::needs_type_runtime`](super::Translation::needs_type_runtime) is true. Cheap:
/// one function value and one raw global set; type machinery is created on first use.
pub fn install_type_runtime(lua: &Lua) -> mlua::Result<()> {
    lua.globals()
        .raw_set(TYPES_ENTRY_GLOBAL, type_runtime_entry(lua)?)
}

/// The function the prelude calls as `__wippy_types`, for engines that expose globals to chunks
/// through their own environment tables (bind it there under
/// [`TYPES_ENTRY_GLOBAL`](super::TYPES_ENTRY_GLOBAL) instead of calling
/// [`install_type_runtime`]).
pub fn type_runtime_entry(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.create_function(types_entry)
}

/// Per-state table of built-in type objects (filled on demand; one identity per name).
fn builtin_cache(lua: &Lua) -> mlua::Result<Table> {
    if let Value::Table(t) = lua.named_registry_value::<Value>(BUILTINS_KEY)? {
        return Ok(t);
    }
    let t = lua.create_table_with_capacity(0, Prim::BUILTINS.len())?;
    lua.set_named_registry_value(BUILTINS_KEY, &t)?;
    Ok(t)
}

/// `__index` of type tables: built-in names resolve to the state's built-in type objects and
/// integer keys to type methods; both are created on first use and then cached in the table.
fn builtin_index(lua: &Lua, (t, key): (Table, Value)) -> mlua::Result<Value> {
    if let Value::Integer(i) = key {
        // `__wippy_T[k]`: type method k, called directly by translated method calls.
        let found = usize::try_from(i)
            .ok()
            .map(|i| object::method_by_index(lua, i));
        return match found {
            Some(Ok(Some(f))) => {
                t.raw_set(i, &f)?;
                Ok(Value::Function(f))
            }
            Some(Err(e)) => Err(e),
            _ => Ok(Value::Nil),
        };
    }
    let Value::String(k) = key else {
        return Ok(Value::Nil);
    };
    let k = k.as_bytes();
    let Some(p) = Prim::BUILTINS
        .iter()
        .copied()
        .find(|p| p.name().as_bytes() == &*k)
    else {
        return Ok(Value::Nil);
    };
    let cache = builtin_cache(lua)?;
    let obj = match cache.raw_get::<Value>(p.name())? {
        Value::Nil => {
            let ud = Value::UserData(lua.create_userdata(builtin(p))?);
            cache.raw_set(p.name(), &ud)?;
            ud
        }
        v => v,
    };
    t.raw_set(p.name(), &obj)?;
    Ok(obj)
}

/// Metatable `{__index = builtin_index}` shared by the type tables of a state.
fn table_metatable(lua: &Lua) -> mlua::Result<Table> {
    if let Value::Table(t) = lua.named_registry_value::<Value>(TABLE_MT_KEY)? {
        return Ok(t);
    }
    let mt = lua.create_table_with_capacity(0, 1)?;
    mt.raw_set("__index", lua.create_function(builtin_index)?)?;
    lua.set_named_registry_value(TABLE_MT_KEY, &mt)?;
    Ok(mt)
}

fn is_builtin_name(n: &str) -> bool {
    Prim::BUILTINS.iter().any(|p| p.name() == n)
}

/// Compiled module for a descriptor, shared by every state of the process.
type ModuleCache = Mutex<HashMap<Box<[u8]>, Arc<TypeModule>>>;

fn module_for(desc: &[u8]) -> Result<Arc<TypeModule>, String> {
    static CACHE: OnceLock<ModuleCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(m) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(desc) {
        return Ok(Arc::clone(m));
    }
    let m = Arc::new(model::module_from_descriptor(desc)?);
    let mut guard = cache.lock().unwrap_or_else(|p| p.into_inner());
    if guard.len() >= MODULE_CACHE_MAX {
        guard.clear();
    }
    Ok(Arc::clone(guard.entry(desc.into()).or_insert(m)))
}

/// `__wippy_types([descriptor], [env], [call_factory])` — see the module docs.
fn types_entry(
    lua: &Lua,
    (desc, env, factory): (
        Option<mlua::LuaString>,
        Option<Table>,
        Option<mlua::Function>,
    ),
) -> mlua::Result<Table> {
    if let Some(f) = factory
        && lua.named_registry_value::<Value>(FACTORY_KEY)?.is_nil()
    {
        lua.set_named_registry_value(FACTORY_KEY, f)?;
    }
    let Some(desc) = desc else {
        // Built-ins only: the state's shared type table.
        if let Value::Table(t) = lua.named_registry_value::<Value>(SHARED_TABLE_KEY)? {
            return Ok(t);
        }
        let t = lua.create_table()?;
        t.set_metatable(Some(table_metatable(lua)?))?;
        lua.set_named_registry_value(SHARED_TABLE_KEY, &t)?;
        return Ok(t);
    };
    let module = module_for(&desc.as_bytes())
        .map_err(|e| mlua::Error::RuntimeError(format!("invalid type descriptor: {e}")))?;
    let t = lua.create_table_with_capacity(0, module.decls.len())?;
    t.set_metatable(Some(table_metatable(lua)?))?;
    let env = match env {
        Some(e) => e,
        None => lua.globals(),
    };
    for (i, d) in module.decls.iter().enumerate() {
        if module.by_name.get(&d.name) != Some(&i) || is_builtin_name(&d.name) {
            continue;
        }
        let obj = TypeObj {
            c: Closure {
                module: Arc::clone(&module),
                ty: Arc::clone(&module.refs[i]),
                env: None,
            },
            name: Some(Arc::clone(&module.names[i])),
        };
        let ud = lua.create_userdata(obj)?;
        if module.uses_names {
            // Names in these types resolve in the chunk's environment (GC-traced user value,
            // so an environment is not kept alive by the types it holds).
            ud.set_user_value(&env)?;
        }
        t.raw_set(d.name.as_str(), &ud)?;
        if env.raw_get::<Value>(d.name.as_str())?.is_nil() {
            env.raw_set(d.name.as_str(), &ud)?;
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
