//! `wippy` — the Wippy application runtime.
//!
//! Layers (each depends only on those below): infrastructure and core live in the
//! [`wippy_rt`] crate (executor, reactor, relay, bus, dispatcher, PIDs, values); this crate
//! holds the registry, configuration and project loading, boot, the process system, services,
//! the Lua front end and engine, and the CLI. See `docs/architecture.md`.

pub use wippy_rt as rt;

pub mod bench;
pub mod boot;
pub mod civil;
pub mod cli;
pub mod config;
pub mod loader;
pub mod lua;
pub mod registry;
pub mod services;
pub mod system;
