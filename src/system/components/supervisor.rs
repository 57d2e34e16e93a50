//! **Stand-in** for the supervisor of branch `system` (`crate::system::supervisor`), with the
//! same public API for everything boot and the kind managers use; deleted when that branch is
//! merged (see [`super::supervision`]). It implements the registration protocol, ordered
//! start/stop with timeouts and status events — not restart policies.
//!
//! # Protocol (spec `runtime-internals.md` §6.4)
//!
//! * [`install`] makes the supervisor a registry **transaction participant** (`supervisor`).
//!   `Begin` opens a pending transaction; kind managers call [`Supervisor::register_in`] /
//!   [`Supervisor::remove_in`] with the transaction number of the operation they handle,
//!   before accepting it (outside an open transaction: "action received outside of
//!   transaction", as upstream).
//! * `Commit` applies the net registrations at once (new ids get a controller, the same
//!   service object with a new config just updates it) and queues the transition on the
//!   transition thread: replaced services are stopped and their successors started if the old
//!   one ran (fix of upstream §14 item 18: upstream kept the old controller), removed services
//!   are stopped and forgotten, `auto_start` services are started dependencies first.
//!   `Discard` drops the pending transaction. [`Supervisor::wait_transitions`] lets boot wait.
//! * Every status change publishes `supervisor:service.update` (`{id, status, details}`).
//! * [`Supervisor::shutdown`] stops every active service, the last started first, each
//!   within its `stop_timeout`, and forgets them.
//!
//! Not in the stand-in: restarts (a failed or exited service stays so), status-channel
//! monitoring, parallel start of independent services, registry-derived dependencies,
//! `service.start`/`service.stop` bus commands.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;
use wippy_rt::app_context::Key;
use wippy_rt::{Bus, BusEvent, Error, Kind, Value};

pub use super::lifecycle::{LifecycleConfig, RestartPolicy, Startup};
use crate::config::format_duration;
use crate::registry::{Entry, Registry, TxPhase};
use crate::system::System;

/// Application-context slot of the installed [`Supervisor`].
pub static SUPERVISOR: Key<Supervisor> = Key::new("wippy.system.supervisor");
/// Bus system of supervisor events.
pub const SYSTEM: &str = "supervisor";
/// Kind of state-change events.
pub const KIND_UPDATE: &str = "service.update";

/// A supervised service (`process.host`, `terminal.host`, …).
pub trait Service: Send + Sync + 'static {
    /// Start; return once it runs (or failed to). Runs on a helper thread; the supervisor
    /// gives up after `start_timeout`. Keep `ctx` to report the end of the run.
    ///
    /// # Errors
    /// The start failure.
    fn start(&self, ctx: ServiceCtx) -> Result<(), Error>;

    /// Stop the running incarnation by `deadline`. Stopping a stopped service must succeed.
    ///
    /// # Errors
    /// The stop failure.
    fn stop(&self, deadline: Instant) -> Result<(), Error>;
}

/// The handle a running service reports through.
#[derive(Clone)]
pub struct ServiceCtx {
    id: Arc<str>,
    generation: u64,
    sup: Weak<Supervisor>,
    cancelled: Arc<AtomicBool>,
}

impl std::fmt::Debug for ServiceCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCtx")
            .field("id", &self.id)
            .field("generation", &self.generation)
            .finish()
    }
}

impl ServiceCtx {
    /// The service id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The incarnation number (one per start attempt).
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// True once the supervisor abandoned this incarnation.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(SeqCst)
    }
    fn report(&self, status: Status, details: String) {
        if let Some(s) = self.sup.upgrade() {
            let mut t = s.lock();
            if t.ctls
                .get(&*self.id)
                .is_some_and(|c| c.generation == self.generation)
            {
                s.set(&mut t, &self.id, status, details);
            }
        }
    }
    /// The run ended normally (status `exited`).
    pub fn exited(&self) {
        self.report(Status::Exited, String::new());
    }
    /// The run crashed (status `failed`; the stand-in does not restart).
    pub fn failed(&self, err: Error) {
        log::error!(target: "wippy::supervisor", "service {} failed: {err}", self.id);
        self.report(Status::Failed, err.to_string());
    }
    /// `Ok` → [`exited`](Self::exited), `Err` → [`failed`](Self::failed).
    pub fn finished(&self, r: Result<(), Error>) {
        match r {
            Ok(()) => self.exited(),
            Err(e) => self.failed(e),
        }
    }
    /// Update the status details.
    pub fn update(&self, details: impl Into<String>) {
        if let Some(s) = self.sup.upgrade() {
            let mut t = s.lock();
            if let Some(st) = t.ctls.get(&*self.id).map(|c| c.status) {
                s.set(&mut t, &self.id, st, details.into());
            }
        }
    }
}

