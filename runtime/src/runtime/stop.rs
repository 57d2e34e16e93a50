//! Stopping processes (spec §2.12): CANCEL everyone, wait, then force.
//!
//! 1. Mark stopping (the runtime or the host): new spawns fail, ordinary sends to the host
//!    fail with "host is shutting down"; control traffic (`@pid/events`) still flows.
//! 2. Deliver a CANCEL event (`from` = the zero PID, reason "scheduler shutdown") to every
//!    live process in scope; Idle/Blocked processes wake up to see it.
//! 3. Wait until none is left or the deadline passes (exits signal a condvar).
//! 4. Force the rest: each is killed with `Canceled` "context canceled" — seized and finished
//!    on this thread when it is not running; when it is inside a step, the owning worker
//!    finishes it right after that step.
//! 5. Wait briefly for those owners (until the deadline plus [`FORCE_GRACE`]); processes still
//!    inside a step after that (a step that never returns) are reported as `stuck` — without
//!    preemption nothing else can be done, and the stop still returns on time.
//!
//! Called on a worker thread, the stop cannot wait for processes that this very worker would
//! have to run; it then skips step 3 (cancel, then force at once).

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use crate::exec::worker::is_worker_of;
use crate::process::cell::{Cell, KILL_FORCED};
use crate::process::{SHUTDOWN_REASON, cancel_package};
use crate::runtime::{Handle, StopReport, push_message};

/// Extra time given to workers to finish forced processes that were mid-step at the deadline.
pub const FORCE_GRACE: Duration = Duration::from_millis(50);

impl Handle {
    /// Stop every process: CANCEL, wait up to `timeout`, force the rest (see the module docs).
    /// New spawns fail with "scheduler is stopping" from now on.
    pub fn stop(&self, timeout: Duration) -> StopReport {
        self.shared.stopping.store(true, SeqCst);
        for h in self
            .shared
            .hosts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            h.stopping.store(true, SeqCst);
        }
        self.stop_where(timeout, |_| true)
    }

    pub(crate) fn stop_where(
        &self,
        timeout: Duration,
        scope: impl Fn(&Cell) -> bool,
    ) -> StopReport {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut report = StopReport::default();
        let cells: Vec<Arc<Cell>> = self
            .shared
            .table
            .snapshot()
            .into_iter()
            .filter(|c| scope(c))
            .collect();
        report.cancelled = cells.len();
        for c in &cells {
            let _ = push_message(
                c,
                cancel_package(&crate::pid::Pid::zero(), &c.pid, SHUTDOWN_REASON),
            );
        }
        let live = |cells: &[Arc<Cell>]| cells.iter().filter(|c| !c.state.is_complete()).count();
        if !is_worker_of(&self.shared.exec) {
            let mut g = self
                .shared
                .exit_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            while live(&cells) > 0 {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                // Bounded waits: exits notify, but a notification may race with the check.
                let wait = (deadline - now).min(Duration::from_millis(10));
                g = self
                    .shared
                    .exit_cv
                    .wait_timeout(g, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        report.exited = cells.len() - live(&cells);
        for c in &cells {
            if !c.state.is_complete() {
                report.forced += 1;
                self.kill(c, KILL_FORCED);
            }
        }
        let grace_end = deadline.max(Instant::now()) + FORCE_GRACE;
        while live(&cells) > 0 && Instant::now() < grace_end && !is_worker_of(&self.shared.exec) {
            std::thread::sleep(Duration::from_millis(1));
        }
        report.stuck = live(&cells);
        report.elapsed = started.elapsed();
        report
    }
}
