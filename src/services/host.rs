//! `process.host` kind manager (spec `runtime-internals.md` §5, `lua-api.md` §2.3).
//!
//! ```yaml
//! - name: processes
//!   kind: process.host
//!   host: {workers: 8, queue_size: 1024, local_queue_size: 256, max_processes: 10000}
//!   lifecycle: {auto_start: true}
//! ```
//!
//! # Entry config
//!
//! `host.workers` (default: CPUs), `host.queue_size` (1024) and `host.local_queue_size` (256)
//! are validated with the original's messages ("workers must be greater than 0", "queue size
//! must be greater than 0", "local queue size must be greater than 0"); zero takes the
//! default, unknown fields are ignored. All hosts share the runtime's pinned worker pool
//! (`docs/decisions/0001-hosts-share-workers.md`), so these three are accepted for
//! compatibility and have no effect. `host.max_processes` (absent or 0 = unlimited), which
//! the original parsed nowhere, **is** enforced: a spawn beyond it fails with `LimitExceeded`
//! "max processes limit exceeded".
//!
//! # Behaviour
//!
//! * **create** — the runtime host is added at once, so the host is routable immediately;
//!   a [`HostService`] is registered with the supervisor (inside the registry transaction,
//!   `Supervisor::register_in`). Until the
//!   supervisor starts it, spawns fail with `Unavailable` "host is not running";
//!   `auto_start` hosts start when the registry transaction commits.
//! * **update** — applied **in place**: the same host keeps running and routable, its
//!   processes keep running, and the new limit applies to the next spawn; the registration is
//!   repeated with the new lifecycle. (The original deleted and re-added the host inside the
//!   transaction, killing every process, and its supervisor then kept the controller of the
//!   stopped host, so the updated host never ran again — spec §14 item 18,
//!   `docs/decisions/0052-process-host-live-update.md`.)
//! * **delete** — the service is removed from the supervisor with the transaction; the host
//!   itself is stopped (CANCEL,
//!   wait `lifecycle.stop_timeout`, force) and removed from the runtime only when the
//!   transaction **commits**, on a background thread so the registry is not held. If the
//!   transaction is rolled back, the rollback's re-create finds the host still in place and
//!   keeps it, processes included.
//! * the manager registers the dependency patterns `data.host` and `data.process`, so entries
//!   naming a host are applied after it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wippy_rt::{Error, Handle, HostConfig, Kind, Lifecycle, Pid, SpawnOptions, Value};

use crate::registry::{Entry, EntryEvent, HandlerId, OpKind, TxEvent, TxPhase};
use crate::system::System;
use crate::system::components::supervision::{
    LifecycleConfig, Service, ServiceCtx, ServiceSpec, Supervisor,
};

/// The kind this manager handles.
pub const KIND: &str = "process.host";
/// Default `host.queue_size` (accepted, no effect: hosts share the runtime's queues).
pub const DEFAULT_QUEUE_SIZE: usize = 1024;
/// Default `host.local_queue_size` (accepted, no effect).
pub const DEFAULT_LOCAL_QUEUE_SIZE: usize = 256;
/// Participant and listener name.
const NAME: &str = "services.host";

/// The `host:` block of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSettings {
    /// `workers` (validated; hosts share the runtime's workers).
    pub workers: usize,
    /// `queue_size` (validated; no effect).
    pub queue_size: usize,
    /// `local_queue_size` (validated; no effect).
    pub local_queue_size: usize,
    /// `max_processes` (`None` = unlimited).
    pub max_processes: Option<usize>,
}

fn int_field(m: &Value, key: &str) -> Result<i64, Error> {
    match m.get(key) {
        None | Some(Value::Nil) => Ok(0),
        Some(v @ (Value::Int(_) | Value::Float(_))) => v.as_i64().ok_or_else(|| {
            Error::invalid(format!(
                "invalid host config: {key}: expected an integer, got {v:?}"
            ))
        }),
        Some(v) => Err(Error::invalid(format!(
            "invalid host config: {key}: expected an integer, got {}",
            v.type_name()
        ))),
    }
}

