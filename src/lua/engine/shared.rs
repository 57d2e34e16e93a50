//! The per-application engine object: everything Lua processes and function calls share.
//!
//! One [`Engine`] exists per [`System`] (stored in the runtime's app context under
//! [`ENGINE_KEY`]). It owns the state factory, the code store, the function pools, and reaches
//! the rest of the system (registry, factories, functions, shutdown, process manager) through
//! the `System`. Module callbacks reach it through the running process's core.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fnv::FnvHashMap;
use wippy_rt::app_context::Key;
use wippy_rt::{Error, Pid};

use super::code::CodeStore;
use super::pool::FnPool;
use super::preempt::PreemptSettings;
use crate::lua::vm::{StateFactory, VmConfig};
use crate::system::System;
use crate::system::process_manager::ProcessManager;

/// App-context key of the engine.
pub static ENGINE_KEY: Key<Engine> = Key::new("lua.engine");

/// Engine tuning.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// State factory settings (memory limit per state, pool of warm states).
    pub vm: VmConfig,
    /// Preemption (time slice, instruction budget).
    pub preempt: PreemptSettings,
    /// States created ahead of time at install.
    pub prewarm: usize,
    /// Idle time after which a lazy pool's worker is destroyed (upstream: 30 s).
    pub pool_idle_timeout: Duration,
    /// Period of pool maintenance (reaping, adaptive scaling; upstream controller: 500 ms).
    pub pool_tick: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            vm: VmConfig::default(),
            preempt: PreemptSettings::default(),
            // 64 warm states absorb a burst of spawns at boot without creating states on the
            // spawner's thread (~30 µs each); ~1 MB.
            prewarm: 64,
            pool_idle_timeout: Duration::from_secs(30),
            pool_tick: Duration::from_millis(500),
        }
    }
}

/// See the module docs.
pub struct Engine {
    /// The system this engine belongs to.
    pub sys: Arc<System>,
    /// Warm, recycled Lua states for processes.
    pub factory: StateFactory,
    /// Lua entries.
    pub code: CodeStore,
    /// Function pools by entry id.
    pub pools: RwLock<FnvHashMap<String, Arc<FnPool>>>,
    /// Spawning and exec.
    pub pm: Arc<ProcessManager>,
    /// Tuning.
    pub config: EngineConfig,
    /// Pool host generation counter (`<id>#lua.<n>`).
    pub host_seq: AtomicU64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The engine of `sys`, if installed.
    pub fn of(sys: &System) -> Option<Arc<Engine>> {
        sys.handle.app_context().get(&ENGINE_KEY)
    }

    /// The current pool of function `id`.
    pub fn pool(&self, id: &str) -> Option<Arc<FnPool>> {
        self.pools
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Terminate `pid` if it is still alive (cancelled callee).
    pub fn terminate(&self, pid: &Pid) {
        let _ = self.sys.handle.terminate(pid);
    }

    /// The process manager of `sys`.
    pub fn pm(&self) -> &Arc<ProcessManager> {
        &self.pm
    }
}

/// Error for a module used where the engine is missing.
#[cold]
pub(crate) fn no_engine() -> Error {
    Error::internal("lua engine is not installed")
}
