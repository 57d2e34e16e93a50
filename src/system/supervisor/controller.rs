//! One controller per service: the restart state machine (spec `runtime-internals.md` §6.6,
//! with the backoff fix of decision 0063).
//!
//! A controller is plain data owned by the supervisor loop ([`super::engine`]); every method
//! here runs on that one thread, so there is no locking. Side effects (calling the service on
//! the pool, arming timers, replying to waiters, publishing state) go through [`Effects`].
//!
//! # Phases and transitions
//!
//! ```text
//!            start()                 StartDone(ok)
//!   Idle ──────────────► Starting ─────────────────► Running
//!    ▲  ▲                  │  │ StartDone(err) /        │ Report(Failed, retryable)
//!    │  │   retry timer    │  │ start timeout           ▼
//!    │  └── Waiting ◄──────┴──┴─────────── on_failure ◄─┘
//!    │        │ (gave up / terminal / stop) ──► Idle
//!    │        ▼
//!    └─── Stopping ◄── stop() from Running (or after a Starting that succeeds)
//!          StopDone / stop timeout ──► Idle (+ restart if a start arrived meanwhile)
//! ```
//!
//! * **Incarnations.** Each start attempt bumps `generation`; pool results, timers and service
//!   reports carry it and are ignored when stale. A start that succeeds after its timeout is
//!   stopped again.
//! * **Retry counting** (upstream rules): every failure adds one; a failure after a run that
//!   lasted at least `stable_threshold` counts as the first. With `max_attempts = N > 0` the
//!   controller gives up once N attempts failed (`max_attempts` counts the first attempt).
//! * **Delays** grow: retry n waits [`Backoff::delay`]`(n)`.
//! * **Never restarted**: normal exits ([`Report::Exited`]), terminal errors, anything while
//!   the desired state is `stopped`.
//! * Reports that arrive while the start call is still in flight (a child that crashed
//!   immediately) are parked and applied right after the start result.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;
use wippy_rt::{Error, Kind};

use super::backoff::Backoff;
use super::config::LifecycleConfig;
use super::service::{Report, Service, is_terminal};
use super::state::{Desired, ServiceState, Status};
use crate::config::duration::format_duration;

/// How long a start waiter waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitMode {
    /// Until running, a terminal exit, giving up, or a stop.
    UntilRunning,
    /// Until the first attempt's outcome (optional services retry in the background).
    FirstAttempt,
}

/// A reply channel for one operation.
pub(crate) type Waiter = Sender<Result<(), Error>>;

/// Timers a controller arms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerKind {
    StartTimeout,
    StopTimeout,
    Retry,
}

/// Side effects requested by a controller.
pub(crate) trait Effects {
    /// Call `service.start(ctx)` on the pool and report `StartDone`.
    fn call_start(
        &mut self,
        id: &Arc<str>,
        generation: u64,
        service: &Arc<dyn Service>,
        cancel: Arc<AtomicBool>,
    );
    /// Call `service.stop(deadline)` on the pool and report `StopDone` (when `report`).
    fn call_stop(
        &mut self,
        id: &Arc<str>,
        generation: u64,
        service: &Arc<dyn Service>,
        deadline: Instant,
        report: bool,
    );
    /// Push a heap timer for `(id, kind)` at `at` (see [`Controller::on_heap_timer`]).
    fn timer(&mut self, id: &Arc<str>, kind: TimerKind, at: Instant);
    /// The observable state changed.
    fn publish(&mut self, state: &ServiceState);
}

/// The phase of the state machine (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Starting,
    Running { since: Instant },
    Waiting,
    Stopping,
}

/// One controller.
pub(crate) struct Controller {
    pub(crate) id: Arc<str>,
    pub(crate) service: Arc<dyn Service>,
    pub(crate) config: Arc<LifecycleConfig>,
    state: ServiceState,
    phase: Phase,
    generation: u64,
    cancel: Arc<AtomicBool>,
    backoff: Backoff,
    start_waiters: Vec<(WaitMode, Waiter)>,
    stop_waiters: Vec<Waiter>,
    /// A report received while the start call was in flight.
    early: Option<Report>,
    /// A start requested while stopping: start again once stopped.
    restart_after_stop: bool,
    /// A new service object waiting for the old one to stop.
    pending_replace: Option<(Arc<dyn Service>, Arc<LifecycleConfig>)>,
    /// Delete once idle.
    pub(crate) removing: bool,
    /// One slot per [`TimerKind`] (see [`Controller::arm`]).
    timers: [TimerSlot; 3],
}

/// Heap-timer bookkeeping of one kind: the earliest entry pushed for it and the deadline
/// currently wanted (with the generation it belongs to). At most one live heap entry per
/// slot, so the loop's heap stays bounded by the number of controllers even when thousands
/// of services restart per second (upstream-style "push and ignore stale" grew it with the
/// restart rate × start_timeout).
#[derive(Clone, Copy, Debug, Default)]
struct TimerSlot {
    armed: Option<Instant>,
    due: Option<(Instant, u64)>,
}

