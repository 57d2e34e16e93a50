//! `process.service`: a supervised process (spec `runtime-internals.md` §6.7, `lua-api.md`
//! §2.4).
//!
//! ```yaml
//! - name: worker
//!   kind: process.service
//!   process: worker_process   # process.lua entry; a bare name gets this entry's namespace
//!   host: app:processes       # process.host entry id (full id; node:control is forbidden)
//!   input: [ ... ]            # optional: each item becomes one argument of main
//!   lifecycle: { auto_start: true, restart: { ... } }
//! ```
//!
//! # Service protocol ([`ProcessService`])
//!
//! * `start`: allocate a native watcher PID ([`Topology::watch`]), then spawn the child with
//!   `parent = watcher, monitor = true`, so the system lifecycle installs the monitor before
//!   the child's first step (no exit can be missed). The first EXIT the watcher receives ends
//!   the run: an error result reports `failed("process failed: …")` (restarted per policy
//!   unless non-retryable — a Lua `main` returning `nil, "msg"` is non-retryable, hence not
//!   restarted, as upstream), a normal result reports `exited` (never restarted).
//! * `stop`: CANCEL from the watcher with reason `"service stopping"`, then wait for the EXIT.
//!   Upstream never killed a child that ignored the CANCEL; here the CANCEL carries a deadline
//!   just inside `stop_timeout`, after which the child is terminated (decision 0064), so a
//!   stopped service never leaves an orphan process behind.
//! * An entry update replaces the process/host/input used by the *next* start; the running
//!   child is left alone (upstream behaviour).
//!
//! # Kind manager ([`install`])
//!
//! A registry listener for `process.service`: create → a new [`ProcessService`] registered with
//! the supervisor inside the registry transaction; update → same object, new spawn settings
//! and lifecycle; delete → removed from the supervisor (stopped first). Invalid entries are
//! rejected with errors naming the entry and the field.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, bounded};
use fnv::FnvHashMap;
use wippy_rt::process::{EVENTS_TOPIC, EXIT, event_kind};
use wippy_rt::{Error, Kind, Pid, SpawnOptions, Value};

use crate::registry::{Entry, EntryEvent, Id, OpKind};
use crate::system::System;
use crate::system::process_manager::{self, ProcessManager, StartOptions, StartRequest};
use crate::system::supervisor::{LifecycleConfig, Service, ServiceCtx, ServiceSpec, Supervisor};
use crate::system::topology::{CancelArg, Topology, Watch};

/// Entry kind handled here.
pub const KIND: &str = "process.service";
/// Reason carried by the CANCEL a stopping service sends its child.
pub const STOP_REASON: &str = "service stopping";
/// Host id a service may not run on.
const FORBIDDEN_HOST: &str = "node:control";

/// Spawns the child process of a service.
pub trait ChildSpawner: Send + Sync + 'static {
    /// Spawn the child with `opts` (which carry `parent = watcher`, `monitor = true`).
    ///
    /// # Errors
    /// The spawn failure (unknown host or process entry, init error, limits…).
    fn spawn(&self, opts: SpawnOptions) -> Result<Pid, Error>;
}

impl<F: Fn(SpawnOptions) -> Result<Pid, Error> + Send + Sync + 'static> ChildSpawner for F {
    fn spawn(&self, opts: SpawnOptions) -> Result<Pid, Error> {
        self(opts)
    }
}

/// One run of the child.
struct Run {
    /// The watcher PID (`from` of the stop CANCEL).
    watcher: Pid,
    child: Pid,
    done: Receiver<()>,
}

/// A supervised process. See the module docs.
pub struct ProcessService {
    id: String,
    topology: Arc<Topology>,
    spawner: RwLock<Arc<dyn ChildSpawner>>,
    run: Mutex<Option<Run>>,
}

impl std::fmt::Debug for ProcessService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessService")
            .field("id", &self.id)
            .field("child", &self.child())
            .finish()
    }
}

