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
//! Compiled chunks are also shared across states as bytecode (one entry per chunk name, keyed
//! by the source text), so a state that first meets an entry undumps it instead of parsing.
//!
//! Chunk cache invariant: a cached function is reused only by the *next* process on the same
//! state, never concurrently (one process per state at a time), so swapping its `_ENV`
//! upvalue cannot affect a live process.

use std::sync::{Arc, LazyLock, Mutex};

use fnv::FnvHashMap;
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value};
use wippy_rt::{Error, Pid};

use super::data::{ProcessInfo, StateData};
use super::{VmConfig, sandbox};
use crate::lua::modules;

/// A compiled chunk kept by a state. The source text is kept and compared on each hit (a
/// `memcmp`, ~30 GB/s — cheaper than hashing) so a changed source under the same name (hot
/// reload) is recompiled.
struct CachedChunk {
    source: Arc<str>,
    func: Function,
}

/// One Lua state with its sandbox, current process environment and chunk cache.
pub struct LuaState {
    lua: Lua,
    env_mt: Table,
    env: Option<Table>,
    /// Compiled chunks by name. A state hosts one entry and its few libraries at a time, so a
    /// short vector searched linearly beats a hash map in both time and bytes (an idle
    /// process pays ~250 B for a one-entry map).
    chunks: Vec<(Arc<str>, CachedChunk)>,
    /// Number of processes this state has hosted (recycling statistics / retirement).
    uses: u32,
}