/// Source of incarnation numbers: global, so a stale timer or report of a removed controller
/// can never match a new controller registered under the same id.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, SeqCst)
}

fn slot_index(k: TimerKind) -> usize {
    match k {
        TimerKind::StartTimeout => 0,
        TimerKind::StopTimeout => 1,
        TimerKind::Retry => 2,
    }
}

impl Controller {
    pub(crate) fn new(
        id: Arc<str>,
        service: Arc<dyn Service>,
        config: Arc<LifecycleConfig>,
    ) -> Controller {
        Controller {
            backoff: Backoff::new(&id),
            state: ServiceState::new(&id),
            id,
            service,
            config,
            phase: Phase::Idle,
            generation: next_generation(),
            cancel: Arc::new(AtomicBool::new(false)),
            start_waiters: Vec::new(),
            stop_waiters: Vec::new(),
            early: None,
            restart_after_stop: false,
            pending_replace: None,
            removing: false,
            timers: [TimerSlot::default(); 3],
        }
    }

    /// Want timer `kind` to fire at `at` for the current generation.
    fn arm(&mut self, fx: &mut dyn Effects, kind: TimerKind, at: Instant) {
        let s = &mut self.timers[slot_index(kind)];
        s.due = Some((at, self.generation));
        if s.armed.is_none_or(|a| a > at) {
            s.armed = Some(at);
            fx.timer(&self.id, kind, at);
        }
    }

    /// Forget timer `kind` (its heap entry, if any, fires into nothing).
    fn disarm(&mut self, kind: TimerKind) {
        self.timers[slot_index(kind)].due = None;
    }

    /// A heap entry for `kind` scheduled at `at` fired at `now`.
    pub(crate) fn on_heap_timer(
        &mut self,
        fx: &mut dyn Effects,
        kind: TimerKind,
        at: Instant,
        now: Instant,
    ) {
        let s = &mut self.timers[slot_index(kind)];
        if s.armed == Some(at) {
            s.armed = None;
        }
        match s.due {
            Some((d, generation)) if d <= now => {
                s.due = None;
                self.on_timer(fx, generation, kind);
            }
            Some((d, _)) if s.armed.is_none_or(|a| a > d) => {
                s.armed = Some(d);
                fx.timer(&self.id, kind, d);
            }
            Some(_) => {}
            None => {}
        }
    }

    /// The observable state.
    pub(crate) fn state(&self) -> &ServiceState {
        &self.state
    }

    /// True when nothing runs and nothing is pending.
    pub(crate) fn is_idle(&self) -> bool {
        self.phase == Phase::Idle
    }

    fn set(&mut self, fx: &mut dyn Effects, status: Status, details: impl Into<String>) {
        self.state.status = status;
        self.state.details = details.into();
        self.state.last_update = SystemTime::now();
        if status != Status::Failed || self.phase != Phase::Waiting {
            self.state.next_retry_in = None;
        }
        fx.publish(&self.state);
    }

    fn reply_start(&mut self, r: &Result<(), Error>, only_first: bool) {
        self.start_waiters.retain(|(mode, w)| {
            if only_first && *mode != WaitMode::FirstAttempt {
                return true;
            }
            let _ = w.send(r.clone());
            false
        });
    }

    fn reply_stop(&mut self, r: &Result<(), Error>) {
        for w in self.stop_waiters.drain(..) {
            let _ = w.send(r.clone());
        }
    }

    // ===== requests =====

    /// Register a new service object or configuration for this id.
    pub(crate) fn replace(
        &mut self,
        fx: &mut dyn Effects,
        service: Arc<dyn Service>,
        config: Arc<LifecycleConfig>,
    ) {
        if Arc::ptr_eq(&self.service, &service) {
            self.config = config;
            return;
        }
        if self.phase == Phase::Idle {
            self.service = service;
            self.config = config;
            return;
        }
        // Stop the old object first; restart with the new one if it was wanted running.
        self.pending_replace = Some((service, config));
        self.restart_after_stop = self.state.desired == Desired::Running;
        match self.phase {
            Phase::Running { .. } => self.begin_stop(fx),
            Phase::Starting => self.cancel.store(true, SeqCst),
            Phase::Waiting => {
                self.generation = next_generation();
                self.phase = Phase::Idle;
                self.finish_idle(fx);
            }
            Phase::Stopping | Phase::Idle => {}
        }
    }

