//! CANCEL (graceful, optionally with a deadline) and terminate (forced) — spec
//! `runtime-internals.md` §4.7, `lua-api.md` §3.7.
//!
//! * [`Topology::cancel`] delivers a `pid.cancel` event `{kind, from = canceller, at, reason}`
//!   on `@pid/events` (package source = the system PID `{|topology}`). Delivery is all the
//!   caller learns: the event is cooperative, the target decides what to do.
//! * With a **deadline** (decision 0061 — upstream has none; its `process/spec.md` documents
//!   one), a native watcher monitors the target and arms a runtime timer: if the target has
//!   not exited when the timer fires it is terminated; if it exits first, the EXIT reaches the
//!   watcher, which cancels the timer and unregisters itself. Either way exactly one of the two
//!   paths runs (a `done` flag), and nothing is left behind.
//! * [`Topology::terminate`] kills at once: the process exits with `Internal` "process
//!   terminated" after the step it may be running (no preemption).
//!
//! Unknown destinations are reported as upstream: a PID on an unknown host → `NotFound`
//! "host not found"; a dead PID on a known host → `NotFound` "process not found".

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wippy_rt::reactor::TimerHandle;
use wippy_rt::{Error, Pid};

use super::Topology;
use super::watch::Watch;

/// Topic of the deadline timer message sent to an escalation watcher.
pub const DEADLINE_TOPIC: &str = "@cancel/deadline";

/// The optional second argument of `process.cancel`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CancelArg {
    /// Reason carried by the event (empty when none).
    pub reason: String,
    /// Terminate the target if it is still alive after this long.
    pub deadline: Option<Duration>,
}

/// State shared by an escalation watcher and the code arming it.
struct Escalation {
    done: AtomicBool,
    watch: Mutex<Option<Watch>>,
    timer: Mutex<Option<TimerHandle>>,
}

impl Topology {
    /// Check that `pid` could be a live local process: its host exists on this node.
    fn check_host(&self, pid: &Pid) -> Result<(), Error> {
        let node = self.handle().node();
        if node.is_local(pid) && node.get_host(pid.host()).is_none() {
            return Err(Error::not_found("host not found")
                .with_detail("host_id", pid.host())
                .with_detail("node_id", node.id()));
        }
        Ok(())
    }

    /// Deliver CANCEL from `from` to `target` with `arg.reason`; with `arg.deadline`, terminate
    /// the target if it is still alive when the deadline passes.
    ///
    /// # Errors
    /// `NotFound` "host not found" / "process not found"; `Unavailable` "host is shutting
    /// down" is not returned (CANCEL is control traffic and still flows during a stop).
    pub fn cancel(&self, from: &Pid, target: &Pid, arg: &CancelArg) -> Result<(), Error> {
        self.check_host(target)?;
        self.handle().cancel(target, from, &arg.reason)?;
        if let Some(d) = arg.deadline {
            self.escalate(target, d);
        }
        Ok(())
    }

    /// Terminate `target` at once.
    ///
    /// # Errors
    /// `NotFound` "host not found" / "process not found".
    pub fn terminate(&self, target: &Pid) -> Result<(), Error> {
        self.check_host(target)?;
        self.handle().terminate(target)
    }

    /// Arm the deadline escalation for `target` (see the module docs).
    fn escalate(&self, target: &Pid, after: Duration) {
        let esc = Arc::new(Escalation {
            done: AtomicBool::new(false),
            watch: Mutex::new(None),
            timer: Mutex::new(None),
        });
        let (e2, h, victim) = (esc.clone(), self.handle().clone(), target.clone());
        let w = self.watch(move |pkg| {
            if e2.done.swap(true, SeqCst) {
                return;
            }
            if let Some(t) = lock(&e2.timer).take() {
                t.cancel();
            }
            if pkg.topic == DEADLINE_TOPIC {
                let _ = h.terminate(&victim);
            }
            // Unregister (drops the closure holding `e2`; no lock is held by the host).
            drop(lock(&e2.watch).take());
        });
        let wpid = w.pid().clone();
        *lock(&esc.watch) = Some(w);
        if self.graph().monitor(&wpid, target).is_err() {
            // Already gone: nothing to escalate.
            esc.done.store(true, SeqCst);
            drop(lock(&esc.watch).take());
            return;
        }
        let t = self
            .handle()
            .timer(Instant::now() + after, &wpid, DEADLINE_TOPIC);
        let mut g = lock(&esc.timer);
        if esc.done.load(SeqCst) {
            t.cancel();
        } else {
            *g = Some(t);
        }
    }
}

#[inline]
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