impl HostSettings {
    /// Parse and validate the `host` block of an entry's data (missing = defaults).
    ///
    /// # Errors
    /// `Invalid` with the original's messages.
    pub fn parse(data: &Value) -> Result<HostSettings, Error> {
        let empty = Value::Map(Vec::new());
        let m = match data.get("host") {
            None | Some(Value::Nil) => &empty,
            Some(m @ Value::Map(_)) => m,
            Some(Value::Array(a)) if a.is_empty() => &empty,
            Some(v) => {
                return Err(Error::invalid(format!(
                    "invalid host config: host must be a mapping, got {}",
                    v.type_name()
                )));
            }
        };
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as i64;
        let or = |v: i64, d: i64| if v == 0 { d } else { v };
        let workers = or(int_field(m, "workers")?, cpus);
        let queue = or(int_field(m, "queue_size")?, DEFAULT_QUEUE_SIZE as i64);
        let local = or(
            int_field(m, "local_queue_size")?,
            DEFAULT_LOCAL_QUEUE_SIZE as i64,
        );
        let max = int_field(m, "max_processes")?;
        let fail = |msg: &str| Err(Error::invalid(msg).with_retryable(Some(false)));
        if workers <= 0 {
            return fail("workers must be greater than 0");
        }
        if queue <= 0 {
            return fail("queue size must be greater than 0");
        }
        if local <= 0 {
            return fail("local queue size must be greater than 0");
        }
        if max < 0 {
            return fail("max processes must not be negative");
        }
        Ok(HostSettings {
            workers: workers as usize,
            queue_size: queue as usize,
            local_queue_size: local as usize,
            max_processes: (max > 0).then_some(max as usize),
        })
    }
}

/// State shared by a host service and its runtime lifecycle hook.
#[derive(Debug)]
struct HostShared {
    id: String,
    running: AtomicBool,
    /// 0 = unlimited.
    max: AtomicUsize,
    live: AtomicUsize,
    /// The runtime host was stopped (it refuses work) and must be re-added to run again.
    retired: AtomicBool,
    settings: Mutex<HostSettings>,
}

/// The runtime lifecycle hook of a host: admission (running, limit) and the live count.
struct Admission(Arc<HostShared>);

impl Lifecycle for Admission {
    fn on_start(&self, _pid: &Pid, _opts: &SpawnOptions) -> Result<(), Error> {
        let s = &self.0;
        if !s.running.load(SeqCst) {
            return Err(Error::new(Kind::UNAVAILABLE, "host is not running")
                .with_retryable(Some(false))
                .with_detail("host_id", s.id.as_str()));
        }
        let prev = s.live.fetch_add(1, SeqCst);
        let max = s.max.load(SeqCst);
        if max > 0 && prev >= max {
            s.live.fetch_sub(1, SeqCst);
            return Err(
                Error::new(Kind::LIMIT_EXCEEDED, "max processes limit exceeded")
                    .with_detail("host_id", s.id.as_str())
                    .with_detail("max_processes", max as i64),
            );
        }
        Ok(())
    }

    fn on_complete(&self, _pid: &Pid, _result: &Result<Value, Error>) {
        self.0.live.fetch_sub(1, SeqCst);
    }
}

/// One `process.host` entry as a supervised service.
pub struct HostService {
    shared: Arc<HostShared>,
    handle: Handle,
    /// Held for the whole of a stop, so a second stopper waits for the first.
    stopping: Mutex<()>,
}

impl std::fmt::Debug for HostService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostService")
            .field("id", &self.shared.id)
            .field("running", &self.is_running())
            .field("live", &self.live())
            .finish()
    }
}

impl HostService {
    /// Create the runtime host `id` (routable, not running).
    ///
    /// # Errors
    /// `AlreadyExists` "host already exists" when the runtime has a host with that id.
    pub fn create(handle: &Handle, id: &str, settings: HostSettings) -> Result<HostService, Error> {
        let shared = Arc::new(HostShared {
            id: id.to_string(),
            running: AtomicBool::new(false),
            max: AtomicUsize::new(settings.max_processes.unwrap_or(0)),
            live: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            settings: Mutex::new(settings),
        });
        let svc = HostService {
            shared,
            handle: handle.clone(),
            stopping: Mutex::new(()),
        };
        svc.add_runtime_host()?;
        Ok(svc)
    }

    fn add_runtime_host(&self) -> Result<(), Error> {
        self.handle.add_host(
            &self.shared.id,
            HostConfig {
                // Enforced by the admission hook so that it can change while running.
                max_processes: None,
                lifecycle: Some(Arc::new(Admission(self.shared.clone()))),
            },
        )
    }

    /// The host id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// True while started.
    pub fn is_running(&self) -> bool {
        self.shared.running.load(SeqCst)
    }

    /// Live processes admitted by this host.
    pub fn live(&self) -> usize {
        self.shared.live.load(SeqCst)
    }