    /// Desired = running; start unless running or already on the way.
    pub(crate) fn start(&mut self, fx: &mut dyn Effects, mode: WaitMode, waiter: Option<Waiter>) {
        self.state.desired = Desired::Running;
        match self.phase {
            Phase::Running { .. } => {
                if let Some(w) = waiter {
                    let _ = w.send(Ok(()));
                }
            }
            Phase::Starting | Phase::Waiting => {
                if let Some(w) = waiter {
                    self.start_waiters.push((mode, w));
                }
            }
            Phase::Stopping => {
                if let Some(w) = waiter {
                    self.start_waiters.push((mode, w));
                }
                self.restart_after_stop = true;
            }
            Phase::Idle => {
                if let Some(w) = waiter {
                    self.start_waiters.push((mode, w));
                }
                self.state.retry_count = 0;
                self.attempt(fx);
            }
        }
    }

    /// Desired = stopped; stop whatever runs.
    pub(crate) fn stop(&mut self, fx: &mut dyn Effects, waiter: Option<Waiter>) {
        self.state.desired = Desired::Stopped;
        self.restart_after_stop = false;
        match self.phase {
            Phase::Idle => {
                if let Some(w) = waiter {
                    let _ = w.send(Ok(()));
                }
                self.finish_idle(fx);
            }
            Phase::Waiting => {
                self.generation = next_generation(); // invalidates the retry timer
                self.disarm(TimerKind::Retry);
                self.phase = Phase::Idle;
                self.reply_start(&Err(stopped_error(&self.id)), false);
                self.set(fx, Status::Stopped, "");
                if let Some(w) = waiter {
                    let _ = w.send(Ok(()));
                }
                self.finish_idle(fx);
            }
            Phase::Starting => {
                // Abandon the start; its result decides (success → stop it, failure → stopped).
                self.cancel.store(true, SeqCst);
                if let Some(w) = waiter {
                    self.stop_waiters.push(w);
                }
            }
            Phase::Running { .. } => {
                if let Some(w) = waiter {
                    self.stop_waiters.push(w);
                }
                self.begin_stop(fx);
            }
            Phase::Stopping => {
                if let Some(w) = waiter {
                    self.stop_waiters.push(w);
                }
            }
        }
    }

    // ===== internal steps =====

    fn attempt(&mut self, fx: &mut dyn Effects) {
        self.generation = next_generation();
        self.cancel = Arc::new(AtomicBool::new(false));
        self.early = None;
        self.phase = Phase::Starting;
        let n = self.state.retry_count + 1;
        self.set(fx, Status::Starting, format!("attempt {n}"));
        fx.call_start(
            &self.id,
            self.generation,
            &self.service,
            self.cancel.clone(),
        );
        let at = Instant::now() + self.config.start_timeout;
        self.arm(fx, TimerKind::StartTimeout, at);
    }

    fn begin_stop(&mut self, fx: &mut dyn Effects) {
        self.cancel.store(true, SeqCst);
        self.phase = Phase::Stopping;
        self.set(fx, Status::Stopping, "");
        let deadline = Instant::now() + self.config.stop_timeout;
        fx.call_stop(&self.id, self.generation, &self.service, deadline, true);
        self.arm(fx, TimerKind::StopTimeout, deadline);
    }

    /// Idle again: apply a pending replacement and a queued start.
    fn finish_idle(&mut self, fx: &mut dyn Effects) {
        if let Some((s, c)) = self.pending_replace.take() {
            self.service = s;
            self.config = c;
        }
        if self.restart_after_stop && !self.removing {
            self.restart_after_stop = false;
            self.state.desired = Desired::Running;
            self.state.retry_count = 0;
            self.attempt(fx);
        }
    }

    // ===== results =====

    pub(crate) fn on_start_done(
        &mut self,
        fx: &mut dyn Effects,
        generation: u64,
        r: Result<(), Error>,
    ) {
        if generation != self.generation || self.phase != Phase::Starting {
            if r.is_ok() {
                // A start that finished after its timeout or after a newer attempt: stop it.
                let deadline = Instant::now() + self.config.stop_timeout;
                fx.call_stop(&self.id, generation, &self.service, deadline, false);
            }
            return;
        }
        self.disarm(TimerKind::StartTimeout);
        match r {
            Ok(()) if self.state.desired == Desired::Stopped || self.pending_replace.is_some() => {
                self.phase = Phase::Running {
                    since: Instant::now(),
                };
                if self.state.desired == Desired::Stopped {
                    self.reply_start(&Err(stopped_error(&self.id)), false);
                }
                self.begin_stop(fx);
            }
            Ok(()) => {
                self.phase = Phase::Running {
                    since: Instant::now(),
                };
                self.state.started_at = Some(SystemTime::now());
                self.set(fx, Status::Running, "");
                self.reply_start(&Ok(()), false);
                if let Some(early) = self.early.take() {
                    self.on_report(fx, generation, early);
                }
            }
            Err(e) => self.on_failure(fx, e, None),
        }
    }

