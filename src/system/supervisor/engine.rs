//! The supervisor loop: one thread owning every [`Controller`], fed by one channel.
//!
//! Upstream runs a goroutine (and an op channel) per controller. Here one thread runs all of
//! them as plain state machines: operations ([`Op`]) arrive on an unbounded channel — requests
//! from the supervisor API, results of `start`/`stop` calls finished on the [`Pool`], and
//! service reports from [`ServiceCtx`] — and timers (start/stop timeouts, retry delays) live in
//! the loop's own min-heap, so the loop sleeps with `recv_deadline` until the next op or the
//! earliest timer. A controller therefore costs a map entry, not a thread, and restarts of
//! thousands of services are serialised without locks.
//!
//! Observable state is mirrored into a shared map on every change (readers never talk to the
//! loop) and published on the bus as `supervisor:service.update`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use fnv::FnvHashMap;
use wippy_rt::{Bus, Error};

use super::config::LifecycleConfig;
use super::controller::{Controller, Effects, TimerKind, WaitMode, Waiter};
use super::pool::Pool;
use super::service::{Report, Service, ServiceCtx};
use super::state::ServiceState;

/// An operation for the loop.
pub(crate) enum Op {
    Register {
        id: Arc<str>,
        service: Arc<dyn Service>,
        config: Arc<LifecycleConfig>,
    },
    Remove {
        id: Arc<str>,
        reply: Option<Waiter>,
    },
    Start {
        id: Arc<str>,
        mode: WaitMode,
        reply: Option<Waiter>,
    },
    Stop {
        id: Arc<str>,
        reply: Option<Waiter>,
    },
    StartDone {
        id: Arc<str>,
        generation: u64,
        result: Result<(), Error>,
    },
    StopDone {
        id: Arc<str>,
        generation: u64,
        result: Result<(), Error>,
    },
    Report {
        id: Arc<str>,
        generation: u64,
        report: Report,
    },
    Shutdown,
}

/// Shared, read-mostly mirror of every controller's state.
pub(crate) type States = Arc<RwLock<FnvHashMap<Arc<str>, ServiceState>>>;

/// Handle to the loop thread.
pub(crate) struct Engine {
    tx: Sender<Op>,
    states: States,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Engine {
    pub(crate) fn start(bus: Option<Bus>) -> Engine {
        let (tx, rx) = unbounded();
        let states: States = Arc::default();
        let lp = Loop {
            rx,
            tx: tx.clone(),
            controllers: FnvHashMap::default(),
            timers: BinaryHeap::new(),
            seq: 0,
            pool: Pool::new(),
            states: states.clone(),
            bus,
            remove_waiters: FnvHashMap::default(),
        };
        let thread = std::thread::Builder::new()
            .name("wippy-supervisor".into())
            .spawn(move || lp.run())
            .expect("wippy: cannot start the supervisor thread");
        Engine {
            tx,
            states,
            thread: Mutex::new(Some(thread)),
        }
    }

    pub(crate) fn send(&self, op: Op) {
        let _ = self.tx.send(op);
    }

    pub(crate) fn states(&self) -> &States {
        &self.states
    }

    /// Stop the loop (after the caller stopped the services) and join it.
    pub(crate) fn shutdown(&self) {
        let _ = self.tx.send(Op::Shutdown);
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    seq: u64,
    id: Arc<str>,
    kind: u8,
}

fn kind_code(k: TimerKind) -> u8 {
    match k {
        TimerKind::StartTimeout => 0,
        TimerKind::StopTimeout => 1,
        TimerKind::Retry => 2,
    }
}

fn code_kind(c: u8) -> TimerKind {
    match c {
        0 => TimerKind::StartTimeout,
        1 => TimerKind::StopTimeout,
        _ => TimerKind::Retry,
    }
}

struct Loop {
    rx: Receiver<Op>,
    tx: Sender<Op>,
    controllers: FnvHashMap<Arc<str>, Controller>,
    timers: BinaryHeap<Reverse<Timer>>,
    seq: u64,
    pool: Pool,
    states: States,
    bus: Option<Bus>,
    remove_waiters: FnvHashMap<Arc<str>, Vec<Waiter>>,
}

/// The effect sink handed to a controller (borrows everything but the controller map).
struct Fx<'a> {
    tx: &'a Sender<Op>,
    pool: &'a Pool,
    timers: &'a mut BinaryHeap<Reverse<Timer>>,
    seq: &'a mut u64,
    states: &'a States,
    bus: &'a Option<Bus>,
}

impl Effects for Fx<'_> {
    fn call_start(
        &mut self,
        id: &Arc<str>,
        generation: u64,
        service: &Arc<dyn Service>,
        cancel: Arc<AtomicBool>,
    ) {
        let (id, service, tx) = (id.clone(), service.clone(), self.tx.clone());
        self.pool.submit(move || {
            let ctx = ServiceCtx {
                id: id.clone(),
                generation,
                tx: tx.clone(),
                cancelled: cancel,
            };
            let result = match catch_unwind(AssertUnwindSafe(|| service.start(ctx))) {
                Ok(r) => r,
                Err(_) => Err(Error::internal("service start panicked")),
            };
            let _ = tx.send(Op::StartDone {
                id,
                generation,
                result,
            });
        });
    }

    fn call_stop(
        &mut self,
        id: &Arc<str>,
        generation: u64,
        service: &Arc<dyn Service>,
        deadline: Instant,
        report: bool,
    ) {
        let (id, service, tx) = (id.clone(), service.clone(), self.tx.clone());
        self.pool.submit(move || {
            let result = match catch_unwind(AssertUnwindSafe(|| service.stop(deadline))) {
                Ok(r) => r,
                Err(_) => Err(Error::internal("service stop panicked")),
            };
            if report {
                let _ = tx.send(Op::StopDone {
                    id,
                    generation,
                    result,
                });
            }
        });
    }

