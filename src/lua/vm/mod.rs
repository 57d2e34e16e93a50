//! The Lua VM foundation: patched Lua 5.4 states, their sandbox, recycling and budgets.
//!
//! - [`state`]: [`LuaState`] — one `mlua::Lua` with the sandboxed globals, the process
//!   environment bound to it and its compiled-chunk cache.
//! - [`factory`]: [`StateFactory`] — `acquire(modules)` / `release(state)` with a warm pool.
//! - [`sandbox`]: the base globals and the per-process `_ENV` layout (spec §3.1/§3.3).
//! - [`readonly`]: read-only shared library/module tables (patched VM flag).
//! - [`lazy`]: library tables whose fields are built on first read (per-state memory).
//! - [`data`]: per-state run-time data (process identity, current env).
//! - [`budget`]: memory limit and the instruction-count preemption hook.
//! - [`raise`]: raising clean Lua values (strings, error objects) from Rust callbacks.
//! - [`protect`]: running Lua functions so raised *values* (error objects) reach Rust intact.
//! - [`stack`]: moving mlua values to and from a raw Lua stack (for C functions).
//!
//! Numbers print like go-lua (`tostring(10/2) == "5"`) thanks to the patched C sources in
//! `vendor/lua-src` (see `vendor/lua-src/PATCHES.md`, decision 0030).

pub mod budget;
pub mod data;
pub mod factory;
mod helpers;
pub mod lazy;
pub mod protect;
pub mod raise;
pub mod readonly;
pub mod sandbox;
pub(crate) mod stack;
pub mod state;

pub use budget::{PreemptConfig, Preemption};
pub use data::{ProcessInfo, StateData};
pub use factory::StateFactory;
pub use state::LuaState;

/// State factory configuration.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// Lua heap limit per state in bytes (None = unlimited).
    pub memory_limit: Option<usize>,
    /// Maximum number of parked states.
    pub pool_capacity: usize,
    /// Retire a state after it hosted this many processes (0 = never).
    pub max_uses: u32,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            // 64 MiB: generous for app code, small enough to stop a runaway table builder
            // long before the machine swaps.
            memory_limit: Some(64 << 20),
            // 1024 parked states ≈ 20 MB worst case: enough to absorb bursts of short-lived
            // processes (HTTP handlers) on a few cores.
            pool_capacity: 1024,
            // Cached chunks and lazily built libraries grow a state slowly; retiring after
            // 10k processes bounds that growth at ~0.01% extra creation cost.
            max_uses: 10_000,
        }
    }
}
