//! Registry integration (spec `runtime-internals.md` §6.4–6.5).
//!
//! * The supervisor is a registry **transaction participant** (id `supervisor`). `Begin` opens
//!   a pending transaction; kind managers then call [`Supervisor::register_in`] /
//!   [`Supervisor::remove_in`] with the transaction number of the operation they are
//!   handling (before accepting it). Outside an open transaction those calls fail with
//!   "action received outside of transaction", as upstream.
//! * An **observer** on every kind records the transaction's entry changes, so dependencies
//!   can be resolved against the state the transaction produces (the registry swaps its state
//!   only after the commit).
//! * `Commit` applies the net registrations at once (so the services are visible as soon as
//!   the registry change returns), always accepts (the supervisor never vetoes a committed
//!   change), and queues the transition — stop removed services, then start the registered
//!   `auto_start` services in dependency order — on the transition thread. `Discard` drops the
//!   pending transaction. [`Supervisor::wait_transitions`] lets boot wait for the result.
//! * Dependencies of a registered service = `lifecycle.requires` ∪ service ids reachable
//!   through the entry's registry references (resolver patterns such as `data.host`,
//!   `data.process`, `data.imports.*`), following non-service entries transitively
//!   (service → function → database).
//! * Bus commands `supervisor:service.start` / `service.stop` (path = service id) start or stop
//!   a registered service with its dependency closure; they are ignored while a registry
//!   transaction is open.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, unbounded};
use fnv::FnvHashMap;
use wippy_rt::{Error, Kind, Subscription};

use super::state::{KIND_START, KIND_STOP, SYSTEM};
use super::{SUPERVISOR, ServiceSpec, Supervisor, TransitionReport};
use crate::registry::{Dep, DepResolver, Entry, EntryEvent, Id, OpKind, Registry, TxPhase};
use crate::system::System;

type Job = Box<dyn FnOnce() + Send + 'static>;

enum Pend {
    Register(Box<ServiceSpec>, Option<Arc<Entry>>),
    Remove,
}

struct Pending {
    tx: u64,
    /// Net operation per service id, in first-touch order.
    ops: Vec<(String, Pend)>,
    /// Entry changes of the transaction (None = deleted).
    overlay: FnvHashMap<Id, Option<Arc<Entry>>>,
}

#[derive(Default)]
struct Inner {
    open: Option<Pending>,
    jobs: Option<Sender<Job>>,
    submitted: u64,
    finished: u64,
    last: Option<Result<TransitionReport, Error>>,
    closed: bool,
    commands: Option<Subscription>,
}

/// Transaction bookkeeping of a [`Supervisor`].
#[derive(Default)]
pub(crate) struct TxState {
    inner: Mutex<Inner>,
    cv: Condvar,
}

impl TxState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuse further transitions and drop the command subscription.
    pub(crate) fn close(&self) {
        let mut g = self.lock();
        g.closed = true;
        g.open = None;
        g.jobs = None;
        g.commands = None;
        self.cv.notify_all();
    }
}

/// Create the supervisor for `system`: transaction participant + observer on its registry,
/// `service.start`/`service.stop` bus commands, and the [`SUPERVISOR`] application-context
/// slot (when not sealed yet). Boot calls this in its load phase, before kind managers that
/// register services are installed.
///
/// # Errors
/// `AlreadyExists` when a participant named `supervisor` is already registered.
pub fn install(system: &Arc<System>) -> Result<Arc<Supervisor>, Error> {
    let bus = system.handle.bus().clone();
    let sup = Supervisor::new(Some(bus.clone()));
    let reg = &system.registry;
    let (s, r): (Weak<Supervisor>, Weak<Registry>) = (Arc::downgrade(&sup), Arc::downgrade(reg));
    reg.handlers().add_participant_fn("supervisor", move |ev| {
        if let Some(s) = s.upgrade() {
            match &ev.phase {
                TxPhase::Begin => s.begin(ev.tx),
                TxPhase::Commit => s.commit(ev.tx, r.upgrade().as_deref()),
                TxPhase::Discard(_) => s.discard(ev.tx),
            }
        }
        Ok(())
    })?;
    let s = Arc::downgrade(&sup);
    reg.handlers()
        .add_observer_fn("**", "supervisor", move |ev| {
            if let Some(s) = s.upgrade() {
                s.observe(ev);
            }
        });
    let s = Arc::downgrade(&sup);
    let sub = bus.subscribe_fn(SYSTEM, "service.(start|stop)", move |ev| {
        if let Some(s) = s.upgrade() {
            s.command(&ev.kind, &ev.path);
        }
    })?;
    sup.txs.lock().commands = Some(sub);
    let cx = system.handle.app_context();
    if !cx.is_sealed() && !cx.contains(&SUPERVISOR) {
        cx.set_arc(&SUPERVISOR, sup.clone());
    }
    Ok(sup)
}

