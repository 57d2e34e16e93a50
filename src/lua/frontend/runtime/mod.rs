//! Run-time side of the dialect: type objects on an mlua state.
//!
//! [`install_type_runtime`] only defines the global `__wippy_types` (one function; about a
//! microsecond), so states that never load a typed chunk pay nothing more. Everything else is
//! built on the first call of the prelude `__wippy_types([descriptor], _ENV)` in a state:
//!
//! 1. The per-state table of built-in type objects (`nil boolean number integer string any
//!    unknown never`), kept in the registry so each built-in has one identity per state.
//! 2. With a descriptor (the source of the chunk's top-level `type`/`interface` statements): the
//!    compiled [`model::TypeModule`], shared process-wide through a cache keyed by the descriptor
//!    bytes (parsed once per process, whatever the number of states); then one type object per
//!    declaration, set in the returned table and — go-lua's `injectProtoTypes` — as a global of the
//!    chunk's environment when that global is nil. Built-in names are never injected and never
//!    shadow the built-ins in the chunk's table.
//!
//! The returned table (`__wippy_T` in the chunk) falls back to the built-ins through `__index`.
//!
//! Reserved names (documented in `docs/frontend.md`): global `__wippy_types`, chunk local
//! `__wippy_T`, registry keys `__wippy_type_builtins` and `__wippy_type_table_mt`.

mod check;
mod model;
mod object;
mod relate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use mlua::{Lua, Table, Value};

use super::TYPES_ENTRY_GLOBAL;
use model::{Closure, Prim, Ty, TypeModule};
use object::{TypeObj, builtin};

/// Registry key of the per-state built-in type table.
const BUILTINS_KEY: &str = "__wippy_type_builtins";
/// Registry key of the metatable `{__index = builtins}` of chunk type tables.
const TABLE_MT_KEY: &str = "__wippy_type_table_mt";

/// Distinct descriptors kept compiled; past this the cache is cleared (each entry is the size of
/// its declarations; applications have at most a few hundred typed chunks).
const MODULE_CACHE_MAX: usize = 4096;

/// Install the helpers generated code references (`__wippy_types`) into `lua`'s globals.
///
/// Call it on every state that will load a chunk whose
/// [`Translation::needs_type_runtime`](super::Translation::needs_type_runtime) is true. Cheap:
/// one function value and one raw global set; type machinery is created on first use.
pub fn install_type_runtime(lua: &Lua) -> mlua::Result<()> {
    let f = lua.create_function(types_entry)?;
    lua.globals().raw_set(TYPES_ENTRY_GLOBAL, f)
}

fn builtin_table(lua: &Lua) -> mlua::Result<Table> {
    if let Ok(Value::Table(t)) = lua.named_registry_value::<Value>(BUILTINS_KEY) {
        return Ok(t);
    }
    let t = lua.create_table_with_capacity(0, Prim::BUILTINS.len())?;
    for p in Prim::BUILTINS {
        t.raw_set(p.name(), lua.create_userdata(builtin(p))?)?;
    }
    lua.set_named_registry_value(BUILTINS_KEY, &t)?;
    Ok(t)
}

fn table_metatable(lua: &Lua, builtins: &Table) -> mlua::Result<Table> {
    if let Ok(Value::Table(t)) = lua.named_registry_value::<Value>(TABLE_MT_KEY) {
        return Ok(t);
    }
    let mt = lua.create_table()?;
    mt.raw_set("__index", builtins)?;
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

/// `__wippy_types([descriptor[, env]])` — see the module docs.
fn types_entry(
    lua: &Lua,
    (desc, env): (Option<mlua::LuaString>, Option<Table>),
) -> mlua::Result<Table> {
    let builtins = builtin_table(lua)?;
    let Some(desc) = desc else {
        return Ok(builtins);
    };
    let module = module_for(&desc.as_bytes())
        .map_err(|e| mlua::Error::RuntimeError(format!("invalid type descriptor: {e}")))?;
    let t = lua.create_table_with_capacity(0, module.decls.len())?;
    t.set_metatable(Some(table_metatable(lua, &builtins)?))?;
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
                ty: Arc::new(Ty::Decl(i, Vec::new())),
                env: None,
            },
            name: Some(Arc::from(d.name.as_str())),
        };
        let ud = lua.create_userdata(obj)?;
        t.raw_set(d.name.as_str(), &ud)?;
        if env.raw_get::<Value>(d.name.as_str())?.is_nil() {
            env.raw_set(d.name.as_str(), &ud)?;
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
