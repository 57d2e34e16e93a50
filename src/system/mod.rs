//! System layer: services between the execution core ([`wippy_rt`]) and the application —
//! process factories, the function registry, programmatic shutdown with exit codes, and (filled
//! in by later work) topology, supervision and lifecycle.
//!
//! [`System`] is the bundle of long-lived services every component receives at boot. It is
//! built once by `boot` and then shared read-only (`Arc<System>`).

pub mod components;
pub mod factory;
pub mod functions;
pub mod process_manager;
pub mod shutdown;

use std::sync::Arc;

use wippy_rt::Handle;

use crate::config::Config;
use crate::registry::Registry;

pub use factory::{Factories, ProcessFactory};
pub use functions::{CallRequest, FunctionHandler, Functions, Reply};
pub use shutdown::Shutdown;

/// The services every component sees.
pub struct System {
    /// The execution core.
    pub handle: Handle,
    /// The registry (single source of truth).
    pub registry: Arc<Registry>,
    /// The effective configuration.
    pub config: Arc<Config>,
    /// Process factories by registry entry id (`process.lua` entries register here).
    pub factories: Arc<Factories>,
    /// Callable functions by registry entry id (`function.lua` entries register here).
    pub functions: Arc<Functions>,
    /// Programmatic shutdown and the exit code.
    pub shutdown: Arc<Shutdown>,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System").finish_non_exhaustive()
    }
}
