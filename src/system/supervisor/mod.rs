//! The supervisor: services with restart policies, started and stopped in dependency order
//! (spec `runtime-internals.md` §6, `lua-api.md` §2.0).
//!
//! Table of contents:
//! * [`config`] — the `lifecycle` block ([`LifecycleConfig`], [`RestartPolicy`]);
//! * [`service`] — the [`Service`] contract and the [`ServiceCtx`] a service reports through;
//! * [`state`] — [`Status`], [`ServiceState`], the `supervisor` bus events;
//! * [`backoff`] — growing restart delays with jitter;
//! * `controller` — the per-service restart state machine;
//! * `engine` — the single loop thread running every controller, with its timer heap;
//! * `pool` — threads for (possibly blocking) `start`/`stop` calls;
//! * [`sequencer`] — dependency-ordered start/stop of service sets;
//! * [`tx`] — registry integration: registrations inside registry transactions, transitions
//!   on commit, the `service.start` / `service.stop` bus commands.
//!
//! [`Supervisor`] is the façade. Kind managers register services (inside a registry
//! transaction through [`Supervisor::register_in`], or directly with
//! [`Supervisor::register`]); the supervisor owns their lifecycle from then on.

pub mod backoff;
pub mod config;
mod controller;
mod engine;
mod pool;
pub mod sequencer;
pub mod service;
pub mod state;
pub mod tx;

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Instant;

use fnv::FnvHashMap;
use wippy_rt::app_context::Key;
use wippy_rt::{Bus, Error, Kind};

pub use config::{LifecycleConfig, RestartPolicy, Startup};
pub use sequencer::TransitionReport;
pub use service::{Service, ServiceCtx, is_terminal};
pub use state::{Desired, ServiceState, Status};
pub use tx::install;

use controller::WaitMode;
use engine::{Engine, Op};

/// Application-context slot of the installed [`Supervisor`].
pub static SUPERVISOR: Key<Supervisor> = Key::new("wippy.system.supervisor");

/// A service as registered by its kind manager.
pub struct ServiceSpec {
    /// Service id (the registry id of the entry).
    pub id: String,
    /// The service object.
    pub service: Arc<dyn Service>,
    /// Its lifecycle configuration.
    pub config: LifecycleConfig,
    /// Further service ids it depends on (found through registry references); ids that are
    /// not registered services are ignored. (`config.requires` is added automatically.)
    pub deps: Vec<String>,
}

impl std::fmt::Debug for ServiceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSpec")
            .field("id", &self.id)
            .field("config", &self.config)
            .field("deps", &self.deps)
            .finish_non_exhaustive()
    }
}

/// What the sequencer needs to know about a registered service.
pub(crate) struct Spec {
    pub(crate) config: Arc<LifecycleConfig>,
    pub(crate) deps: Vec<Arc<str>>,
}

impl Spec {
    /// `requires` ∪ registry-derived dependencies, deduplicated.
    pub(crate) fn all_deps(&self) -> Vec<Arc<str>> {
        let mut v: Vec<Arc<str>> = self
            .config
            .requires
            .iter()
            .map(|s| Arc::from(s.as_str()))
            .collect();
        for d in &self.deps {
            if !v.contains(d) {
                v.push(d.clone());
            }
        }
        v
    }
}

/// See the module docs.
pub struct Supervisor {
    engine: Engine,
    specs: RwLock<FnvHashMap<Arc<str>, Arc<Spec>>>,
    /// Serialises start/stop transitions (upstream's transition mutex).
    transition: Mutex<()>,
    /// Registry integration state (open transaction, queued transitions).
    pub(crate) txs: tx::TxState,
    bus: Option<Bus>,
    /// Queued jobs hold the supervisor weakly (a dropped supervisor runs no transitions).
    weak: Weak<Supervisor>,
    /// Set by the first [`Supervisor::shutdown`] (later calls do nothing).
    down: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("services", &self.specs.read().map(|s| s.len()).unwrap_or(0))
            .finish()
    }
}