impl Supervisor {
    /// Open registry transaction `tx`.
    pub fn begin(&self, tx: u64) {
        let mut g = self.txs.lock();
        if g.closed {
            return;
        }
        g.open = Some(Pending {
            tx,
            ops: Vec::new(),
            overlay: FnvHashMap::default(),
        });
    }

    /// Drop the pending registrations of `tx`.
    pub fn discard(&self, tx: u64) {
        let mut g = self.txs.lock();
        if g.open.as_ref().is_some_and(|p| p.tx == tx) {
            g.open = None;
        }
    }

    /// Record an entry change of the open transaction (the observer's job).
    pub fn observe(&self, ev: &EntryEvent) {
        let mut g = self.txs.lock();
        if let Some(p) = g.open.as_mut()
            && p.tx == ev.tx
        {
            let v = (ev.op != OpKind::Delete).then(|| ev.entry.clone());
            p.overlay.insert(ev.entry.id.clone(), v);
        }
    }

    fn pend(&self, tx: u64, id: &str, op: Pend) -> Result<(), Error> {
        let mut g = self.txs.lock();
        let Some(p) = g.open.as_mut().filter(|p| p.tx == tx) else {
            return Err(
                Error::new(Kind::INVALID, "action received outside of transaction")
                    .with_detail("service", id),
            );
        };
        match p.ops.iter_mut().find(|(k, _)| k == id) {
            Some(slot) => slot.1 = op,
            None => p.ops.push((id.to_string(), op)),
        }
        Ok(())
    }

    /// Register a service as part of registry transaction `tx` (a kind manager handling an
    /// entry create/update). `entry` lets the supervisor find registry dependencies.
    ///
    /// # Errors
    /// `Invalid` "action received outside of transaction".
    pub fn register_in(
        &self,
        tx: u64,
        spec: ServiceSpec,
        entry: Option<Arc<Entry>>,
    ) -> Result<(), Error> {
        let id = spec.id.clone();
        self.pend(tx, &id, Pend::Register(Box::new(spec), entry))
    }

    /// Remove a service as part of registry transaction `tx`.
    ///
    /// # Errors
    /// `Invalid` "action received outside of transaction".
    pub fn remove_in(&self, tx: u64, id: &str) -> Result<(), Error> {
        self.pend(tx, id, Pend::Remove)
    }