    pub(crate) fn on_report(&mut self, fx: &mut dyn Effects, generation: u64, report: Report) {
        if generation != self.generation {
            return;
        }
        match (self.phase, report) {
            (Phase::Idle, Report::Details(_)) => {}
            (_, Report::Details(d)) => {
                let status = self.state.status;
                self.set(fx, status, d);
            }
            (Phase::Starting, r) => self.early = Some(r),
            (Phase::Running { .. }, Report::Exited) => {
                self.phase = Phase::Idle;
                self.set(fx, Status::Exited, "");
                self.finish_idle(fx);
            }
            (Phase::Running { since }, Report::Failed(e)) => self.on_failure(fx, e, Some(since)),
            // Ending while stopping is the expected outcome; StopDone completes the stop.
            _ => {}
        }
    }

    /// A failed start (`ran_since` None) or a crashed run.
    fn on_failure(&mut self, fx: &mut dyn Effects, err: Error, ran_since: Option<Instant>) {
        self.cancel.store(true, SeqCst);
        if self.pending_replace.is_some() {
            // The old object failed while being replaced: go straight to the new one.
            self.phase = Phase::Idle;
            self.finish_idle(fx);
            return;
        }
        if is_terminal(&err) {
            self.phase = Phase::Idle;
            self.set(fx, Status::Exited, err.to_string());
            self.reply_start(&Err(err), false);
            self.finish_idle(fx);
            return;
        }
        if self.state.desired == Desired::Stopped {
            self.phase = Phase::Idle;
            self.set(fx, Status::Stopped, err.to_string());
            self.reply_start(&Err(err), false);
            let ok = Ok(());
            self.reply_stop(&ok);
            self.finish_idle(fx);
            return;
        }
        let stable = ran_since.is_some_and(|s| s.elapsed() >= self.config.stable_threshold);
        self.state.retry_count = if stable {
            1
        } else {
            self.state.retry_count + 1
        };
        let n = self.state.retry_count;
        let max = self.config.restart.max_attempts;
        self.reply_start(&Err(err.clone()), true);
        if max > 0 && n >= max {
            self.phase = Phase::Idle;
            self.set(
                fx,
                Status::Failed,
                format!("gave up after {n} attempts: {err}"),
            );
            let gave_up = Error::new(
                Kind::UNAVAILABLE,
                format!("service {} failed after {n} attempts: {err}", self.id),
            )
            .with_retryable(Some(false));
            self.reply_start(&Err(gave_up), false);
            return;
        }
        let delay = self.backoff.delay(&self.config.restart, n);
        self.phase = Phase::Waiting;
        self.state.next_retry_in = Some(delay);
        self.set(
            fx,
            Status::Failed,
            format!("{err}; retry {n} in {}", format_duration(round_ms(delay))),
        );
        self.arm(fx, TimerKind::Retry, Instant::now() + delay);
    }

    pub(crate) fn on_timer(&mut self, fx: &mut dyn Effects, generation: u64, kind: TimerKind) {
        if generation != self.generation {
            return;
        }
        match (kind, self.phase) {
            (TimerKind::StartTimeout, Phase::Starting) => {
                let e = Error::new(Kind::TIMEOUT, "service start timed out")
                    .with_detail("timeout", format_duration(self.config.start_timeout));
                // Make the late StartDone stale; it stops the late service.
                self.generation = next_generation();
                self.on_failure(fx, e, None);
            }
            (TimerKind::Retry, Phase::Waiting) if self.state.desired == Desired::Running => {
                self.attempt(fx);
            }
            (TimerKind::StopTimeout, Phase::Stopping) => {
                self.generation = next_generation();
                self.phase = Phase::Idle;
                let d = format_duration(self.config.stop_timeout);
                self.set(fx, Status::Failed, format!("stop timeout after {d}"));
                self.reply_stop(&Err(Error::new(Kind::TIMEOUT, "service stop timed out")));
                self.finish_idle(fx);
            }
            _ => {}
        }
    }

    pub(crate) fn on_stop_done(
        &mut self,
        fx: &mut dyn Effects,
        generation: u64,
        r: Result<(), Error>,
    ) {
        if generation != self.generation || self.phase != Phase::Stopping {
            return;
        }
        self.disarm(TimerKind::StopTimeout);
        self.phase = Phase::Idle;
        let details = r.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
        self.set(fx, Status::Stopped, details);
        self.reply_stop(&r);
        self.finish_idle(fx);
    }

    /// Fail every waiter (supervisor shutting down).
    pub(crate) fn abandon(&mut self) {
        let e = Error::unavailable("supervisor is shutting down");
        self.reply_start(&Err(e.clone()), false);
        self.reply_stop(&Err(e));
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[cold]
fn stopped_error(id: &str) -> Error {
    Error::new(Kind::CANCELED, format!("service {id} was stopped")).with_retryable(Some(false))
}
