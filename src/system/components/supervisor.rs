//! The supervision contract and the supervisor's service table (spec `runtime-internals.md`
//! §6.2–§6.4).
//!
//! # Contract
//!
//! A kind manager turns an entry into a [`Service`] and registers it by publishing
//! `supervisor:service.register` (path = entry id, data = an opaque [`Registration`]) **before**
//! it accepts the registry operation — [`register`] does that; on delete it publishes
//! `supervisor:service.remove` ([`remove`]). The supervisor subscribes to the systems
//! `registry` and `supervisor` and is transactional like the original:
//!
//! * `registry.begin` opens a transaction; registrations and removals are collected;
//! * `registry.discard` drops them;
//! * `registry.commit` applies them in id order: removals stop and drop their service; a new
//!   id creates a controller; `auto_start` services that are not running are started,
//!   dependencies (`lifecycle.requires`) first;
//! * outside a transaction a registration is applied at once (the original rejected it; this
//!   lets services registered by components at start-up take part).
//!
//! Because the registry publishes all of a transition's events from one thread and the bus
//! keeps per-publisher FIFO order, every registration of a transaction reaches the supervisor
//! before that transaction's commit.
//!
//! # Updates (fix of upstream bug §14 item 18)
//!
//! The original created a controller only for *new* ids, so an updated entry whose manager
//! built a new service object kept the old controller (whose service had been stopped) and the
//! new service never ran. Here a registration for a known id whose service object differs
//! (`Arc::ptr_eq`) **replaces** the controller: the old service is stopped if it was running
//! and the new one is started if the old one was running or the entry is `auto_start`. The
//! same object with a new lifecycle only updates the lifecycle (and starts it when it became
//! `auto_start`).
//!
//! # What the next issue adds
//!
//! This is the table, the transaction protocol, ordered start/stop with timeouts and the
//! `service.update` events. Restart policies (the controller state machine of §6.6: retries
//! with backoff, monitoring the status channel a service returns, `stable_threshold`),
//! parallel start/stop per dependency level and `service.start`/`service.stop` commands are
//! filled in by the supervision work; their entry points are [`Supervisor::apply`] and
//! [`Supervisor::start_service`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use wippy_rt::{Bus, BusEvent, Error, Kind, Value};

use super::lifecycle::{LifecycleConfig, Startup};
use crate::config::format_duration;
use crate::registry::Id;

/// Bus system of supervisor events.
pub const SYSTEM: &str = "supervisor";
/// `service.register` (data: [`Registration`]).
pub const SERVICE_REGISTER: &str = "service.register";
/// `service.remove`.
pub const SERVICE_REMOVE: &str = "service.remove";
/// `service.update` (data: `{status, details}`), published on every status change.
pub const SERVICE_UPDATE: &str = "service.update";
/// Internal: reply once everything published before has been processed.
const SYNC: &str = "supervisor.sync";
/// Internal: end the event loop.
const CLOSE: &str = "supervisor.close";

/// What a running service may report on its status channel.
#[derive(Clone, Debug)]
pub enum ServiceEvent {
    /// Informational detail (`service.update` details).
    Status(String),
    /// The service failed (restartable).
    Failed(Error),
    /// The service exited for good (never restarted).
    Exited,
}

/// A supervised service (spec §6.2).
pub trait Service: Send + Sync + 'static {
    /// Start. `Ok(None)`: running with no status stream; `Ok(Some(rx))`: running, reporting on
    /// `rx` (a closed channel means stopped/failed).
    fn start(&self) -> Result<Option<Receiver<ServiceEvent>>, Error>;
    /// Stop within `timeout`. Stopping a service that is not running must succeed.
    fn stop(&self, timeout: Duration) -> Result<(), Error>;
}

/// The payload of `service.register`.
pub struct Registration {
    /// The service.
    pub service: Arc<dyn Service>,
    /// Its lifecycle.
    pub lifecycle: LifecycleConfig,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("lifecycle", &self.lifecycle)
            .finish_non_exhaustive()
    }
}

/// Publish `supervisor:service.register` for `id`.
pub fn register(bus: &Bus, id: &Id, service: Arc<dyn Service>, lifecycle: LifecycleConfig) {
    let reg: Arc<Registration> = Arc::new(Registration { service, lifecycle });
    bus.publish(BusEvent::new(
        SYSTEM,
        SERVICE_REGISTER,
        id.to_string(),
        Value::Opaque(reg),
    ));
}