    /// Registry transaction `tx` committed: register its services and queue the transition.
    pub fn commit(&self, tx: u64, registry: Option<&Registry>) {
        let pending = {
            let mut g = self.txs.lock();
            match g.open.take() {
                Some(p) if p.tx == tx => p,
                other => {
                    g.open = other;
                    return;
                }
            }
        };
        let new_ids: BTreeSet<String> = pending
            .ops
            .iter()
            .filter(|(_, o)| matches!(o, Pend::Register(..)))
            .map(|(id, _)| id.clone())
            .collect();
        let is_service = |id: &str| {
            new_ids.contains(id)
                || self
                    .specs
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains_key(id)
        };
        let mut removed = Vec::new();
        let mut roots = Vec::new();
        for (id, op) in pending.ops {
            match op {
                Pend::Remove => {
                    if self.state(&id).is_some() {
                        removed.push(id)
                    }
                }
                Pend::Register(mut spec, entry) => {
                    if let (Some(reg), Some(e)) = (registry, &entry) {
                        for d in registry_deps(e, reg, &pending.overlay, &is_service) {
                            if !spec.deps.contains(&d) {
                                spec.deps.push(d);
                            }
                        }
                    }
                    if spec.config.auto_start {
                        roots.push(id.clone());
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
                let _t = me.transition.lock().unwrap_or_else(|e| e.into_inner());
                me.remove_many_locked(&removed);
            }
            me.start_services(&roots, false, None).into_result()
        });
    }

    /// Handle a `service.start` / `service.stop` bus command.
    fn command(&self, kind: &str, id: &str) {
        if self.txs.lock().open.is_some() {
            log::warn!(target: "wippy::supervisor", service = id; "{kind} ignored: a registry transaction is open");
            return;
        }
        let (me, id, start) = (self.weak.clone(), id.to_string(), kind == KIND_START);
        debug_assert!(start || kind == KIND_STOP);
        self.queue(move || {
            let Some(me) = me.upgrade() else {
                return Ok(TransitionReport::default());
            };
            if start {
                me.start_services(&[id], true, None).into_result()
            } else {
                Ok(me.stop_services(&[id]))
            }
        });
    }

    /// Run `job` on the transition thread (FIFO) and record its result.
    fn queue(&self, job: impl FnOnce() -> Result<TransitionReport, Error> + Send + 'static) {
        let mut g = self.txs.lock();
        if g.closed {
            return;
        }
        if g.jobs.is_none() {
            let (tx, rx) = unbounded::<Job>();
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
                let mut g = s.txs.lock();
                g.finished += 1;
                g.last = Some(r);
                s.txs.cv.notify_all();
            }
        });
        if let Some(j) = &g.jobs {
            let _ = j.send(run);
        }
    }

    /// Wait until every queued transition finished (at most `timeout`); returns the result of
    /// the last one (None when none ran or on timeout).
    pub fn wait_transitions(&self, timeout: Duration) -> Option<Result<TransitionReport, Error>> {
        let deadline = Instant::now() + timeout;
        let mut g = self.txs.lock();
        while g.finished < g.submitted && !g.closed {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            g = self
                .txs
                .cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        g.last.clone()
    }
}

/// Service ids reachable from `entry` through registry references (see the module docs).
fn registry_deps(
    entry: &Entry,
    reg: &Registry,
    overlay: &FnvHashMap<Id, Option<Arc<Entry>>>,
    is_service: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let snap = reg.snapshot();
    let lookup = |id: &Id| -> Option<Arc<Entry>> {
        match overlay.get(id) {
            Some(v) => v.clone(),
            None => snap.get(id),
        }
    };
    let all = || -> Vec<Arc<Entry>> {
        let mut v: Vec<Arc<Entry>> = snap
            .entries()
            .into_iter()
            .filter(|e| !overlay.contains_key(&e.id))
            .collect();
        v.extend(overlay.values().flatten().cloned());
        v
    };
    let resolver: &DepResolver = reg.resolver();
    let mut out: BTreeSet<String> = BTreeSet::new();
    let mut seen: BTreeSet<Id> = BTreeSet::new();
    seen.insert(entry.id.clone());
    let mut queue: VecDeque<Dep> = resolver.deps(entry).into();
    let mut everything: Option<Vec<Arc<Entry>>> = None;
    while let Some(d) = queue.pop_front() {
        let targets: Vec<Arc<Entry>> = match &d {
            Dep::Entry(id) => {
                let s = id.to_string();
                if is_service(&s) {
                    out.insert(s);
                    continue;
                }
                lookup(id).into_iter().collect()
            }
            other => everything
                .get_or_insert_with(all)
                .iter()
                .filter(|e| other.matches(e))
                .cloned()
                .collect(),
        };
        for t in targets {
            if !seen.insert(t.id.clone()) {
                continue;
            }
            let s = t.id.to_string();
            if is_service(&s) {
                out.insert(s);
            } else {
                queue.extend(resolver.deps(&t));
            }
        }
    }
    out.remove(&entry.id.to_string());
    out.into_iter().collect()
}
