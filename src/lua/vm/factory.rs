//! The state factory: acquire a prepared state for a process, release it for reuse.
//!
//! A fresh full `Lua::new()` costs ~31 µs and a bare state ~12 µs on the reference machine,
//! against a budget of 5 µs for spawn+exit of a trivial process. So states are **recycled**:
//! `release` unbinds the process environment (the only thing a process can write, see
//! [`super::sandbox`]) and parks the state in a bounded pool; `acquire` pops a parked state
//! and binds a new environment — a table allocation plus the module installs.
//!
//! Policy knobs ([`VmConfig`]): pool capacity (states beyond it are dropped on release), a
//! retirement count (a state that hosted that many processes is dropped, bounding slow heap
//! growth from cached chunks), and the memory limit per state. A state whose process hit the
//! memory limit, or that the engine marks as poisoned (`release_poisoned`), is never reused.
//!
//! Thread-safety: states are `Send` (mlua feature `send`); the pool is a mutex-protected stack
//! (LIFO keeps recently used, cache-warm states in use), held only for a push or a pop.

use std::sync::{Mutex, MutexGuard};

use wippy_rt::Error;

use super::{LuaState, VmConfig};

/// Creates, recycles and pools [`LuaState`]s.
pub struct StateFactory {
    cfg: VmConfig,
    pool: Mutex<Vec<LuaState>>,
}

impl StateFactory {
    /// A factory with `cfg`; the pool starts empty (see [`prewarm`](Self::prewarm)).
    pub fn new(cfg: VmConfig) -> StateFactory {
        StateFactory {
            pool: Mutex::new(Vec::with_capacity(cfg.pool_capacity)),
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &VmConfig {
        &self.cfg
    }

    /// Create `n` states ahead of time (up to the pool capacity).
    pub fn prewarm(&self, n: usize) -> Result<(), Error> {
        for _ in 0..n {
            if self.pooled() >= self.cfg.pool_capacity {
                break;
            }
            let st = LuaState::new(&self.cfg)?;
            self.pool().push(st);
        }
        Ok(())
    }

    /// Number of parked states.
    pub fn pooled(&self) -> usize {
        self.pool().len()
    }

    /// A state with a fresh process environment holding `modules` (e.g. an entry's
    /// `modules:` list). Unknown module names are an `Invalid` error.
    pub fn acquire(&self, modules: &[&str]) -> Result<LuaState, Error> {
        let parked = self.pool().pop();
        let mut st = match parked {
            Some(st) => st,
            None => LuaState::new(&self.cfg)?,
        };
        match st.bind(modules) {
            Ok(()) => Ok(st),
            Err(e) => {
                st.unbind();
                self.park(st);
                Err(e)
            }
        }
    }

    /// Return a state after its process finished; it is cleaned and parked for reuse.
    ///
    /// The caller must have dropped every Lua handle (threads, functions, tables) that belongs
    /// to the finished process; handles it keeps would keep that garbage alive.
    pub fn release(&self, mut st: LuaState) {
        st.unbind();
        if self.cfg.max_uses != 0 && st.uses() >= self.cfg.max_uses {
            return;
        }
        if let Some(limit) = self.cfg.memory_limit
            && st.used_memory() > limit / 2
        {
            // Close to the limit after the process: drop rather than reuse a bloated heap.
            return;
        }
        self.park(st);
    }

    /// Drop a state instead of reusing it (the engine saw an invariant break, a memory error,
    /// or a process killed mid-run whose stack cannot be trusted).
    pub fn release_poisoned(&self, st: LuaState) {
        drop(st);
    }

    fn pool(&self) -> MutexGuard<'_, Vec<LuaState>> {
        // A panic while holding the lock leaves only a Vec push/pop half-done at worst: the
        // Vec itself stays valid, so the poison flag is ignored.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn park(&self, st: LuaState) {
        let mut pool = self.pool();
        if pool.len() < self.cfg.pool_capacity {
            pool.push(st);
        }
    }
}
