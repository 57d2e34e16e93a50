//! Timers: sleep (complete a yield), one-shot message timers and tickers.
//!
//! All timers live in the reactor thread's min-heap of `(deadline, seq)`. A timer is an
//! `Arc<TimerEntry>` shared by the heap and its [`TimerHandle`]:
//!
//! * `state` — ACTIVE / CANCELLED / FIRED. Cancel is a CAS ACTIVE → CANCELLED done by the
//!   handle without waking the reactor (the heap entry is skipped lazily when it surfaces).
//! * `version` — bumped by `reset`; heap entries carry the version they were pushed with and
//!   stale ones are skipped, so a reset timer fires once, at its new deadline.
//!
//! A ticker re-arms itself at `deadline + period`; if the reactor fell behind by more than a
//! period (or the machine slept), the missed ticks are **dropped** and the next tick is aligned
//! to the original schedule after `now` — never a burst of catch-up ticks. A ticker whose
//! target process no longer exists stops itself.

use std::cmp::Ordering as CmpOrdering;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Kind};
use crate::pid::Pid;
use crate::process::Completer;
use crate::reactor::{Op, ReactorShared};

pub(crate) const ACTIVE: u8 = 0;
pub(crate) const CANCELLED: u8 = 1;
pub(crate) const FIRED: u8 = 2;

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    /// Complete a yield with `Ok(nil)` (sleep).
    Complete(Option<Completer>),
    /// Send one message `{from, to, topic, [at]}`.
    Message { from: Pid, to: Pid, topic: String },
    /// Send a message every `period`.
    Ticker {
        from: Pid,
        to: Pid,
        topic: String,
        period: Duration,
    },
}

pub(crate) struct TimerEntry {
    pub(crate) id: u64,
    pub(crate) state: AtomicU8,
    pub(crate) version: AtomicU64,
    pub(crate) action: Mutex<TimerAction>,
}

/// A heap entry (min-heap by deadline, then insertion order).
pub(crate) struct Scheduled {
    pub(crate) deadline: Instant,
    pub(crate) seq: u64,
    pub(crate) version: u64,
    pub(crate) entry: Arc<TimerEntry>,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        self.deadline == o.deadline && self.seq == o.seq
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        // Reversed: BinaryHeap is a max-heap.
        o.deadline
            .cmp(&self.deadline)
            .then_with(|| o.seq.cmp(&self.seq))
    }
}

/// Next tick strictly after `now` on the grid `deadline + k * period` (drops missed ticks).
pub(crate) fn next_tick(deadline: Instant, period: Duration, now: Instant) -> Instant {
    let next = deadline + period;
    if next > now {
        return next;
    }
    let behind = now.duration_since(deadline).as_nanos();
    let p = period.as_nanos().max(1);
    let k = behind / p + 1;
    deadline + Duration::from_nanos((k * p).min(u64::MAX as u128) as u64)
}

/// A handle to a timer: cancel or reset it. Dropping the handle does **not** cancel the timer
/// (a sleep or one-shot runs to completion; a ticker runs until cancelled or its target exits).
pub struct TimerHandle {
    pub(crate) entry: Arc<TimerEntry>,
    pub(crate) reactor: Arc<ReactorShared>,
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("id", &self.entry.id)
            .field("state", &self.entry.state.load(SeqCst))
            .finish()
    }
}

impl TimerHandle {
    /// The timer id (unique per runtime).
    pub fn id(&self) -> u64 {
        self.entry.id
    }

    /// Stop the timer. Returns true if it was still pending (a ticker: still running). A
    /// cancelled sleep completes its yield with `Canceled` "timer stopped".
    pub fn cancel(&self) -> bool {
        if self
            .entry
            .state
            .compare_exchange(ACTIVE, CANCELLED, SeqCst, SeqCst)
            .is_err()
        {
            return false;
        }
        let mut a = self.entry.action.lock().unwrap_or_else(|p| p.into_inner());
        if let TimerAction::Complete(c) = &mut *a
            && let Some(c) = c.take()
        {
            drop(a);
            c.complete(Err(Error::new(Kind::CANCELED, "timer stopped")));
        }
        true
    }

    /// Re-arm the timer for `deadline` (also after it fired, for message timers and tickers).
    /// Returns false when it was cancelled, or is a sleep that already completed.
    pub fn reset(&self, deadline: Instant) -> bool {
        let st = self.entry.state.load(SeqCst);
        if st == CANCELLED {
            return false;
        }
        if st == FIRED {
            let a = self.entry.action.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(&*a, TimerAction::Complete(_)) {
                return false;
            }
            drop(a);
            if self
                .entry
                .state
                .compare_exchange(FIRED, ACTIVE, SeqCst, SeqCst)
                .is_err()
            {
                return false;
            }
        }
        let version = self.entry.version.fetch_add(1, SeqCst) + 1;
        self.reactor.submit(Op::Arm {
            entry: self.entry.clone(),
            deadline,
            version,
        });
        true
    }

    /// True while pending.
    pub fn is_active(&self) -> bool {
        self.entry.state.load(SeqCst) == ACTIVE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_drop_missed() {
        let t0 = Instant::now();
        let p = Duration::from_millis(10);
        assert_eq!(next_tick(t0, p, t0), t0 + p);
        assert_eq!(
            next_tick(t0, p, t0 + Duration::from_millis(35)),
            t0 + Duration::from_millis(40)
        );
        assert_eq!(
            next_tick(t0, p, t0 + Duration::from_millis(40)),
            t0 + Duration::from_millis(50)
        );
    }
}