impl ProcessService {
    /// A service `id` whose children come from `spawner`.
    pub fn new(id: &str, topology: Arc<Topology>, spawner: Arc<dyn ChildSpawner>) -> Self {
        ProcessService {
            id: id.to_string(),
            topology,
            spawner: RwLock::new(spawner),
            run: Mutex::new(None),
        }
    }

    /// Use `spawner` from the next start on (entry update).
    pub fn set_spawner(&self, spawner: Arc<dyn ChildSpawner>) {
        *self.spawner.write().unwrap_or_else(|e| e.into_inner()) = spawner;
    }

    /// The PID of the current child, if one runs.
    pub fn child(&self) -> Option<Pid> {
        self.run
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|r| self.topology.handle().is_alive(&r.child))
            .map(|r| r.child.clone())
    }
}

impl Service for ProcessService {
    fn start(&self, ctx: ServiceCtx) -> Result<(), Error> {
        let (tx, done) = bounded::<()>(1);
        let ended = AtomicBool::new(false);
        // The watcher unregisters itself when the child's EXIT arrives (the slot is filled
        // before the spawn, so even an immediate exit finds it).
        let slot: Arc<Mutex<Option<Watch>>> = Arc::default();
        let slot2 = slot.clone();
        let watch = self.topology.watch(move |pkg| {
            if pkg.topic != EVENTS_TOPIC
                || pkg.payloads.first().and_then(event_kind) != Some(EXIT)
                || ended.swap(true, SeqCst)
            {
                return;
            }
            match pkg.payloads[0].get_path("result.error") {
                Some(Value::Error(e)) => ctx.failed(e.wrap("process failed")),
                _ => ctx.exited(),
            }
            let _ = tx.try_send(());
            drop(slot2.lock().unwrap_or_else(|e| e.into_inner()).take());
        });
        let watcher = watch.pid().clone();
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(watch);
        let opts = SpawnOptions {
            parent: Some(watcher.clone()),
            monitor: true,
            ..Default::default()
        };
        let spawner = self
            .spawner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let child = match spawner.spawn(opts) {
            Ok(c) => c,
            Err(e) => {
                drop(slot.lock().unwrap_or_else(|e| e.into_inner()).take());
                return Err(e);
            }
        };
        *self.run.lock().unwrap_or_else(|e| e.into_inner()) = Some(Run {
            watcher,
            child,
            done,
        });
        Ok(())
    }

    fn stop(&self, deadline: Instant) -> Result<(), Error> {
        let Some(run) = self.run.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        if run.done.try_recv().is_ok() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        // Terminate a little before the supervisor's own deadline so the stop completes.
        let margin = (left / 10).max(Duration::from_millis(10));
        let arg = CancelArg {
            reason: STOP_REASON.into(),
            deadline: Some(left.saturating_sub(margin)),
        };
        match self.topology.cancel(&run.watcher, &run.child, &arg) {
            Ok(()) => {}
            // Already gone: its EXIT is (or was) on the way.
            Err(e) if e.kind() == &Kind::NOT_FOUND => return Ok(()),
            Err(e) => return Err(e),
        }
        match run.done.recv_deadline(deadline) {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::new(Kind::TIMEOUT, "service stop timed out")
                .with_detail("pid", run.child.as_str())),
        }
    }
}

/// Spawn settings parsed from a `process.service` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceEntry {
    /// The `process.lua` entry id.
    pub process: String,
    /// The host entry id.
    pub host: String,
    /// Arguments of `main`.
    pub input: Vec<Value>,
    /// The lifecycle block.
    pub lifecycle: LifecycleConfig,
}