/// Publish `supervisor:service.remove` for `id`.
pub fn remove(bus: &Bus, id: &Id) {
    bus.publish(BusEvent::new(
        SYSTEM,
        SERVICE_REMOVE,
        id.to_string(),
        Value::Nil,
    ));
}

/// Service status (spec §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceStatus {
    /// Registered, never started.
    Unknown,
    /// `start` in progress.
    Starting,
    /// Running.
    Running,
    /// `stop` in progress.
    Stopping,
    /// Stopped.
    Stopped,
    /// Exited for good.
    Exited,
    /// Start or run failed.
    Failed,
}

impl ServiceStatus {
    /// The lowercase name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Unknown => "unknown",
            ServiceStatus::Starting => "starting",
            ServiceStatus::Running => "running",
            ServiceStatus::Stopping => "stopping",
            ServiceStatus::Stopped => "stopped",
            ServiceStatus::Exited => "exited",
            ServiceStatus::Failed => "failed",
        }
    }
}

/// One change collected during a registry transaction.
#[derive(Clone)]
pub enum Action {
    /// Register (or re-register) a service.
    Register(String, Arc<Registration>),
    /// Remove a service.
    Remove(String),
}

struct Controller {
    service: Arc<dyn Service>,
    lifecycle: LifecycleConfig,
    status: ServiceStatus,
    /// The status stream of the running service (monitored by the next issue's controller).
    _events: Option<Receiver<ServiceEvent>>,
}

#[derive(Default)]
struct Table {
    services: BTreeMap<String, Controller>,
    /// Ids in the order they reached `Running` (stop runs in reverse).
    started: Vec<String>,
    /// Pending actions of the open registry transaction.
    tx: Option<Vec<Action>>,
    /// Required services that failed to start since the last sync.
    failures: Vec<(String, Error)>,
    /// Set by [`Supervisor::stop_all`]: nothing starts any more.
    stopped: bool,
}

struct Inner {
    bus: Bus,
    table: Mutex<Table>,
}

/// The supervisor: the service table and its event loop (see the module docs).
pub struct Supervisor {
    inner: Arc<Inner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("services", &self.services())
            .finish()
    }
}

type SyncReply = Sender<Vec<(String, Error)>>;