/// A service as registered by its kind manager.
pub struct ServiceSpec {
    /// Service id (registry id of the entry).
    pub id: String,
    /// The service object.
    pub service: Arc<dyn Service>,
    /// Its lifecycle configuration.
    pub config: LifecycleConfig,
    /// Further service ids it depends on.
    pub deps: Vec<String>,
}

impl std::fmt::Debug for ServiceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSpec")
            .field("id", &self.id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A service status (upstream names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Status {
    /// Registered, never started.
    #[default]
    Unknown,
    /// Starting.
    Starting,
    /// Running.
    Running,
    /// Stopping.
    Stopping,
    /// Stopped on request.
    Stopped,
    /// Exited on its own.
    Exited,
    /// Failed.
    Failed,
}

impl Status {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::Exited => "exited",
            Status::Failed => "failed",
        }
    }
    /// True while the service may hold resources.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Starting | Status::Running | Status::Stopping)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The observable state of one service.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceState {
    /// Service id.
    pub id: String,
    /// Current status.
    pub status: Status,
    /// Free text (last error, …).
    pub details: String,
    /// Time of the last change.
    pub last_update: SystemTime,
}

/// The outcome of a start or stop transition.
#[derive(Clone, Debug, Default)]
pub struct TransitionReport {
    /// Services that reached the goal, in completion order.
    pub done: Vec<String>,
    /// Services that failed or were blocked, with the cause.
    pub failed: Vec<(String, Error)>,
    /// Services still starting when the deadline passed.
    pub pending: Vec<String>,
    /// The subset of `failed` that makes the transition fail.
    pub fatal: Vec<String>,
}

impl TransitionReport {
    /// `Ok` unless a required service failed.
    ///
    /// # Errors
    /// `Unavailable` "services failed to start: id (cause); …".
    pub fn into_result(self) -> Result<TransitionReport, Error> {
        if self.fatal.is_empty() {
            return Ok(self);
        }
        let parts: Vec<String> = self
            .failed
            .iter()
            .filter(|(id, _)| self.fatal.contains(id))
            .map(|(id, e)| format!("{id} ({e})"))
            .collect();
        Err(Error::new(
            Kind::UNAVAILABLE,
            format!("services failed to start: {}", parts.join("; ")),
        ))
    }
}

struct Ctl {
    service: Arc<dyn Service>,
    config: LifecycleConfig,
    deps: Vec<String>,
    status: Status,
    details: String,
    last_update: SystemTime,
    generation: u64,
    cancelled: Arc<AtomicBool>,
}

#[derive(Default)]
struct Table {
    ctls: BTreeMap<String, Ctl>,
    /// Ids in the order they reached `Running`.
    started: Vec<String>,
}

enum Pend {
    Register(Box<ServiceSpec>),
    Remove,
}

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct Txs {
    open: Option<(u64, Vec<(String, Pend)>)>,
    jobs: Option<Sender<Job>>,
    submitted: u64,
    finished: u64,
    last: Option<Result<TransitionReport, Error>>,
    closed: bool,
}

/// See the module docs.
pub struct Supervisor {
    weak: Weak<Supervisor>,
    bus: Option<Bus>,
    table: Mutex<Table>,
    transition: Mutex<()>,
    txs: Mutex<Txs>,
    cv: Condvar,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("services", &self.ids())
            .finish()
    }
}

