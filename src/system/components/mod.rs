//! The standard boot components of the system layer and the services they publish.
//!
//! | component | depends on | load | start / stop |
//! |---|---|---|---|
//! | `pidgen` | — | publishes the node id ([`keys::NODE_ID`]) | — |
//! | `dispatcher` | — | checks the table is still open | start checks it was frozen |
//! | `registry` | — | plugs the registry's event sink into the bus, adds the supervisor's dependency patterns, publishes [`keys::REGISTRY`] | stop unplugs the sink |
//! | `finder` | registry | publishes [`keys::FINDER`] | — |
//! | `supervisor` | registry | installs the [`Supervisor`] (registry transaction participant), publishes [`keys::SUPERVISOR`] | stop: `shutdown` (every service stopped, last started first) |
//! | `topology` | pidgen, dispatcher | installs the topology: links, monitors, names, the system lifecycle hook ([`crate::system::topology::install`]) | — |
//! | `lifecycle` | topology, supervisor, lua.engine | `process.service` manager, the process system's Lua surface | — |
//! | `factory` | registry | publishes [`keys::FACTORIES`] | — |
//! | `functions` | registry, dispatcher | publishes [`keys::FUNCTIONS`] | — |
//!
//! `topology` and `lifecycle` are the places where the supervision/topology work (branch
//! `system`) plugs in: `topology`'s load installs the topology (links, monitors, names, the
//! system lifecycle hook), `lifecycle`'s load is where further process lifecycle hooks go;
//! the dependencies are already declared.
//!
//! * [`supervision`] — the supervision API boot and the kind managers use
//!   (`crate::system::supervisor`).

/// The supervision API used by boot and the kind managers.
pub use crate::system::supervisor as supervision;

use std::sync::Arc;
use std::time::Instant;

use wippy_rt::Error;
use wippy_rt::Value;

use crate::boot::component::run_until;
use crate::boot::{BootCx, BusSink, Component};
use crate::registry::{Entry, NullSink, Registry};

pub use supervision::{LifecycleConfig, Service, ServiceSpec, Supervisor};

/// Typed [`AppContext`](wippy_rt::AppContext) keys of the standard services.
pub mod keys {
    use wippy_rt::app_context::Key;

    use super::RegistryFinder;
    use crate::registry::Registry;
    use crate::system::{Factories, Functions};
    /// The relay node id.
    pub static NODE_ID: Key<String> = Key::new("relay.node_id");
    /// The registry.
    pub static REGISTRY: Key<Registry> = Key::new("registry");
    /// Read-only queries on the registry.
    pub static FINDER: Key<RegistryFinder> = Key::new("registry.finder");
    /// The supervisor (the supervision module's own slot).
    pub use super::supervision::SUPERVISOR;
    /// Process factories.
    pub static FACTORIES: Key<Factories> = Key::new("process.factories");
    /// The function registry.
    pub static FUNCTIONS: Key<Functions> = Key::new("functions");
}

/// Read-only finder queries on the current registry version (for components that must not
/// change the registry).
#[derive(Debug)]
pub struct RegistryFinder {
    registry: Arc<Registry>,
}

impl RegistryFinder {
    /// Entries matching a criteria bag (`{".kind": "http.*", "meta.type": "api"}`).
    pub fn find(&self, criteria: &Value) -> Arc<Vec<Arc<Entry>>> {
        let q = self.registry.query(criteria);
        self.registry.find(&q)
    }
}

/// The standard components, in no particular order (the loader orders them).
pub fn standard() -> Vec<Arc<dyn Component>> {
    vec![
        Arc::new(PidGenComponent),
        Arc::new(DispatcherComponent),
        Arc::new(RegistryComponent),
        Arc::new(FinderComponent),
        Arc::new(SupervisorComponent),
        Arc::new(TopologyComponent),
        Arc::new(LifecycleComponent),
        Arc::new(FactoryComponent),
        Arc::new(FunctionsComponent),
    ]
}

/// `pidgen`.
#[derive(Debug)]
pub struct PidGenComponent;

impl Component for PidGenComponent {
    fn name(&self) -> &'static str {
        "pidgen"
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        let h = &cx.system.handle;
        let node = h.node().id().to_string();
        let stamped = h.pidgen().node();
        if stamped != node && !(node == "local" && stamped.is_empty()) {
            return Err(Error::internal(format!(
                "pid generator stamps node {stamped:?} but the relay node is {node:?}"
            )));
        }
        log::info!(target: "wippy::boot", "relay node {node}");
        h.app_context().set(&keys::NODE_ID, node);
        Ok(())
    }
}