impl LuaState {
    /// Build a new state with the sandboxed base globals and the configured memory limit.
    pub fn new(cfg: &VmConfig) -> Result<LuaState, Error> {
        let lua = Lua::new_with(StdLib::NONE, LuaOptions::new()).map_err(vm_err)?;
        // StateData first: the sandbox's module builds cache into it.
        lua.set_app_data(StateData::default());
        sandbox::build_base(&lua).map_err(vm_err)?;
        let env_mt = sandbox::env_metatable(&lua).map_err(vm_err)?;
        // Free the stock globals table the sandbox replaced (an idle process never allocates
        // enough to run the collector, so without this the garbage would stay for its life).
        lua.gc_collect().map_err(vm_err)?;
        if let Some(limit) = cfg.memory_limit {
            lua.set_memory_limit(limit).map_err(vm_err)?;
        }
        Ok(LuaState {
            lua,
            env_mt,
            env: None,
            chunks: Vec::new(),
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
    ///
    /// The env table is built in one protected raw call (create, `_G`, module fields,
    /// metatable) instead of one mlua call per field: acquire is on the spawn hot path.
    pub(super) fn bind(&mut self, modules_list: &[&str]) -> Result<(), Error> {
        let mut values = Vec::with_capacity(modules_list.len() + 1);
        values.push(Value::Table(self.env_mt.clone()));
        for name in modules_list {
            match modules::module_value(&self.lua, name) {
                Ok(Some(v)) => values.push(v),
                Ok(None) => return Err(Error::invalid(format!("unknown module '{name}'"))),
                Err(e) => return Err(Error::internal(format!("building module '{name}': {e}"))),
            }
        }
        let args = mlua::MultiValue::from_vec(values);
        // SAFETY: `exec_raw` pushes `args` (env metatable, then one value per module) and runs
        // the closure in protected mode, so a memory error from lua_createtable /
        // lua_pushlstring / lua_rawset unwinds to mlua's pcall; the closure holds only shared
        // references (no destructors are skipped by such an unwind). Stack effect: the env
        // table replaces slot 1 and everything above it is dropped, leaving exactly one result.
        let env: Table = unsafe {
            self.lua.exec_raw(args, |state| {
                use mlua::ffi;
                let n = ffi::lua_gettop(state) - 1;
                ffi::lua_createtable(state, 0, n + 1);
                ffi::lua_pushlstring(state, c"_G".as_ptr(), 2);
                ffi::lua_pushvalue(state, -2);
                ffi::lua_rawset(state, -3);
                for (i, name) in modules_list.iter().enumerate() {
                    ffi::lua_pushlstring(state, name.as_ptr() as *const _, name.len());
                    ffi::lua_pushvalue(state, 2 + i as std::ffi::c_int);
                    ffi::lua_rawset(state, -3);
                }
                ffi::lua_pushvalue(state, 1);
                ffi::lua_setmetatable(state, -2);
                ffi::lua_replace(state, 1);
                ffi::lua_settop(state, 1);
            })
        }
        .map_err(vm_err)?;
        if let Some(mut d) = self.lua.app_data_mut::<StateData>() {
            d.env = Some(env.clone());
        }
        self.env = Some(env);
        self.uses += 1;
        Ok(())
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
    ///
    /// The state's cache keeps its own copy of `source` (to detect a changed source under the
    /// same name); the engine uses [`load_shared_chunk`](Self::load_shared_chunk) instead, which
    /// keeps a reference to the entry's text.
    pub fn load_chunk(&mut self, name: &str, source: &str) -> Result<Function, Error> {
        self.load(name, source, None)
    }

    /// As [`load_chunk`](Self::load_chunk) for shared text (an entry's id and code): the cache
    /// keeps references instead of copies — one source copy per entry instead of one per live
    /// state (a 2 KB entry × 100k idle processes is 200 MB) — and a hit on the same text is a
    /// pointer comparison.
    pub fn load_shared_chunk(
        &mut self,
        name: &Arc<str>,
        source: &Arc<str>,
    ) -> Result<Function, Error> {
        self.load(name, source, Some((name, source)))
    }

    fn load(
        &mut self,
        name: &str,
        source: &str,
        shared: Option<(&Arc<str>, &Arc<str>)>,
    ) -> Result<Function, Error> {
        let env = self.env().clone();
        let hit = self.chunks.iter().position(|(n, _)| **n == *name);
        if let Some(c) = hit.map(|i| &self.chunks[i].1)
            && (shared.is_some_and(|(_, src)| Arc::ptr_eq(&c.source, src)) || *c.source == *source)
        {
            set_chunk_env(&self.lua, &c.func, &env)?;
            return Ok(c.func.clone());
        }
        let func = match shared_bytecode(name, source) {
            // Another state compiled this source already: undump (~6x cheaper than parsing).
            Some(bc) => self
                .lua
                .load(&bc[..])
                .set_mode(ChunkMode::Binary)
                .set_name(format!("={name}"))
                .set_environment(env)
                .into_function()
                .map_err(|e| compile_err(name, e))?,
            None => {
                let func = self
                    .lua
                    .load(source)
                    .set_name(format!("={name}"))
                    .set_environment(env)
                    .into_function()
                    .map_err(|e| compile_err(name, e))?;
                // Keep debug info: line numbers feed error messages and `print` locations.
                store_bytecode(name, source, func.dump(false));
                func
            }
        };
        let (name, source) = match shared {
            Some((n, s)) => (n.clone(), s.clone()),
            None => (Arc::from(name), Arc::from(source)),
        };
        let chunk = CachedChunk {
            source,
            func: func.clone(),
        };
        match hit {
            Some(i) => self.chunks[i] = (name, chunk),
            None => {
                if self.chunks.capacity() == 0 {
                    // Most states hold one entry chunk for life: no room for four.
                    self.chunks.reserve_exact(1);
                }
                self.chunks.push((name, chunk))
            }
        }
        Ok(func)
    }

    /// Forget the compiled chunk `name` (e.g. its entry was removed).
    pub fn forget_chunk(&mut self, name: &str) {
        self.chunks.retain(|(n, _)| **n != *name);
    }

    /// Lua heap in use, bytes.
    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }
}

/// Bytecode of the last compiled source per chunk name, shared by all states of the OS process.
/// Bytecode is only ever produced by our own compiler from the same source (never loaded from
/// outside), so undumping it is safe; the source text is compared on every lookup.
static BYTECODE: LazyLock<Mutex<BytecodeCache>> =
    LazyLock::new(|| Mutex::new(FnvHashMap::default()));

/// Chunk name → (source text, bytecode compiled from it).
type BytecodeCache = FnvHashMap<Arc<str>, (Box<str>, Arc<[u8]>)>;

fn shared_bytecode(name: &str, source: &str) -> Option<Arc<[u8]>> {
    let cache = BYTECODE.lock().unwrap_or_else(|e| e.into_inner());
    match cache.get(name) {
        Some((src, bc)) if &**src == source => Some(bc.clone()),
        _ => None,
    }
}

fn store_bytecode(name: &str, source: &str, bc: Vec<u8>) {
    let mut cache = BYTECODE.lock().unwrap_or_else(|e| e.into_inner());
    cache.insert(Arc::from(name), (source.into(), Arc::from(bc)));
}

/// Point the `_ENV` upvalue of a main chunk at `env`.
///
/// Lua 5.4 guarantees that a main chunk loaded by `lua_load` has `_ENV` as its first upvalue
/// (even when stripped of debug info), so this is a direct `lua_setupvalue(f, 1)` rather than
/// mlua's name-based search.
fn set_chunk_env(lua: &Lua, func: &Function, env: &Table) -> Result<(), Error> {
    let (f, e) = (Value::Function(func.clone()), Value::Table(env.clone()));
    lua.exec_raw_lua(|raw| {
        let state = raw.state();
        // SAFETY: the state lock is held. lua_checkstack reports failure by value;
        // push_value of two references copies stack slots; lua_setupvalue on a Lua closure's
        // existing upvalue 1 assigns it (with a GC barrier) and never raises or allocates; the
        // stack top is restored before returning.
        unsafe {
            let top = mlua::ffi::lua_gettop(state);
            if mlua::ffi::lua_checkstack(state, 2) == 0 {
                return Err(Error::internal("Lua stack overflow"));
            }
            let pushed = raw.push_value(&f).and_then(|_| raw.push_value(&e));
            if pushed.is_ok() {
                mlua::ffi::lua_setupvalue(state, -2, 1);
            }
            mlua::ffi::lua_settop(state, top);
            pushed.map_err(vm_err)
        }
    })
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