/// Create the supervisor for `system`: registry transaction participant `supervisor`, and the
/// [`SUPERVISOR`] app-context slot (when not sealed yet). Call in the load phase, before kind
/// managers that register services.
///
/// # Errors
/// `AlreadyExists` when a participant named `supervisor` is registered already.
pub fn install(system: &Arc<System>) -> Result<Arc<Supervisor>, Error> {
    let sup = Supervisor::new(Some(system.handle.bus().clone()));
    let s = Arc::downgrade(&sup);
    system
        .registry
        .handlers()
        .add_participant_fn("supervisor", move |ev| {
            if let Some(s) = s.upgrade() {
                match &ev.phase {
                    TxPhase::Begin => s.begin(ev.tx),
                    TxPhase::Commit => s.commit(ev.tx, None),
                    TxPhase::Discard(_) => s.discard(ev.tx),
                }
            }
            Ok(())
        })?;
    let cx = system.handle.app_context();
    if !cx.is_sealed() && !cx.contains(&SUPERVISOR) {
        cx.set_arc(&SUPERVISOR, sup.clone());
    }
    Ok(sup)
}

impl Supervisor {
    /// A supervisor publishing state changes on `bus`.
    pub fn new(bus: Option<Bus>) -> Arc<Supervisor> {
        Arc::new_cyclic(|weak| Supervisor {
            weak: weak.clone(),
            bus,
            table: Mutex::new(Table::default()),
            transition: Mutex::new(()),
            txs: Mutex::new(Txs::default()),
            cv: Condvar::new(),
        })
    }

    /// The installed supervisor of a runtime, if any.
    pub fn of(handle: &wippy_rt::Handle) -> Option<Arc<Supervisor>> {
        handle.app_context().get(&SUPERVISOR)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tx_lock(&self) -> std::sync::MutexGuard<'_, Txs> {
        self.txs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, t: &mut Table, id: &str, status: Status, details: String) {
        let Some(c) = t.ctls.get_mut(id) else { return };
        c.status = status;
        c.details = details;
        c.last_update = SystemTime::now();
        if let Some(b) = &self.bus {
            b.publish(BusEvent::new(
                SYSTEM,
                KIND_UPDATE,
                id,
                Value::Map(vec![
                    (Value::str("id"), Value::str(id)),
                    (Value::str("status"), Value::str(status.name())),
                    (Value::str("details"), Value::str(&c.details)),
                ]),
            ));
        }
    }

    /// Register (or replace) a service now (see the module docs for replacement).
    pub fn register(&self, spec: ServiceSpec) {
        let replaced = {
            let mut t = self.lock();
            match t.ctls.get_mut(&spec.id) {
                Some(c) if Arc::ptr_eq(&c.service, &spec.service) => {
                    c.config = spec.config;
                    c.deps = spec.deps;
                    None
                }
                Some(c) => Some((c.status.is_active(), spec)),
                None => {
                    t.ctls.insert(
                        spec.id.clone(),
                        new_ctl(spec.service, spec.config, spec.deps),
                    );
                    None
                }
            }
        };
        if let Some((was_active, spec)) = replaced {
            let me = self.weak.clone();
            self.queue(move || {
                let Some(me) = me.upgrade() else {
                    return Ok(TransitionReport::default());
                };
                let _g = me.transition.lock().unwrap_or_else(|p| p.into_inner());
                let id = spec.id.clone();
                if was_active {
                    let _ = me.stop_one(&id);
                }
                me.lock()
                    .ctls
                    .insert(id.clone(), new_ctl(spec.service, spec.config, spec.deps));
                if was_active {
                    return me.start_locked(&[id], true, None).into_result();
                }
                Ok(TransitionReport::default())
            });
        }
    }

    /// Stop a service (and its active dependents) and forget it.
    ///
    /// # Errors
    /// None (stop failures are logged).
    pub fn remove(&self, id: &str) -> Result<(), Error> {
        let _g = self.transition.lock().unwrap_or_else(|p| p.into_inner());
        self.remove_locked(id);
        Ok(())
    }