    /// The current settings.
    pub fn settings(&self) -> HostSettings {
        self.shared
            .settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Apply new settings in place (the host keeps running; the limit applies to the next
    /// spawn).
    pub fn reconfigure(&self, settings: HostSettings) {
        self.shared
            .max
            .store(settings.max_processes.unwrap_or(0), SeqCst);
        *self
            .shared
            .settings
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = settings;
    }

    /// Stop and unregister from the runtime (delete).
    fn retire(&self, timeout: Duration) {
        if let Err(e) = Service::stop(self, Instant::now() + timeout) {
            log::warn!(target: "wippy::services::host", "host {}: stop failed: {e}", self.id());
        }
        if let Err(e) = self.handle.remove_host(self.id()) {
            log::debug!(target: "wippy::services::host", "host {}: remove: {e}", self.id());
        }
        log::info!(target: "wippy::services::host", "process host {} removed", self.id());
    }
}

impl Service for HostService {
    fn start(&self, _ctx: ServiceCtx) -> Result<(), Error> {
        let _g = self.stopping.lock().unwrap_or_else(|p| p.into_inner());
        if self.shared.retired.swap(false, SeqCst) {
            // Stopped earlier: the runtime host refuses work for good; replace it.
            let _ = self.handle.remove_host(self.id());
            self.add_runtime_host()?;
        }
        self.shared.running.store(true, SeqCst);
        log::info!(target: "wippy::services::host", "process host {} running", self.id());
        Ok(())
    }

    fn stop(&self, deadline: Instant) -> Result<(), Error> {
        let _g = self.stopping.lock().unwrap_or_else(|p| p.into_inner());
        if !self.shared.running.swap(false, SeqCst) {
            return Ok(());
        }
        self.shared.retired.store(true, SeqCst);
        let timeout = deadline.saturating_duration_since(Instant::now());
        match self.handle.stop_host(self.id(), timeout) {
            Ok(r) => {
                log::info!(target: "wippy::services::host",
                    "process host {} stopped: {} cancelled, {} exited, {} forced", self.id(), r.cancelled, r.exited, r.forced);
                Ok(())
            }
            // Already removed from the runtime: nothing left to stop.
            Err(e) if e.kind() == &Kind::NOT_FOUND => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The kind manager (one per system).
pub struct HostManager {
    handle: Handle,
    supervisor: Weak<Supervisor>,
    hosts: Mutex<HashMap<String, Arc<HostService>>>,
    /// Deleted in the open transaction: retired on commit, kept on rollback.
    retiring: Mutex<Vec<(Arc<HostService>, Duration)>>,
    /// Hosts being stopped after a committed delete.
    draining: Mutex<HashMap<String, JoinHandle<()>>>,
    registrations: Mutex<Vec<HandlerId>>,
}

impl std::fmt::Debug for HostManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostManager")
            .field("hosts", &self.ids())
            .finish()
    }
}

/// Install the `process.host` manager into `sys`'s registry (load phase, after the
/// supervisor).
///
/// # Errors
/// No supervisor installed; a transaction participant with the manager's name exists.
pub fn install(sys: &Arc<System>) -> Result<Arc<HostManager>, Error> {
    let sup = Supervisor::of(&sys.handle).ok_or_else(|| {
        Error::internal("the process.host manager needs the supervisor (install it first)")
    })?;
    let m = Arc::new(HostManager {
        handle: sys.handle.clone(),
        supervisor: Arc::downgrade(&sup),
        hosts: Mutex::new(HashMap::new()),
        retiring: Mutex::new(Vec::new()),
        draining: Mutex::new(HashMap::new()),
        registrations: Mutex::new(Vec::new()),
    });
    let r = &sys.registry;
    r.resolver().register("data.host");
    r.resolver().register("data.process");
    let l = m.clone();
    let lid = r
        .handlers()
        .add_listener_fn(KIND, NAME, move |ev| l.on_entry(ev));
    let p = m.clone();
    let pid = r.handlers().add_participant_fn(NAME, move |ev| {
        p.on_tx(ev);
        Ok(())
    })?;
    m.registrations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend([lid, pid]);
    Ok(m)
}

impl HostManager {
    /// Managed host ids (sorted).
    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock_hosts().keys().cloned().collect();
        v.sort();
        v
    }

    /// The service of a managed host.
    pub fn get(&self, id: &str) -> Option<Arc<HostService>> {
        self.lock_hosts().get(id).cloned()
    }

    fn lock_hosts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<HostService>>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn supervisor(&self) -> Result<Arc<Supervisor>, Error> {
        self.supervisor
            .upgrade()
            .ok_or_else(|| Error::unavailable("supervisor is shut down"))
    }

    fn on_entry(&self, ev: &EntryEvent) -> Result<(), Error> {
        let id = ev.entry.id.to_string();
        match ev.op {
            OpKind::Create | OpKind::Update => {
                let settings = HostSettings::parse(&ev.entry.data)?;
                let lifecycle = lifecycle_of(&ev.entry)?;
                let sup = self.supervisor()?;
                let existed = self.get(&id).is_some();
                let svc = self.upsert(&id, settings)?;
                let spec = ServiceSpec {
                    id: id.clone(),
                    service: svc.clone(),
                    config: lifecycle,
                    deps: Vec::new(),
                };
                if let Err(e) = sup.register_in(ev.tx, spec, Some(ev.entry.clone())) {
                    if !existed {
                        self.lock_hosts().remove(&id);
                        svc.retire(Duration::ZERO);
                    }
                    return Err(e);
                }
                Ok(())
            }
            OpKind::Delete => {
                if self.get(&id).is_none() {
                    return Ok(());
                }
                self.supervisor()?.remove_in(ev.tx, &id)?;
                if let Some(svc) = self.lock_hosts().remove(&id) {
                    let stop_timeout = lifecycle_of(&ev.entry)
                        .map(|l| l.stop_timeout)
                        .unwrap_or_else(|_| LifecycleConfig::default().stop_timeout);
                    self.retiring
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((svc, stop_timeout));
                }
                Ok(())
            }
        }
    }

    /// The service for `id` with `settings` applied: existing (updated in place), taken back
    /// from the open transaction's deletions, or new.
    fn upsert(&self, id: &str, settings: HostSettings) -> Result<Arc<HostService>, Error> {
        if let Some(svc) = self.get(id) {
            svc.reconfigure(settings);
            log::debug!(target: "wippy::services::host", "process host {id} reconfigured");
            return Ok(svc);
        }
        let revived = {
            let mut r = self.retiring.lock().unwrap_or_else(|p| p.into_inner());
            r.iter()
                .position(|(s, _)| s.id() == id)
                .map(|i| r.remove(i).0)
        };
        let svc = match revived {
            Some(svc) => {
                svc.reconfigure(settings);
                svc
            }
            None => {
                let draining = self
                    .draining
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(id);
                if let Some(h) = draining {
                    let _ = h.join();
                }
                let svc = Arc::new(HostService::create(&self.handle, id, settings)?);
                log::debug!(target: "wippy::services::host", "process host {id} created");
                svc
            }
        };
        self.lock_hosts().insert(id.to_string(), svc.clone());
        Ok(svc)
    }

    /// Hosts deleted in a transaction are retired when it ends. On commit they are the
    /// transaction's deletions; after a rollback they are the hosts the failed transaction had
    /// created (the rollback deletes them), while hosts it had deleted were taken back by the
    /// rollback's re-create ([`HostManager::upsert`]). Either way they go.
    fn on_tx(&self, ev: &TxEvent) {
        if matches!(ev.phase, TxPhase::Begin) {
            return;
        }
        let retiring =
            std::mem::take(&mut *self.retiring.lock().unwrap_or_else(|p| p.into_inner()));
        for (svc, timeout) in retiring {
            let id = svc.id().to_string();
            let worker = svc.clone();
            match std::thread::Builder::new()
                .name(format!("retire-{id}"))
                .spawn(move || worker.retire(timeout))
            {
                Ok(h) => {
                    self.draining
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id, h);
                }
                Err(_) => svc.retire(timeout),
            }
        }
    }

    /// Unregister from the registry and wait for hosts still being stopped (component stop).
    pub fn shutdown(&self, registry: &crate::registry::Registry) {
        for id in self
            .registrations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            registry.handlers().remove(id);
        }
        let draining: Vec<JoinHandle<()>> = self
            .draining
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, h)| h)
            .collect();
        for h in draining {
            let _ = h.join();
        }
    }
}