impl Supervisor {
    /// A supervisor publishing state changes on `bus` (none in unit tests).
    pub fn new(bus: Option<Bus>) -> Arc<Supervisor> {
        Arc::new_cyclic(|weak| Supervisor {
            engine: Engine::start(bus.clone()),
            specs: RwLock::new(FnvHashMap::default()),
            transition: Mutex::new(()),
            txs: tx::TxState::default(),
            bus,
            weak: weak.clone(),
            down: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The installed supervisor of a runtime, if any.
    pub fn of(handle: &wippy_rt::Handle) -> Option<Arc<Supervisor>> {
        handle.app_context().get(&SUPERVISOR)
    }

    /// Register (or replace) a service now. A new service object for an existing id replaces
    /// the old one: a running old object is stopped and, if it was wanted running, the new
    /// one is started (upstream kept the old controller; spec §14.18). The same object with a
    /// new configuration only updates the configuration (used from the next start on).
    pub fn register(&self, spec: ServiceSpec) {
        let id: Arc<str> = Arc::from(spec.id.as_str());
        let config = Arc::new(spec.config);
        let deps = spec.deps.iter().map(|d| Arc::from(d.as_str())).collect();
        self.specs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id.clone(),
                Arc::new(Spec {
                    config: config.clone(),
                    deps,
                }),
            );
        if let Some(b) = &self.bus {
            b.publish(wippy_rt::BusEvent::new(
                state::SYSTEM,
                state::KIND_REGISTER,
                &*id,
                wippy_rt::Value::Nil,
            ));
        }
        self.engine.send(Op::Register {
            id,
            service: spec.service,
            config,
        });
    }

    /// Stop a service (and its dependents) and forget it.
    ///
    /// # Errors
    /// None so far (kept for future remote services); stop failures are logged.
    pub fn remove(&self, id: &str) -> Result<(), Error> {
        let _t = self.transition.lock().unwrap_or_else(|e| e.into_inner());
        self.remove_locked(id);
        Ok(())
    }

    pub(crate) fn remove_locked(&self, id: &str) {
        self.remove_many_locked(&[id.to_string()]);
    }

    /// Stop `ids` (and their dependents) in one dependency-ordered transition — independent
    /// services stop in parallel — then forget them.
    pub(crate) fn remove_many_locked(&self, ids: &[String]) {
        let report = self.stop_locked(ids);
        for (s, e) in &report.failed {
            log::warn!(target: "wippy::supervisor", service = s.as_str(); "stop before removal failed: {e}");
        }
        let waits: Vec<_> = ids
            .iter()
            .map(|id| {
                self.specs
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(id.as_str());
                let (tx, rx) = crossbeam_channel::bounded(1);
                self.engine.send(Op::Remove {
                    id: Arc::from(id.as_str()),
                    reply: Some(tx),
                });
                rx
            })
            .collect();
        for (id, rx) in ids.iter().zip(waits) {
            let _ = rx.recv();
            if let Some(b) = &self.bus {
                b.publish(wippy_rt::BusEvent::new(
                    state::SYSTEM,
                    state::KIND_REMOVE,
                    id.as_str(),
                    wippy_rt::Value::Nil,
                ));
            }
        }
    }

    /// Start `id` and its dependencies; blocks until it runs, exits terminally, or gives up.
    ///
    /// # Errors
    /// The start failure (see [`TransitionReport::into_result`]).
    pub fn start(&self, id: &str) -> Result<(), Error> {
        self.start_services(&[id.to_string()], true, None)
            .into_result()
            .map(|_| ())
    }

    /// Like [`Supervisor::start`] but waits at most until `deadline` (a service still
    /// retrying then keeps retrying in the background; the call returns `Ok`).
    ///
    /// # Errors
    /// The start failure.
    pub fn start_until(&self, id: &str, deadline: Instant) -> Result<(), Error> {
        self.start_services(&[id.to_string()], true, Some(deadline))
            .into_result()
            .map(|_| ())
    }

    /// Request a start without waiting (the service comes up asynchronously; dependencies are
    /// not started).
    pub fn start_async(&self, id: &str) {
        self.engine.send(Op::Start {
            id: Arc::from(id),
            mode: WaitMode::UntilRunning,
            reply: None,
        });
    }

    /// Stop `id` and every active service depending on it.
    ///
    /// # Errors
    /// The first stop failure (timeouts).
    pub fn stop(&self, id: &str) -> Result<(), Error> {
        let r = self.stop_services(&[id.to_string()]);
        match r.failed.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// The state of one service.
    pub fn state(&self, id: &str) -> Option<ServiceState> {
        self.engine
            .states()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Every service's state, sorted by id (the CLI's view).
    pub fn states(&self) -> Vec<ServiceState> {
        let mut v: Vec<ServiceState> = self
            .engine
            .states()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Registered service ids (sorted).
    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .specs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .map(|k| k.to_string())
            .collect();
        v.sort();
        v
    }

    /// Stop every service in reverse dependency order, then end the supervisor loop. Later
    /// requests fail with "supervisor is shutting down"; a second call does nothing.
    pub fn shutdown(&self) -> TransitionReport {
        if self.down.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return TransitionReport::default();
        }
        self.txs.close();
        let ids = self.ids();
        let report = self.stop_services(&ids);
        self.engine.shutdown();
        report
    }
}

#[cold]
pub(crate) fn unknown_service(id: &str) -> Error {
    Error::new(Kind::NOT_FOUND, format!("service not found: {id}")).with_detail("id", id)
}