impl Supervisor {
    /// Subscribe to `registry` and `supervisor` events on `bus` and start the event loop.
    ///
    /// # Errors
    /// The bus refused the subscription (closed or full).
    pub fn start(bus: &Bus) -> Result<Supervisor, Error> {
        let sub = bus.subscribe("(registry|supervisor)", "")?;
        let inner = Arc::new(Inner {
            bus: bus.clone(),
            table: Mutex::new(Table::default()),
        });
        let loop_inner = inner.clone();
        let thread = std::thread::Builder::new()
            .name("wippy-supervisor".into())
            .spawn(move || {
                while let Some(ev) = sub.recv() {
                    if ev.system == SYSTEM && ev.kind == CLOSE {
                        break;
                    }
                    loop_inner.on_event(&ev);
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the supervisor thread: {e}")))?;
        Ok(Supervisor {
            inner,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Wait until every event published before this call has been processed (auto-start
    /// services of committed transactions are then started) and return the required
    /// services that failed to start since the previous sync.
    ///
    /// # Errors
    /// `Timeout` when the event loop does not answer within `timeout`; `Unavailable` once
    /// the supervisor is closed.
    pub fn sync(&self, timeout: Duration) -> Result<Vec<(String, Error)>, Error> {
        let (tx, rx) = crossbeam_channel::bounded::<Vec<(String, Error)>>(1);
        let reply: Arc<SyncReply> = Arc::new(tx);
        self.inner
            .bus
            .publish(BusEvent::new(SYSTEM, SYNC, "", Value::Opaque(reply)));
        match rx.recv_timeout(timeout) {
            Ok(v) => Ok(v),
            Err(RecvTimeoutError::Timeout) => Err(Error::new(
                Kind::TIMEOUT,
                format!(
                    "supervisor did not settle within {}",
                    format_duration(timeout)
                ),
            )),
            Err(RecvTimeoutError::Disconnected) => Err(Error::unavailable("supervisor is closed")),
        }
    }

    /// Apply actions now (the commit step; also used outside transactions).
    pub fn apply(&self, actions: Vec<Action>) {
        self.inner.apply(actions);
    }

    /// Start one registered service (no-op when running).
    ///
    /// # Errors
    /// `NotFound` for an unknown id; the service's start error.
    pub fn start_service(&self, id: &str) -> Result<(), Error> {
        let mut t = self.inner.lock();
        if !t.services.contains_key(id) {
            return Err(Error::not_found(format!("service not found: {id}")));
        }
        self.inner.start_one(&mut t, id)
    }

    /// The status of one service.
    pub fn status(&self, id: &str) -> Option<ServiceStatus> {
        self.inner.lock().services.get(id).map(|c| c.status)
    }

    /// Every service with its status, by id.
    pub fn services(&self) -> Vec<(String, ServiceStatus)> {
        self.inner
            .lock()
            .services
            .iter()
            .map(|(k, c)| (k.clone(), c.status))
            .collect()
    }

    /// Stop every running service, the last started first, each within its `stop_timeout`
    /// capped by `deadline`; nothing starts afterwards. Returns the stop errors.
    pub fn stop_all(&self, deadline: Instant) -> Vec<(String, Error)> {
        let mut t = self.inner.lock();
        t.stopped = true;
        let mut errors = Vec::new();
        while let Some(id) = t.started.pop() {
            if let Err(e) = self.inner.stop_one(&mut t, &id, Some(deadline)) {
                errors.push((id, e));
            }
        }
        errors
    }

    /// End the event loop (after [`Supervisor::stop_all`]) and drop every service (services
    /// hold runtime handles; dropping them here breaks the reference cycle through the app
    /// context).
    pub fn close(&self) {
        {
            let mut t = self.inner.lock();
            t.stopped = true;
            t.services.clear();
            t.started.clear();
            t.tx = None;
        }
        self.inner
            .bus
            .publish(BusEvent::new(SYSTEM, CLOSE, "", Value::Nil));
        let h = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = h
            && h.thread().id() != std::thread::current().id()
        {
            // A closed bus never delivers CLOSE; the loop then ends when the bus drops the
            // subscription, so do not wait for it here.
            if !self.inner.bus.is_closed() {
                let _ = h.join();
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn on_event(&self, ev: &BusEvent) {
        match (ev.system.as_str(), ev.kind.as_str()) {
            ("registry", "registry.begin") => {
                let mut t = self.lock();
                if t.tx.is_some() {
                    log::warn!(target: "wippy::supervisor", "registry transaction began while another was open; dropping the earlier one");
                }
                t.tx = Some(Vec::new());
            }
            ("registry", "registry.commit") => {
                let actions = self.lock().tx.take().unwrap_or_default();
                if !actions.is_empty() {
                    self.apply(actions);
                }
            }
            ("registry", "registry.discard") => {
                self.lock().tx = None;
            }
            (SYSTEM, SERVICE_REGISTER) => {
                let Some(reg) = opaque::<Registration>(&ev.data) else {
                    log::error!(target: "wippy::supervisor", "service.register for {} without a registration payload", ev.path);
                    return;
                };
                self.queue(Action::Register(ev.path.clone(), reg));
            }
            (SYSTEM, SERVICE_REMOVE) => self.queue(Action::Remove(ev.path.clone())),
            (SYSTEM, SYNC) => {
                if let Some(reply) = opaque::<SyncReply>(&ev.data) {
                    let failures = std::mem::take(&mut self.lock().failures);
                    let _ = reply.send(failures);
                }
            }
            _ => {}
        }
    }

    fn queue(&self, a: Action) {
        let mut t = self.lock();
        if let Some(tx) = t.tx.as_mut() {
            tx.push(a);
            return;
        }
        drop(t);
        self.apply(vec![a]);
    }

    fn apply(&self, actions: Vec<Action>) {
        // Net effect per id: the last action wins (remove then register = replace).
        let mut net: BTreeMap<String, Action> = BTreeMap::new();
        for a in actions {
            let id = match &a {
                Action::Register(id, _) | Action::Remove(id) => id.clone(),
            };
            net.insert(id, a);
        }
        let mut t = self.lock();
        let mut to_start: Vec<String> = Vec::new();
        for (id, a) in net {
            match a {
                Action::Remove(_) => {
                    if t.services.contains_key(&id) {
                        if let Err(e) = self.stop_one(&mut t, &id, None) {
                            log::error!(target: "wippy::supervisor", "service {id}: stop on removal failed: {e}");
                        }
                        t.services.remove(&id);
                        t.started.retain(|s| s != &id);
                        log::debug!(target: "wippy::supervisor", "service {id} removed");
                    }
                }
                Action::Register(_, reg) => {
                    let was_running = match t.services.get(&id) {
                        Some(c) if Arc::ptr_eq(&c.service, &reg.service) => None,
                        Some(c) => Some(c.status == ServiceStatus::Running),
                        None => Some(false),
                    };
                    match was_running {
                        None => {
                            let c = t.services.get_mut(&id).expect("checked");
                            c.lifecycle = reg.lifecycle.clone();
                            if c.lifecycle.auto_start && c.status != ServiceStatus::Running {
                                to_start.push(id);
                            }
                        }
                        Some(running) => {
                            if running {
                                if let Err(e) = self.stop_one(&mut t, &id, None) {
                                    log::error!(target: "wippy::supervisor", "service {id}: stopping the replaced service failed: {e}");
                                }
                                t.started.retain(|s| s != &id);
                            }
                            let auto = reg.lifecycle.auto_start;
                            t.services.insert(
                                id.clone(),
                                Controller {
                                    service: reg.service.clone(),
                                    lifecycle: reg.lifecycle.clone(),
                                    status: ServiceStatus::Unknown,
                                    _events: None,
                                },
                            );
                            if running || auto {
                                to_start.push(id);
                            }
                        }
                    }
                }
            }
        }
        if t.stopped {
            return;
        }
        for id in order_by_requires(&t, to_start) {
            if let Err(e) = self.start_one(&mut t, &id) {
                let required = t
                    .services
                    .get(&id)
                    .is_some_and(|c| c.lifecycle.startup == Startup::Required);
                if required {
                    log::error!(target: "wippy::supervisor", "service {id} failed to start: {e}");
                    t.failures.push((id, e));
                } else {
                    log::warn!(target: "wippy::supervisor", "optional service {id} failed to start: {e}");
                }
            }
        }
    }

    fn set_status(&self, t: &mut Table, id: &str, status: ServiceStatus, details: &str) {
        if let Some(c) = t.services.get_mut(id) {
            c.status = status;
        }
        self.bus.publish(BusEvent::new(
            SYSTEM,
            SERVICE_UPDATE,
            id,
            Value::Map(vec![
                (Value::str("status"), Value::str(status.as_str())),
                (Value::str("details"), Value::str(details)),
            ]),
        ));
    }

    fn start_one(&self, t: &mut Table, id: &str) -> Result<(), Error> {
        let Some(c) = t.services.get(id) else {
            return Err(Error::not_found(format!("service not found: {id}")));
        };
        if c.status == ServiceStatus::Running {
            return Ok(());
        }
        if t.stopped {
            return Err(Error::unavailable("supervisor is stopping"));
        }
        let missing: Vec<String> = c
            .lifecycle
            .requires
            .iter()
            .map(|r| r.to_string())
            .filter(|r| {
                t.services
                    .get(r)
                    .is_none_or(|d| d.status != ServiceStatus::Running)
            })
            .collect();
        if !missing.is_empty() {
            let e = Error::unavailable(format!(
                "service startup blocked by missing dependencies: {}",
                missing.join(", ")
            ));
            self.set_status(t, id, ServiceStatus::Failed, &e.to_string());
            return Err(e);
        }
        let service = c.service.clone();
        let timeout = c.lifecycle.start_timeout;
        self.set_status(t, id, ServiceStatus::Starting, "attempt 1");
        match call_with_timeout(move || service.start(), timeout) {
            Some(Ok(events)) => {
                if let Some(c) = t.services.get_mut(id) {
                    c._events = events;
                }
                self.set_status(t, id, ServiceStatus::Running, "");
                t.started.push(id.to_string());
                log::info!(target: "wippy::supervisor", "service {id} started");
                Ok(())
            }
            Some(Err(e)) => {
                self.set_status(t, id, ServiceStatus::Failed, &e.to_string());
                Err(e)
            }
            None => {
                self.set_status(t, id, ServiceStatus::Failed, "start timeout");
                Err(Error::new(Kind::TIMEOUT, "service start timed out")
                    .with_detail("timeout", format_duration(timeout)))
            }
        }
    }

    fn stop_one(&self, t: &mut Table, id: &str, deadline: Option<Instant>) -> Result<(), Error> {
        let Some(c) = t.services.get(id) else {
            return Ok(());
        };
        if !matches!(c.status, ServiceStatus::Running | ServiceStatus::Starting) {
            return Ok(());
        }
        let mut timeout = c.lifecycle.stop_timeout;
        if let Some(d) = deadline {
            timeout = timeout.min(d.saturating_duration_since(Instant::now()));
        }
        let service = c.service.clone();
        self.set_status(t, id, ServiceStatus::Stopping, "");
        // Give the service its timeout plus a margin to report back before giving up on it.
        match call_with_timeout(move || service.stop(timeout), timeout + STOP_MARGIN) {
            Some(Ok(())) => {
                self.set_status(t, id, ServiceStatus::Stopped, "");
                log::info!(target: "wippy::supervisor", "service {id} stopped");
                Ok(())
            }
            Some(Err(e)) => {
                self.set_status(t, id, ServiceStatus::Stopped, &e.to_string());
                Err(e)
            }
            None => {
                let msg = format!("stop timeout after {}", format_duration(timeout));
                self.set_status(t, id, ServiceStatus::Failed, &msg);
                Err(Error::new(Kind::TIMEOUT, "service stop timed out").with_detail("id", id))
            }
        }
    }
}

/// Extra time a service's `stop` may take beyond its timeout before the supervisor stops
/// waiting (the call itself is left running on its thread).
const STOP_MARGIN: Duration = Duration::from_millis(250);

/// Run `f` on a helper thread and wait at most `timeout` for its result.
fn call_with_timeout<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    timeout: Duration,
) -> Option<T> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let spawned = std::thread::Builder::new()
        .name("wippy-service-call".into())
        .spawn(move || {
            let _ = tx.send(f());
        });
    if spawned.is_err() {
        return None;
    }
    rx.recv_timeout(timeout).ok()
}

/// Order ids so that each comes after the ids it requires (among `ids`); ties by id. Cycles
/// keep their members in id order (their starts then fail on the missing dependency).
fn order_by_requires(t: &Table, mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids.dedup();
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    let mut left = ids;
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|id| {
                t.services.get(*id).is_none_or(|c| {
                    c.lifecycle
                        .requires
                        .iter()
                        .all(|r| !left.iter().any(|l| *l == r.to_string()))
                })
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            out.append(&mut left);
            break;
        }
        left.retain(|id| !ready.contains(id));
        out.extend(ready);
    }
    out
}

fn opaque<T: Send + Sync + 'static>(v: &Value) -> Option<Arc<T>> {
    match v {
        Value::Opaque(o) => o.clone().downcast::<T>().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Probe {
        starts: AtomicUsize,
        stops: AtomicUsize,
        log: Arc<Mutex<Vec<String>>>,
        name: &'static str,
    }
    impl Service for Probe {
        fn start(&self) -> Result<Option<Receiver<ServiceEvent>>, Error> {
            self.starts.fetch_add(1, Ordering::SeqCst);
            self.log
                .lock()
                .unwrap()
                .push(format!("start {}", self.name));
            Ok(None)
        }
        fn stop(&self, _: Duration) -> Result<(), Error> {
            self.stops.fetch_add(1, Ordering::SeqCst);
            self.log.lock().unwrap().push(format!("stop {}", self.name));
            Ok(())
        }
    }

    fn lc(auto: bool, requires: &[&str]) -> LifecycleConfig {
        LifecycleConfig {
            auto_start: auto,
            requires: requires.iter().map(|s| Id::parse(s)).collect(),
            ..Default::default()
        }
    }

    fn tx(bus: &Bus, f: impl FnOnce()) {
        bus.publish(BusEvent::new(
            "registry",
            "registry.begin",
            "registry.tx/1",
            Value::Nil,
        ));
        f();
        bus.publish(BusEvent::new(
            "registry",
            "registry.commit",
            "registry.tx/1",
            Value::Nil,
        ));
    }

    #[test]
    fn commit_starts_auto_services_dependencies_first_and_stop_reverses() {
        let bus = Bus::new();
        let sup = Supervisor::start(&bus).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let a = Arc::new(Probe {
            name: "a",
            log: log.clone(),
            ..Default::default()
        });
        let b = Arc::new(Probe {
            name: "b",
            log: log.clone(),
            ..Default::default()
        });
        let c = Arc::new(Probe {
            name: "c",
            log: log.clone(),
            ..Default::default()
        });
        tx(&bus, || {
            register(&bus, &Id::parse("x:a"), a.clone(), lc(true, &["x:b"]));
            register(&bus, &Id::parse("x:b"), b.clone(), lc(true, &[]));
            register(&bus, &Id::parse("x:c"), c.clone(), lc(false, &[]));
        });
        assert!(sup.sync(Duration::from_secs(5)).unwrap().is_empty());
        assert_eq!(*log.lock().unwrap(), ["start b", "start a"]);
        assert_eq!(sup.status("x:c"), Some(ServiceStatus::Unknown));
        sup.stop_all(Instant::now() + Duration::from_secs(5));
        assert_eq!(
            *log.lock().unwrap(),
            ["start b", "start a", "stop a", "stop b"]
        );
        sup.close();
    }

    #[test]
    fn discard_drops_and_replacement_restarts() {
        let bus = Bus::new();
        let sup = Supervisor::start(&bus).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let a1 = Arc::new(Probe {
            name: "a1",
            log: log.clone(),
            ..Default::default()
        });
        bus.publish(BusEvent::new(
            "registry",
            "registry.begin",
            "registry.tx/1",
            Value::Nil,
        ));
        register(&bus, &Id::parse("x:a"), a1.clone(), lc(true, &[]));
        bus.publish(BusEvent::new(
            "registry",
            "registry.discard",
            "registry.tx/1",
            Value::Nil,
        ));
        sup.sync(Duration::from_secs(5)).unwrap();
        assert_eq!(sup.status("x:a"), None);
        tx(&bus, || {
            register(&bus, &Id::parse("x:a"), a1.clone(), lc(false, &[]))
        });
        sup.sync(Duration::from_secs(5)).unwrap();
        sup.start_service("x:a").unwrap();
        // A new service object for a running id replaces it and keeps it running.
        let a2 = Arc::new(Probe {
            name: "a2",
            log: log.clone(),
            ..Default::default()
        });
        tx(&bus, || {
            register(&bus, &Id::parse("x:a"), a2.clone(), lc(false, &[]))
        });
        sup.sync(Duration::from_secs(5)).unwrap();
        assert_eq!(*log.lock().unwrap(), ["start a1", "stop a1", "start a2"]);
        assert_eq!(sup.status("x:a"), Some(ServiceStatus::Running));
        tx(&bus, || remove(&bus, &Id::parse("x:a")));
        sup.sync(Duration::from_secs(5)).unwrap();
        assert_eq!(sup.status("x:a"), None);
        assert_eq!(a2.stops.load(Ordering::SeqCst), 1);
        sup.close();
    }

    #[test]
    fn blocked_and_failed_required_services_are_reported() {
        struct Failing;
        impl Service for Failing {
            fn start(&self) -> Result<Option<Receiver<ServiceEvent>>, Error> {
                Err(Error::internal("boom"))
            }
            fn stop(&self, _: Duration) -> Result<(), Error> {
                Ok(())
            }
        }
        let bus = Bus::new();
        let sup = Supervisor::start(&bus).unwrap();
        tx(&bus, || {
            register(&bus, &Id::parse("x:f"), Arc::new(Failing), lc(true, &[]));
            register(
                &bus,
                &Id::parse("x:g"),
                Arc::new(Failing),
                lc(true, &["x:missing"]),
            );
        });
        let failed = sup.sync(Duration::from_secs(5)).unwrap();
        let msgs: Vec<String> = failed.iter().map(|(id, e)| format!("{id}: {e}")).collect();
        assert_eq!(
            msgs,
            [
                "x:f: boom",
                "x:g: service startup blocked by missing dependencies: x:missing"
            ]
        );
        sup.close();
    }
}