fn lifecycle_of(entry: &Entry) -> Result<LifecycleConfig, Error> {
    LifecycleConfig::parse(
        entry.data.get("lifecycle").unwrap_or(&Value::Nil),
        entry.id.ns(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn settings_validation_uses_the_original_messages() {
        let ok = HostSettings::parse(&yaml("{host: {workers: 4, max_processes: 10}}")).unwrap();
        assert_eq!(ok.workers, 4);
        assert_eq!(ok.queue_size, DEFAULT_QUEUE_SIZE);
        assert_eq!(ok.local_queue_size, DEFAULT_LOCAL_QUEUE_SIZE);
        assert_eq!(ok.max_processes, Some(10));
        let d = HostSettings::parse(&Value::Nil).unwrap();
        assert!(d.workers >= 1);
        assert_eq!(d.max_processes, None);
        let e = |s: &str| HostSettings::parse(&yaml(s)).unwrap_err().to_string();
        assert_eq!(e("{host: {workers: -1}}"), "workers must be greater than 0");
        assert_eq!(
            e("{host: {queue_size: -5}}"),
            "queue size must be greater than 0"
        );
        assert_eq!(
            e("{host: {local_queue_size: -5}}"),
            "local queue size must be greater than 0"
        );
        assert_eq!(
            e("{host: {max_processes: -1}}"),
            "max processes must not be negative"
        );
        assert_eq!(
            e("{host: {workers: many}}"),
            "invalid host config: workers: expected an integer, got string"
        );
        assert_eq!(
            e("{host: 3}"),
            "invalid host config: host must be a mapping, got number"
        );
    }
}