/// `dispatcher`.
#[derive(Debug)]
pub struct DispatcherComponent;

impl Component for DispatcherComponent {
    fn name(&self) -> &'static str {
        "dispatcher"
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        if cx.system.handle.dispatcher().is_frozen() {
            return Err(Error::internal(
                "dispatcher is frozen before the components loaded",
            ));
        }
        Ok(())
    }
    fn start(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        if !cx.system.handle.dispatcher().is_frozen() {
            return Err(Error::internal("dispatcher was not frozen before start"));
        }
        Ok(())
    }
}

/// `registry`.
#[derive(Debug)]
pub struct RegistryComponent;

impl Component for RegistryComponent {
    fn name(&self) -> &'static str {
        "registry"
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        let sys = cx.system;
        sys.registry
            .set_event_sink(Arc::new(BusSink::new(sys.handle.bus().clone())));
        let r = sys.registry.resolver();
        r.register("data.lifecycle.requires");
        r.register("data.lifecycle.depends_on");
        sys.handle
            .app_context()
            .set_arc(&keys::REGISTRY, sys.registry.clone());
        Ok(())
    }
    fn stop(&self, cx: &BootCx<'_>, _deadline: Instant) -> Result<(), Error> {
        cx.system.registry.set_event_sink(Arc::new(NullSink));
        Ok(())
    }
}

/// `finder`.
#[derive(Debug)]
pub struct FinderComponent;

impl Component for FinderComponent {
    fn name(&self) -> &'static str {
        "finder"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["registry"]
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        cx.system.handle.app_context().set(
            &keys::FINDER,
            RegistryFinder {
                registry: cx.system.registry.clone(),
            },
        );
        Ok(())
    }
}

/// `supervisor`.
#[derive(Debug)]
pub struct SupervisorComponent;

impl Component for SupervisorComponent {
    fn name(&self) -> &'static str {
        "supervisor"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["registry"]
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        supervision::install(cx.system)?;
        Ok(())
    }
    fn stop(&self, cx: &BootCx<'_>, deadline: Instant) -> Result<(), Error> {
        let Some(sup) = Supervisor::of(&cx.system.handle) else {
            return Ok(());
        };
        // A service overrunning its stop must not hold the rest of the shutdown.
        match run_until("wippy-supervisor-stop", deadline, move || sup.shutdown()) {
            Some(r) => match r.failed.into_iter().next() {
                None => Ok(()),
                Some((id, e)) => Err(e.wrap(format!("service {id}"))),
            },
            None => Err(Error::new(
                wippy_rt::Kind::TIMEOUT,
                "services did not stop before the shutdown deadline",
            )),
        }
    }
}

/// `topology`: links, monitors, names and the system lifecycle hook (branch `system`).
#[derive(Debug)]
pub struct TopologyComponent;

impl Component for TopologyComponent {
    fn name(&self) -> &'static str {
        "topology"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["pidgen", "dispatcher"]
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        crate::system::topology::install(cx.system)?;
        Ok(())
    }
}

/// `lifecycle`: the `process.service` kind manager and the process system's Lua surface
/// (monitored/linked spawns, monitor/link, cancel/terminate, names, spawner, upgrade, the
/// `events` and `registry` modules) — [`crate::services::service::install`] and
/// [`crate::lua::modules::process_system::install`]. After `lua.engine`, whose `process`
/// module the surface extends.
#[derive(Debug)]
pub struct LifecycleComponent;

impl Component for LifecycleComponent {
    fn name(&self) -> &'static str {
        "lifecycle"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["topology", "supervisor", "lua.engine"]
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        crate::services::service::install(cx.system)?;
        crate::lua::modules::process_system::install(cx.system)?;
        Ok(())
    }
}

/// `factory`.
#[derive(Debug)]
pub struct FactoryComponent;

impl Component for FactoryComponent {
    fn name(&self) -> &'static str {
        "factory"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["registry"]
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        cx.system
            .handle
            .app_context()
            .set_arc(&keys::FACTORIES, cx.system.factories.clone());
        Ok(())
    }
}

/// `functions`.
#[derive(Debug)]
pub struct FunctionsComponent;

impl Component for FunctionsComponent {
    fn name(&self) -> &'static str {
        "functions"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["registry", "dispatcher"]
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        cx.system
            .handle
            .app_context()
            .set_arc(&keys::FUNCTIONS, cx.system.functions.clone());
        Ok(())
    }
}