    fn remove_locked(&self, id: &str) {
        for (s, e) in self.stop_locked(&[id.to_string()]).failed {
            log::warn!(target: "wippy::supervisor", "service {s}: stop before removal failed: {e}");
        }
        let mut t = self.lock();
        t.ctls.remove(id);
        t.started.retain(|s| s != id);
    }

    /// Start `id` and its dependencies; blocks until it runs or fails.
    ///
    /// # Errors
    /// The start failure.
    pub fn start(&self, id: &str) -> Result<(), Error> {
        self.start_services(&[id.to_string()], true, None)
            .into_result()
            .map(|_| ())
    }

    /// Stop `id` and every active service depending on it.
    ///
    /// # Errors
    /// The first stop failure.
    pub fn stop(&self, id: &str) -> Result<(), Error> {
        match self
            .stop_services(&[id.to_string()])
            .failed
            .into_iter()
            .next()
        {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// The state of one service.
    pub fn state(&self, id: &str) -> Option<ServiceState> {
        self.lock().ctls.get(id).map(|c| ServiceState {
            id: id.to_string(),
            status: c.status,
            details: c.details.clone(),
            last_update: c.last_update,
        })
    }

    /// Every service's state, sorted by id.
    pub fn states(&self) -> Vec<ServiceState> {
        let ids = self.ids();
        ids.iter().filter_map(|i| self.state(i)).collect()
    }

    /// Registered service ids (sorted).
    pub fn ids(&self) -> Vec<String> {
        self.lock().ctls.keys().cloned().collect()
    }

    /// Start `roots` and what they require, dependencies first. `required_roots` makes every
    /// root required; otherwise each root's `startup` decides.
    pub fn start_services(
        &self,
        roots: &[String],
        required_roots: bool,
        deadline: Option<Instant>,
    ) -> TransitionReport {
        let _g = self.transition.lock().unwrap_or_else(|p| p.into_inner());
        self.start_locked(roots, required_roots, deadline)
    }

    fn start_locked(
        &self,
        roots: &[String],
        required_roots: bool,
        deadline: Option<Instant>,
    ) -> TransitionReport {
        let mut report = TransitionReport::default();
        let order = {
            let t = self.lock();
            closure_order(&t, roots)
        };
        let required: Vec<String> = {
            let t = self.lock();
            roots
                .iter()
                .filter(|r| {
                    required_roots
                        || t.ctls
                            .get(*r)
                            .is_none_or(|c| c.config.startup == Startup::Required)
                })
                .cloned()
                .collect()
        };
        for id in order {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                report.pending.push(id);
                continue;
            }
            let blocked = {
                let t = self.lock();
                match t.ctls.get(&id) {
                    None => Some(Error::not_found(format!("service not found: {id}"))),
                    Some(c) => {
                        let missing: Vec<&str> = c
                            .config
                            .requires
                            .iter()
                            .chain(c.deps.iter())
                            .filter(|d| t.ctls.get(*d).is_none_or(|x| x.status != Status::Running))
                            .map(String::as_str)
                            .collect();
                        (!missing.is_empty()).then(|| {
                            Error::new(
                                Kind::NOT_FOUND,
                                format!(
                                    "service startup blocked by missing dependencies: [{}]",
                                    missing.join(", ")
                                ),
                            )
                        })
                    }
                }
            };
            let r = match blocked {
                Some(e) => {
                    let mut t = self.lock();
                    self.set(&mut t, &id, Status::Failed, e.to_string());
                    Err(e)
                }
                None => self.start_one(&id),
            };
            match r {
                Ok(()) => report.done.push(id),
                Err(e) => {
                    if required.contains(&id)
                        || required.iter().any(|r| self.requires_transitively(r, &id))
                    {
                        report.fatal.push(id.clone());
                    } else {
                        log::warn!(target: "wippy::supervisor", "optional service {id} failed to start: {e}");
                    }
                    report.failed.push((id, e));
                }
            }
        }
        report
    }

    fn requires_transitively(&self, from: &str, target: &str) -> bool {
        let t = self.lock();
        let mut stack = vec![from.to_string()];
        let mut seen = Vec::new();
        while let Some(id) = stack.pop() {
            if seen.contains(&id) {
                continue;
            }
            seen.push(id.clone());
            if let Some(c) = t.ctls.get(&id) {
                for d in c.config.requires.iter().chain(c.deps.iter()) {
                    if d == target {
                        return true;
                    }
                    stack.push(d.clone());
                }
            }
        }
        false
    }

    fn start_one(&self, id: &str) -> Result<(), Error> {
        let (service, timeout, ctx) = {
            let mut t = self.lock();
            let Some(c) = t.ctls.get_mut(id) else {
                return Err(Error::not_found(format!("service not found: {id}")));
            };
            if c.status == Status::Running {
                return Ok(());
            }
            c.generation += 1;
            c.cancelled = Arc::new(AtomicBool::new(false));
            let ctx = ServiceCtx {
                id: Arc::from(id),
                generation: c.generation,
                sup: self.weak.clone(),
                cancelled: c.cancelled.clone(),
            };
            let (service, timeout) = (c.service.clone(), c.config.start_timeout);
            self.set(&mut t, id, Status::Starting, "attempt 1".into());
            (service, timeout, ctx)
        };
        let cancelled = ctx.cancelled.clone();
        let r = call_with_timeout(move || service.start(ctx), timeout);
        let mut t = self.lock();
        match r {
            Some(Ok(())) => {
                self.set(&mut t, id, Status::Running, String::new());
                t.started.retain(|s| s != id);
                t.started.push(id.to_string());
                log::info!(target: "wippy::supervisor", "service {id} started");
                Ok(())
            }
            Some(Err(e)) => {
                self.set(&mut t, id, Status::Failed, e.to_string());
                Err(e)
            }
            None => {
                cancelled.store(true, SeqCst);
                self.set(&mut t, id, Status::Failed, "start timeout".into());
                Err(Error::new(Kind::TIMEOUT, "service start timed out")
                    .with_detail("timeout", format_duration(timeout)))
            }
        }
    }

    /// Stop `roots` and every active service depending on them, dependents first.
    pub fn stop_services(&self, roots: &[String]) -> TransitionReport {
        let _g = self.transition.lock().unwrap_or_else(|p| p.into_inner());
        self.stop_locked(roots)
    }

    fn stop_locked(&self, roots: &[String]) -> TransitionReport {
        let mut report = TransitionReport::default();
        let order: Vec<String> = {
            let t = self.lock();
            // Reverse start order restricted to the roots and their active dependents.
            let mut set: Vec<String> = roots.to_vec();
            let mut changed = true;
            while changed {
                changed = false;
                for (id, c) in &t.ctls {
                    if !set.contains(id)
                        && c.status.is_active()
                        && c.config
                            .requires
                            .iter()
                            .chain(c.deps.iter())
                            .any(|d| set.contains(d))
                    {
                        set.push(id.clone());
                        changed = true;
                    }
                }
            }
            let mut order: Vec<String> = t
                .started
                .iter()
                .rev()
                .filter(|s| set.contains(s))
                .cloned()
                .collect();
            for s in set {
                if !order.contains(&s) {
                    order.push(s);
                }
            }
            order
        };
        for id in order {
            match self.stop_one(&id) {
                Ok(()) => report.done.push(id),
                Err(e) => report.failed.push((id, e)),
            }
        }
        report
    }

    fn stop_one(&self, id: &str) -> Result<(), Error> {
        let (service, timeout) = {
            let mut t = self.lock();
            let Some(c) = t.ctls.get(id) else {
                return Ok(());
            };
            if !c.status.is_active() {
                return Ok(());
            }
            c.cancelled.store(true, SeqCst);
            let r = (c.service.clone(), c.config.stop_timeout);
            self.set(&mut t, id, Status::Stopping, String::new());
            r
        };
        let deadline = Instant::now() + timeout;
        let r = call_with_timeout(move || service.stop(deadline), timeout + STOP_MARGIN);
        let mut t = self.lock();
        t.started.retain(|s| s != id);
        match r {
            Some(Ok(())) => {
                self.set(&mut t, id, Status::Stopped, String::new());
                log::info!(target: "wippy::supervisor", "service {id} stopped");
                Ok(())
            }
            Some(Err(e)) => {
                self.set(&mut t, id, Status::Stopped, e.to_string());
                Err(e)
            }
            None => {
                self.set(
                    &mut t,
                    id,
                    Status::Failed,
                    format!("stop timeout after {}", format_duration(timeout)),
                );
                Err(Error::new(Kind::TIMEOUT, "service stop timed out").with_detail("id", id))
            }
        }
    }

    /// Stop every active service (last started first), forget them, refuse further work.
    pub fn shutdown(&self) -> TransitionReport {
        {
            let mut g = self.tx_lock();
            g.closed = true;
            g.open = None;
            g.jobs = None;
            self.cv.notify_all();
        }
        let ids: Vec<String> = {
            let t = self.lock();
            let mut v: Vec<String> = t.started.iter().rev().cloned().collect();
            for (id, c) in &t.ctls {
                if c.status.is_active() && !v.contains(id) {
                    v.push(id.clone());
                }
            }
            v
        };
        let report = self.stop_services(&ids);
        // Services hold runtime handles; dropping them breaks the cycle through the app
        // context.
        let mut t = self.lock();
        t.ctls.clear();
        t.started.clear();
        report
    }

    /// Open registry transaction `tx`.
    pub fn begin(&self, tx: u64) {
        let mut g = self.tx_lock();
        if !g.closed {
            g.open = Some((tx, Vec::new()));
        }
    }

    /// Drop the pending registrations of `tx`.
    pub fn discard(&self, tx: u64) {
        let mut g = self.tx_lock();
        if g.open.as_ref().is_some_and(|(t, _)| *t == tx) {
            g.open = None;
        }
    }

    fn pend(&self, tx: u64, id: &str, op: Pend) -> Result<(), Error> {
        let mut g = self.tx_lock();
        let Some((_, ops)) = g.open.as_mut().filter(|(t, _)| *t == tx) else {
            return Err(
                Error::new(Kind::INVALID, "action received outside of transaction")
                    .with_detail("service", id),
            );
        };
        match ops.iter_mut().find(|(k, _)| k == id) {
            Some(slot) => slot.1 = op,
            None => ops.push((id.to_string(), op)),
        }
        Ok(())
    }

    /// Register a service as part of registry transaction `tx` (before accepting the entry).
    ///
    /// # Errors
    /// `Invalid` "action received outside of transaction".
    pub fn register_in(
        &self,
        tx: u64,
        spec: ServiceSpec,
        entry: Option<Arc<Entry>>,
    ) -> Result<(), Error> {
        let _ = entry;
        let id = spec.id.clone();
        self.pend(tx, &id, Pend::Register(Box::new(spec)))
    }

    /// Remove a service as part of registry transaction `tx`.
    ///
    /// # Errors
    /// `Invalid` "action received outside of transaction".
    pub fn remove_in(&self, tx: u64, id: &str) -> Result<(), Error> {
        self.pend(tx, id, Pend::Remove)
    }

    /// Registry transaction `tx` committed: register its services, queue the transition.
    pub fn commit(&self, tx: u64, registry: Option<&Registry>) {
        let _ = registry;
        let ops = {
            let mut g = self.tx_lock();
            match g.open.take() {
                Some((t, ops)) if t == tx => ops,
                other => {
                    g.open = other;
                    return;
                }
            }
        };
        let mut removed = Vec::new();
        let mut roots = Vec::new();
        for (id, op) in ops {
            match op {
                Pend::Remove => {
                    if self.lock().ctls.contains_key(&id) {
                        removed.push(id);
                    }
                }
                Pend::Register(spec) => {
                    if spec.config.auto_start {
                        roots.push(id);
                    }
                    self.register(*spec);
                }
            }
        }
        if removed.is_empty() && roots.is_empty() {
            return;
        }
        let me = self.weak.clone();
        self.queue(move || {
            let Some(me) = me.upgrade() else {
                return Ok(TransitionReport::default());
            };
            {
                let _g = me.transition.lock().unwrap_or_else(|p| p.into_inner());
                for id in &removed {
                    me.remove_locked(id);
                }
            }
            me.start_services(&roots, false, None).into_result()
        });
    }

    fn queue(&self, job: impl FnOnce() -> Result<TransitionReport, Error> + Send + 'static) {
        let mut g = self.tx_lock();
        if g.closed {
            return;
        }
        if g.jobs.is_none() {
            let (tx, rx) = crossbeam_channel::unbounded::<Job>();
            let spawned = std::thread::Builder::new()
                .name("wippy-supervisor-tx".into())
                .spawn(move || {
                    while let Ok(j) = rx.recv() {
                        j();
                    }
                });
            if let Err(e) = spawned {
                log::error!(target: "wippy::supervisor", "cannot start the transition thread: {e}");
                return;
            }
            g.jobs = Some(tx);
        }
        g.submitted += 1;
        let weak = self.weak.clone();
        let run: Job = Box::new(move || {
            let r = job();
            if let Err(e) = &r {
                log::error!(target: "wippy::supervisor", "service transition failed: {e}");
            }
            if let Some(s) = weak.upgrade() {
                let mut g = s.tx_lock();
                g.finished += 1;
                g.last = Some(r);
                s.cv.notify_all();
            }
        });
        if let Some(j) = &g.jobs {
            let _ = j.send(run);
        }
    }

    /// Wait until every queued transition finished (at most `timeout`); the result of the
    /// last one (None when none ran or on timeout).
    pub fn wait_transitions(&self, timeout: Duration) -> Option<Result<TransitionReport, Error>> {
        let deadline = Instant::now() + timeout;
        let mut g = self.tx_lock();
        while g.finished < g.submitted && !g.closed {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            g = self
                .cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        g.last.clone()
    }
}

fn new_ctl(service: Arc<dyn Service>, config: LifecycleConfig, deps: Vec<String>) -> Ctl {
    Ctl {
        service,
        config,
        deps,
        status: Status::Unknown,
        details: String::new(),
        last_update: SystemTime::now(),
        generation: 0,
        cancelled: Arc::new(AtomicBool::new(false)),
    }
}

/// Extra time a service's `stop` may take beyond its timeout before the supervisor stops
/// waiting (the call itself keeps running on its thread).
const STOP_MARGIN: Duration = Duration::from_millis(250);

/// Run `f` on a helper thread and wait at most `timeout` for its result.
fn call_with_timeout<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    timeout: Duration,
) -> Option<T> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("wippy-service-call".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.recv_timeout(timeout).ok()
}

/// `roots` plus the registered services they require (transitively) that are not running,
/// each after its dependencies; ties by id; cycle members keep id order.
fn closure_order(t: &Table, roots: &[String]) -> Vec<String> {
    let deps_of = |id: &str| -> Vec<String> {
        t.ctls
            .get(id)
            .map(|c| {
                c.config
                    .requires
                    .iter()
                    .chain(c.deps.iter())
                    .filter(|d| t.ctls.get(*d).is_some_and(|x| x.status != Status::Running))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut nodes: Vec<String> = Vec::new();
    let mut stack: Vec<String> = roots.to_vec();
    while let Some(id) = stack.pop() {
        if nodes.contains(&id) {
            continue;
        }
        stack.extend(deps_of(&id));
        nodes.push(id);
    }
    nodes.sort();
    let mut out: Vec<String> = Vec::with_capacity(nodes.len());
    while !nodes.is_empty() {
        let ready: Vec<String> = nodes
            .iter()
            .filter(|id| deps_of(id).iter().all(|d| !nodes.contains(d)))
            .cloned()
            .collect();
        if ready.is_empty() {
            out.append(&mut nodes);
            break;
        }
        nodes.retain(|id| !ready.contains(id));
        out.extend(ready);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Probe {
        name: &'static str,
        log: Arc<Mutex<Vec<String>>>,
        fail: bool,
    }
    impl Service for Probe {
        fn start(&self, _: ServiceCtx) -> Result<(), Error> {
            self.log
                .lock()
                .unwrap()
                .push(format!("start {}", self.name));
            if self.fail {
                return Err(Error::internal("boom"));
            }
            Ok(())
        }
        fn stop(&self, _: Instant) -> Result<(), Error> {
            self.log.lock().unwrap().push(format!("stop {}", self.name));
            Ok(())
        }
    }

    fn probe(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Arc<Probe> {
        Arc::new(Probe {
            name,
            log: log.clone(),
            fail: false,
        })
    }

    fn spec(id: &str, s: Arc<dyn Service>, auto: bool, requires: &[&str]) -> ServiceSpec {
        ServiceSpec {
            id: id.into(),
            service: s,
            config: LifecycleConfig {
                auto_start: auto,
                requires: requires.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            deps: Vec::new(),
        }
    }

    #[test]
    fn commit_starts_auto_services_dependencies_first_and_shutdown_reverses() {
        let sup = Supervisor::new(None);
        let log = Arc::new(Mutex::new(Vec::new()));
        sup.begin(1);
        sup.register_in(1, spec("x:a", probe("a", &log), true, &["x:b"]), None)
            .unwrap();
        sup.register_in(1, spec("x:b", probe("b", &log), true, &[]), None)
            .unwrap();
        sup.register_in(1, spec("x:c", probe("c", &log), false, &[]), None)
            .unwrap();
        sup.commit(1, None);
        assert!(
            sup.wait_transitions(Duration::from_secs(5))
                .unwrap()
                .is_ok()
        );
        assert_eq!(*log.lock().unwrap(), ["start b", "start a"]);
        assert_eq!(sup.state("x:c").unwrap().status, Status::Unknown);
        sup.shutdown();
        assert_eq!(
            *log.lock().unwrap(),
            ["start b", "start a", "stop a", "stop b"]
        );
        assert!(sup.ids().is_empty());
    }

    #[test]
    fn outside_a_transaction_and_discard() {
        let sup = Supervisor::new(None);
        let log = Arc::new(Mutex::new(Vec::new()));
        let e = sup
            .register_in(7, spec("x:a", probe("a", &log), true, &[]), None)
            .unwrap_err();
        assert_eq!(e.message(), "action received outside of transaction");
        sup.begin(8);
        sup.register_in(8, spec("x:a", probe("a", &log), true, &[]), None)
            .unwrap();
        sup.discard(8);
        assert!(sup.state("x:a").is_none());
    }

    #[test]
    fn a_new_service_object_replaces_a_running_one() {
        let sup = Supervisor::new(None);
        let log = Arc::new(Mutex::new(Vec::new()));
        sup.register(spec("x:a", probe("a1", &log), false, &[]));
        sup.start("x:a").unwrap();
        sup.begin(1);
        sup.register_in(1, spec("x:a", probe("a2", &log), false, &[]), None)
            .unwrap();
        sup.commit(1, None);
        sup.wait_transitions(Duration::from_secs(5));
        assert_eq!(*log.lock().unwrap(), ["start a1", "stop a1", "start a2"]);
        assert_eq!(sup.state("x:a").unwrap().status, Status::Running);
        sup.begin(2);
        sup.remove_in(2, "x:a").unwrap();
        sup.commit(2, None);
        sup.wait_transitions(Duration::from_secs(5));
        assert!(sup.state("x:a").is_none());
        assert_eq!(log.lock().unwrap().last().unwrap(), "stop a2");
    }

    #[test]
    fn failed_required_and_blocked_services_fail_the_transition() {
        let sup = Supervisor::new(None);
        let log = Arc::new(Mutex::new(Vec::new()));
        let bad = Arc::new(Probe {
            name: "f",
            log: log.clone(),
            fail: true,
        });
        sup.begin(1);
        sup.register_in(1, spec("x:f", bad, true, &[]), None)
            .unwrap();
        sup.register_in(1, spec("x:g", probe("g", &log), true, &["x:missing"]), None)
            .unwrap();
        sup.commit(1, None);
        let e = sup
            .wait_transitions(Duration::from_secs(5))
            .unwrap()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "services failed to start: x:f (boom); x:g (service startup blocked by missing dependencies: [x:missing])"
        );
    }
}
