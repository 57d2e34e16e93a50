//! One Lua state: the unit a process (or a pooled function worker) owns.
//!
//! A [`LuaState`] wraps an `mlua::Lua` built with the sandboxed base ([`super::sandbox`]), the
//! per-process environment currently bound to it, and a per-state cache of compiled chunks.
//!
//! Life cycle (driven by [`super::StateFactory`]):
//! 1. `bind` — a fresh env table E is created and published in the state's [`StateData`];
//!    the entry's modules are installed into E.
//! 2. the engine loads the entry chunk ([`LuaState::load_chunk`]), which returns the cached
//!    compiled function re-pointed at E (its `_ENV` upvalue is replaced), and runs it.
//! 3. `unbind` — E, the process identity and any armed hook are dropped. Since user code can
//!    only write into E (everything shared is read-only), the state is then as pristine as a
//!    new one, apart from lazily built library tables and compiled chunks, which are caches.
//!
//! Chunk cache invariant: a cached function is reused only by the *next* process on the same
//! state, never concurrently (one process per state at a time), so swapping its `_ENV`
//! upvalue cannot affect a live process.

use std::sync::Arc;

use fnv::FnvHashMap;
use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value};
use wippy_rt::{Error, Pid};

use super::data::{ProcessInfo, StateData};
use super::{VmConfig, sandbox};
use crate::lua::modules;

/// A compiled chunk kept by a state: the source hash guards against a changed source under the
/// same name (hot reload).
struct CachedChunk {
    hash: u64,
    func: Function,
}

/// One Lua state with its sandbox, current process environment and chunk cache.
pub struct LuaState {
    lua: Lua,
    env: Option<Table>,
    chunks: FnvHashMap<Arc<str>, CachedChunk>,
    /// Number of processes this state has hosted (recycling statistics / retirement).
    uses: u32,
}

impl LuaState {
    /// Build a new state with the sandboxed base globals and the configured memory limit.
    pub fn new(cfg: &VmConfig) -> Result<LuaState, Error> {
        let lua = Lua::new_with(StdLib::NONE, LuaOptions::new()).map_err(vm_err)?;
        sandbox::build_base(&lua).map_err(vm_err)?;
        lua.set_app_data(StateData::default());
        if let Some(limit) = cfg.memory_limit {
            lua.set_memory_limit(limit).map_err(vm_err)?;
        }
        Ok(LuaState {
            lua,
            env: None,
            chunks: FnvHashMap::default(),
            uses: 0,
        })
    }

    /// The underlying mlua state.
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// The current process environment (`_ENV` of its chunks).
    ///
    /// # Panics
    /// When no process is bound (a runtime invariant: the factory binds on acquire).
    pub fn env(&self) -> &Table {
        self.env
            .as_ref()
            .expect("LuaState::env called on a state with no bound process")
    }

    /// How many processes this state has hosted.
    pub fn uses(&self) -> u32 {
        self.uses
    }

    /// Bind a fresh environment and install `modules` into it (factory internal).
    pub(super) fn bind(&mut self, modules_list: &[&str]) -> Result<(), Error> {
        let env = sandbox::new_env(&self.lua).map_err(vm_err)?;
        if let Some(mut d) = self.lua.app_data_mut::<StateData>() {
            d.env = Some(env.clone());
        }
        self.env = Some(env);
        self.uses += 1;
        modules::install_modules(&self.lua, modules_list)
    }

    /// Drop the environment, the process identity and any armed hook (factory internal).
    pub(super) fn unbind(&mut self) {
        self.env = None;
        if let Some(mut d) = self.lua.app_data_mut::<StateData>() {
            d.env = None;
            d.info = ProcessInfo::default();
        }
        self.lua.remove_hook();
    }

    /// Set the identity of the process running on this state (used by `print`/`logger`).
    pub fn set_process(&self, pid: Option<Pid>, entry: Option<Arc<str>>) {
        if let Some(mut d) = self.lua.app_data_mut::<StateData>() {
            d.info = ProcessInfo { pid, entry };
        }
    }

    /// The identity set by [`set_process`](Self::set_process).
    pub fn process(&self) -> ProcessInfo {
        super::data::process_info(&self.lua)
    }

    /// Install more modules into the current environment (see [`modules::install_modules`]).
    pub fn install_modules(&self, names: &[&str]) -> Result<(), Error> {
        modules::install_modules(&self.lua, names)
    }

    /// Bind `value` as a global of the current process (imports: `alias = library value`).
    pub fn bind_global(&self, name: &str, value: Value) -> Result<(), Error> {
        self.env().raw_set(name, value).map_err(vm_err)
    }

    /// The compiled main function of chunk `name` (an entry ID) with `source`, bound to the
    /// current environment. Compiled once per state and source; later calls only re-point
    /// `_ENV`. Syntax errors come back as `Invalid` errors naming the chunk and line.
    pub fn load_chunk(&mut self, name: &str, source: &str) -> Result<Function, Error> {
        let hash = source_hash(source);
        let env = self.env().clone();
        if let Some(c) = self.chunks.get(name)
            && c.hash == hash
        {
            c.func.set_environment(env).map_err(vm_err)?;
            return Ok(c.func.clone());
        }
        let func = self
            .lua
            .load(source)
            .set_name(format!("={name}"))
            .set_environment(env)
            .into_function()
            .map_err(|e| compile_err(name, e))?;
        self.chunks.insert(
            Arc::from(name),
            CachedChunk {
                hash,
                func: func.clone(),
            },
        );
        Ok(func)
    }

    /// Forget the compiled chunk `name` (e.g. its entry was removed).
    pub fn forget_chunk(&mut self, name: &str) {
        self.chunks.remove(name);
    }

    /// Lua heap in use, bytes.
    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }
}

/// FNV-1a 64 of the source text (cache validation, not security).
fn source_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h ^ s.len() as u64
}

#[cold]
pub(crate) fn vm_err(e: mlua::Error) -> Error {
    Error::internal(format!("lua vm: {e}"))
}

#[cold]
fn compile_err(name: &str, e: mlua::Error) -> Error {
    match e {
        mlua::Error::SyntaxError { message, .. } => {
            Error::invalid(format!("syntax error in {name}: {message}"))
        }
        other => Error::internal(format!("loading {name}: {other}")),
    }
}
