//! The kind-manager components (services layer) and the integration points with the Lua
//! engine.
//!
//! | component | depends on | load |
//! |---|---|---|
//! | `services.host` | registry, supervisor, lifecycle, factory | `process.host` manager ([`crate::services::host::install`]) |
//! | `lua.engine` | registry, dispatcher, factory, functions, topology | `process.lua` / `function.lua` / `library.lua` listeners and the engine's dispatcher commands |
//! | `services.terminal` | lua.engine, supervisor | `terminal.host` manager |
//! | `services.data` | registry, supervisor, dispatcher, functions, lua.engine | `db.sql.*`, `store.*`, `queue.*`, `env.*`, `fs.*` managers ([`crate::services::sql::component`]) |
//!
//! All three run during the load phase, i.e. before the dispatcher is frozen and before any
//! registry entry is loaded, which is what the engine's installers require.
//!
//! # Integration points
//!
//! [`install_lua_engine`], [`install_terminal`] and [`terminal_exec`] are the only call sites
//! of the engine's API (`wippy::lua::engine::install`, `wippy::services::terminal::install`,
//! `wippy::services::terminal::exec`).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use wippy_rt::{Error, Pid};

use super::component::{BootCx, Component};
use crate::services::host::HostManager;
use crate::system::System;

/// True once the Lua engine is wired in (the integration points below are real calls).
pub const ENGINE_AVAILABLE: bool = true;

/// Install the Lua engine (load phase).
///
/// MERGE(engine): `crate::lua::engine::install(sys)`.
pub fn install_lua_engine(sys: &Arc<System>) -> Result<(), Error> {
    crate::lua::engine::install(sys);
    Ok(())
}

/// Install the `terminal.host` manager (load phase).
///
/// MERGE(engine): `crate::services::terminal::install(sys)`.
pub fn install_terminal(sys: &Arc<System>) -> Result<(), Error> {
    crate::services::terminal::install(sys);
    Ok(())
}

/// Run process entry `entry_id` with `args` on a terminal host (`host`, or the only one).
/// When the process completes, the terminal host triggers the shutdown with its exit code.
///
/// MERGE(engine): `crate::services::terminal::exec(sys, host, entry_id, args)`.
///
/// # Errors
/// Until the engine is merged: `Unavailable` "terminal host not available".
pub fn terminal_exec(
    sys: &Arc<System>,
    host: Option<&str>,
    entry_id: &str,
    args: Vec<String>,
) -> Result<Pid, Error> {
    crate::services::terminal::exec(sys, host, entry_id, args)
}

/// The kind-manager components.
pub fn components() -> Vec<Arc<dyn Component>> {
    vec![
        Arc::new(super::env::EnvComponent),
        Arc::new(HostComponent::default()),
        Arc::new(LuaEngineComponent),
        Arc::new(TerminalComponent),
        crate::services::sql::component::component(),
    ]
}

/// `services.host`.
#[derive(Debug, Default)]
pub struct HostComponent {
    manager: OnceLock<Arc<HostManager>>,
}

impl HostComponent {
    /// The manager (after load).
    pub fn manager(&self) -> Option<&Arc<HostManager>> {
        self.manager.get()
    }
}

impl Component for HostComponent {
    fn name(&self) -> &'static str {
        "services.host"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["registry", "supervisor", "lifecycle", "factory"]
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        let m = crate::services::host::install(cx.system)?;
        let _ = self.manager.set(m);
        Ok(())
    }
    fn stop(&self, cx: &BootCx<'_>, _deadline: Instant) -> Result<(), Error> {
        if let Some(m) = self.manager.get() {
            m.shutdown(&cx.system.registry);
        }
        Ok(())
    }
}

/// `lua.engine`.
#[derive(Debug)]
pub struct LuaEngineComponent;

impl Component for LuaEngineComponent {
    fn name(&self) -> &'static str {
        "lua.engine"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["registry", "dispatcher", "factory", "functions", "topology"]
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        install_lua_engine(cx.system)
    }
}

/// `services.terminal`.
#[derive(Debug)]
pub struct TerminalComponent;

impl Component for TerminalComponent {
    fn name(&self) -> &'static str {
        "services.terminal"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["lua.engine", "supervisor"]
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        install_terminal(cx.system)
    }
}