    fn timer(&mut self, id: &Arc<str>, kind: TimerKind, at: Instant) {
        *self.seq += 1;
        self.timers.push(Reverse(Timer {
            at,
            seq: *self.seq,
            id: id.clone(),
            kind: kind_code(kind),
        }));
    }

    fn publish(&mut self, state: &ServiceState) {
        self.states
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(Arc::from(state.id.as_str()), state.clone());
        log_state(state);
        if let Some(b) = self.bus {
            b.publish(state.event());
        }
    }
}

/// Log a state change as upstream does: transitions at info, failures at warn (retrying) or
/// error (gave up), the transient statuses at debug.
fn log_state(s: &ServiceState) {
    use super::state::Status::*;
    let id = s.id.as_str();
    match s.status {
        Failed if s.details.starts_with("gave up") => {
            log::error!(target: "wippy::supervisor", service = id, retry_count = s.retry_count; "service failed: {}", s.details)
        }
        Failed => {
            log::warn!(target: "wippy::supervisor", service = id, retry_count = s.retry_count; "service failed: {}", s.details)
        }
        Running | Stopped | Exited => {
            log::info!(target: "wippy::supervisor", service = id; "service {}{}{}", s.status, if s.details.is_empty() { "" } else { ": " }, s.details)
        }
        Unknown | Starting | Stopping => {
            log::debug!(target: "wippy::supervisor", service = id; "service {} {}", s.status, s.details)
        }
    }
}

impl Loop {
    fn run(mut self) {
        loop {
            let op = match self.timers.peek() {
                Some(Reverse(t)) => match self.rx.recv_deadline(t.at) {
                    Ok(op) => Some(op),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match self.rx.recv() {
                    Ok(op) => Some(op),
                    Err(_) => return,
                },
            };
            match op {
                Some(Op::Shutdown) => {
                    for c in self.controllers.values_mut() {
                        c.abandon();
                    }
                    return;
                }
                Some(op) => self.handle_guarded(op),
                None => {}
            }
            self.fire_timers();
        }
    }

    fn handle_guarded(&mut self, op: Op) {
        if catch_unwind(AssertUnwindSafe(|| self.handle(op))).is_err() {
            log::error!(target: "wippy::supervisor", "supervisor operation panicked (bug); continuing");
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse(t)) = self.timers.peek() {
            if t.at > now {
                break;
            }
            let Reverse(t) = self.timers.pop().expect("peeked");
            self.with(&t.id, |c, fx| {
                c.on_heap_timer(fx, code_kind(t.kind), t.at, now)
            });
        }
    }

    /// Run `f` on controller `id` (if it exists) with an effect sink, then finish a pending
    /// removal.
    fn with(&mut self, id: &Arc<str>, f: impl FnOnce(&mut Controller, &mut Fx<'_>)) {
        let Some(c) = self.controllers.get_mut(id) else {
            return;
        };
        let mut fx = Fx {
            tx: &self.tx,
            pool: &self.pool,
            timers: &mut self.timers,
            seq: &mut self.seq,
            states: &self.states,
            bus: &self.bus,
        };
        f(c, &mut fx);
        if c.removing && c.is_idle() {
            self.controllers.remove(id);
            self.states
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id);
            for w in self.remove_waiters.remove(id).unwrap_or_default() {
                let _ = w.send(Ok(()));
            }
        }
    }

    fn handle(&mut self, op: Op) {
        match op {
            Op::Register {
                id,
                service,
                config,
            } => {
                if self.controllers.contains_key(&id) {
                    self.with(&id, |c, fx| {
                        c.removing = false;
                        c.replace(fx, service, config)
                    });
                } else {
                    let c = Controller::new(id.clone(), service, config);
                    let st = c.state().clone();
                    self.controllers.insert(id.clone(), c);
                    self.states
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id, st);
                }
            }
            Op::Remove { id, reply } => {
                if !self.controllers.contains_key(&id) {
                    if let Some(w) = reply {
                        let _ = w.send(Ok(()));
                    }
                    return;
                }
                if let Some(w) = reply {
                    self.remove_waiters.entry(id.clone()).or_default().push(w);
                }
                self.with(&id, |c, fx| {
                    c.removing = true;
                    c.stop(fx, None);
                });
            }
            Op::Start { id, mode, reply } => {
                if !self.controllers.contains_key(&id) {
                    if let Some(w) = reply {
                        let _ = w.send(Err(super::unknown_service(&id)));
                    }
                    return;
                }
                self.with(&id, |c, fx| c.start(fx, mode, reply));
            }
            Op::Stop { id, reply } => {
                if !self.controllers.contains_key(&id) {
                    if let Some(w) = reply {
                        let _ = w.send(Ok(()));
                    }
                    return;
                }
                self.with(&id, |c, fx| c.stop(fx, reply));
            }
            Op::StartDone {
                id,
                generation,
                result,
            } => {
                if !self.controllers.contains_key(&id) && result.is_ok() {
                    log::warn!(target: "wippy::supervisor", service = &*id; "service started after its controller was removed");
                }
                self.with(&id, |c, fx| c.on_start_done(fx, generation, result));
            }
            Op::StopDone {
                id,
                generation,
                result,
            } => self.with(&id, |c, fx| c.on_stop_done(fx, generation, result)),
            Op::Report {
                id,
                generation,
                report,
            } => self.with(&id, |c, fx| c.on_report(fx, generation, report)),
            Op::Shutdown => {}
        }
    }
}
