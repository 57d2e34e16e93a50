//! The standard boot components of the system layer and the services they publish.
//!
//! | component | depends on | load | start / stop |
//! |---|---|---|---|
//! | `pidgen` | — | publishes the node id ([`keys::NODE_ID`]) | — |
//! | `dispatcher` | — | checks the table is still open | start checks it was frozen |
//! | `registry` | — | plugs the registry's event sink into the bus, adds the supervisor's dependency patterns, publishes [`keys::REGISTRY`] | stop unplugs the sink |
//! | `finder` | registry | publishes [`keys::FINDER`] | — |
//! | `supervisor` | registry | starts the [`Supervisor`] event loop, publishes [`keys::SUPERVISOR`] | stop stops all services (last started first), ends the loop |
//! | `topology` | pidgen, dispatcher | — (links, monitors, names: next issue) | — |
//! | `lifecycle` | topology, supervisor | — (process lifecycle hooks: next issue) | — |
//! | `factory` | registry | publishes [`keys::FACTORIES`] | — |
//! | `functions` | registry, dispatcher | publishes [`keys::FUNCTIONS`] | — |
//!
//! `topology` and `lifecycle` are the places where the supervision/topology work plugs in:
//! their `load` is where that work registers its dispatcher commands and runtime lifecycle
//! hooks (`Handle::add_lifecycle`), with the dependencies already declared.
//!
//! * [`lifecycle`] — the `lifecycle` block of supervised entries;
//! * [`supervisor`] — the [`Service`] contract, `service.register` / `service.remove`, and the
//!   supervisor's service table.

pub mod lifecycle;
pub mod supervisor;

use std::sync::Arc;
use std::time::Instant;

use wippy_rt::Error;
use wippy_rt::Value;

use crate::boot::{BootCx, BusSink, Component};
use crate::registry::{Entry, NullSink, Registry};

pub use lifecycle::{LifecycleConfig, RestartPolicy, Startup};
pub use supervisor::{Registration, Service, ServiceEvent, ServiceStatus, Supervisor};

/// Typed [`AppContext`](wippy_rt::AppContext) keys of the standard services.
pub mod keys {
    use wippy_rt::app_context::Key;

    use super::{RegistryFinder, Supervisor};
    use crate::registry::Registry;
    use crate::system::{Factories, Functions, System};

    /// The whole [`System`] bundle (set by boot before any component loads).
    pub static SYSTEM: Key<System> = Key::new("wippy.system");
    /// The relay node id.
    pub static NODE_ID: Key<String> = Key::new("relay.node_id");
    /// The registry.
    pub static REGISTRY: Key<Registry> = Key::new("registry");
    /// Read-only queries on the registry.
    pub static FINDER: Key<RegistryFinder> = Key::new("registry.finder");
    /// The supervisor.
    pub static SUPERVISOR: Key<Supervisor> = Key::new("supervisor");
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
        let sup = Supervisor::start(cx.system.handle.bus())?;
        cx.system.handle.app_context().set(&keys::SUPERVISOR, sup);
        Ok(())
    }
    fn stop(&self, cx: &BootCx<'_>, deadline: Instant) -> Result<(), Error> {
        let Some(sup) = cx.system.handle.app_context().get(&keys::SUPERVISOR) else {
            return Ok(());
        };
        let errors = sup.stop_all(deadline);
        sup.close();
        match errors.into_iter().next() {
            None => Ok(()),
            Some((id, e)) => Err(e.wrap(format!("service {id}"))),
        }
    }
}

/// `topology` (filled by the topology work: links, monitors, names).
#[derive(Debug)]
pub struct TopologyComponent;

impl Component for TopologyComponent {
    fn name(&self) -> &'static str {
        "topology"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["pidgen", "dispatcher"]
    }
    fn load(&self, _cx: &BootCx<'_>) -> Result<(), Error> {
        Ok(())
    }
}

/// `lifecycle` (filled by the supervision work: process lifecycle hooks and events).
#[derive(Debug)]
pub struct LifecycleComponent;

impl Component for LifecycleComponent {
    fn name(&self) -> &'static str {
        "lifecycle"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["topology", "supervisor"]
    }
    fn load(&self, _cx: &BootCx<'_>) -> Result<(), Error> {
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