impl ServiceEntry {
    /// Parse and validate an entry.
    ///
    /// # Errors
    /// `Invalid` `"process.service <id>: <field>: <why>"` ("process is required", "host is
    /// required", "invalid host: node:control", "input must be a list", lifecycle errors).
    pub fn parse(entry: &Entry) -> Result<ServiceEntry, Error> {
        let bad = |why: &str| {
            Error::invalid(format!("{KIND} {}: {why}", entry.id)).with_retryable(Some(false))
        };
        let d = &entry.data;
        let process = match d.get("process").and_then(Value::as_str) {
            Some(p) if !p.is_empty() => Id::parse_relative(p, entry.id.ns()).to_string(),
            _ => return Err(bad("process is required")),
        };
        let host = match d.get("host").and_then(Value::as_str) {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => return Err(bad("host is required")),
        };
        if host == FORBIDDEN_HOST {
            return Err(bad(&format!("invalid host: {FORBIDDEN_HOST}")));
        }
        let input = match d.get("input") {
            None | Some(Value::Nil) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(bad("input must be a list")),
        };
        let lifecycle =
            LifecycleConfig::parse(d.get("lifecycle").unwrap_or(&Value::Nil), entry.id.ns())
                .map_err(|e| bad(e.message()))?;
        Ok(ServiceEntry {
            process,
            host,
            input,
            lifecycle,
        })
    }
}

/// Spawns `process` on `host` through the process manager (the same path as
/// `process.spawn`: factory, method, input, lifecycle options).
struct ManagerSpawner {
    pm: Arc<ProcessManager>,
    entry: ServiceEntry,
}

impl ChildSpawner for ManagerSpawner {
    fn spawn(&self, opts: SpawnOptions) -> Result<Pid, Error> {
        self.pm.start(StartRequest {
            host: self.entry.host.clone(),
            source: self.entry.process.clone(),
            input: self.entry.input.clone(),
            options: StartOptions {
                parent: opts.parent,
                monitor: opts.monitor,
                link: opts.link,
                name: opts.name,
            },
            attrs: opts.attrs,
            ..StartRequest::default()
        })
    }
}

/// The `process.service` kind manager state.
struct Manager {
    pm: Arc<ProcessManager>,
    topology: Arc<Topology>,
    supervisor: Arc<Supervisor>,
    services: Mutex<FnvHashMap<String, Arc<ProcessService>>>,
}

impl Manager {
    fn on_entry(&self, ev: &EntryEvent) -> Result<(), Error> {
        let id = ev.entry.id.to_string();
        if ev.op == OpKind::Delete {
            self.services
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return self.supervisor.remove_in(ev.tx, &id);
        }
        let parsed = ServiceEntry::parse(&ev.entry)?;
        let spawner: Arc<dyn ChildSpawner> = Arc::new(ManagerSpawner {
            pm: self.pm.clone(),
            entry: parsed.clone(),
        });
        let svc = {
            let mut g = self.services.lock().unwrap_or_else(|e| e.into_inner());
            match g.get(&id) {
                Some(s) => {
                    s.set_spawner(spawner);
                    s.clone()
                }
                None => {
                    let s = Arc::new(ProcessService::new(&id, self.topology.clone(), spawner));
                    g.insert(id.clone(), s.clone());
                    s
                }
            }
        };
        self.supervisor.register_in(
            ev.tx,
            ServiceSpec {
                id,
                service: svc,
                config: parsed.lifecycle,
                deps: Vec::new(),
            },
            Some(ev.entry.clone()),
        )
    }
}

/// Install the `process.service` kind manager on `system`'s registry. Needs the topology and
/// the supervisor installed first ([`crate::system::topology::install`],
/// [`crate::system::supervisor::install`]).
///
/// # Errors
/// `Unavailable` when the topology or the supervisor is missing.
pub fn install(system: &Arc<System>) -> Result<(), Error> {
    let topology = Topology::of(&system.handle)
        .ok_or_else(|| Error::unavailable("process.service needs the topology installed first"))?;
    let supervisor = Supervisor::of(&system.handle).ok_or_else(|| {
        Error::unavailable("process.service needs the supervisor installed first")
    })?;
    let m = Manager {
        pm: process_manager::install(system),
        topology,
        supervisor,
        services: Mutex::new(FnvHashMap::default()),
    };
    system
        .registry
        .handlers()
        .add_listener_fn(KIND, "process.service", move |ev| m.on_entry(ev));
    Ok(())
}
