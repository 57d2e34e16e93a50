//! Idle accounting: who is searching for work, who sleeps, and whom to wake.
//!
//! Modelled on tokio's `multi_thread/idle.rs`. One atomic word packs two counters:
//!
//! ```text
//!  bits 63..16: unparked workers   bits 15..0: searching workers
//! ```
//!
//! plus a mutex-protected list of sleeping worker indices.
//!
//! # Rules
//!
//! 1. **No thundering herd.** [`Idle::worker_to_notify`] (called after new stealable work was
//!    queued) wakes a sleeper only when *no* worker is searching: a searcher will find the
//!    work. The woken worker is counted as searching *by the notifier*, so concurrent notifiers
//!    don't wake a second one.
//! 2. **The last searcher re-checks.** A worker that stops searching because it found work and
//!    was the last searcher wakes another worker (there may be more work that notifiers skipped
//!    because of rule 1). A worker that parks as the last searcher re-checks every queue after
//!    announcing itself parked; if anything is there it does not sleep.
//! 3. Both sides use `SeqCst` (a fence before the notifier's load), the store-buffering
//!    argument of `docs/scheduler.md` § Parking.

use crate::sync::{AtomicUsize, Mutex, Ordering::SeqCst, fence, lock};

const SEARCH_MASK: usize = 0xFFFF;
const UNPARK_SHIFT: usize = 16;
const UNPARK_ONE: usize = 1 << UNPARK_SHIFT;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Idle {
    state: AtomicUsize,
    sleepers: Mutex<Vec<usize>>,
    workers: usize,
}

fn searching(s: usize) -> usize {
    s & SEARCH_MASK
}
fn unparked(s: usize) -> usize {
    s >> UNPARK_SHIFT
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Idle {
        assert!(workers > 0 && workers < SEARCH_MASK);
        Idle {
            state: AtomicUsize::new(workers << UNPARK_SHIFT),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            workers,
        }
    }

    /// After queueing stealable work: the worker to unpark, if one should be woken (rule 1).
    /// The returned worker is already counted as unparked and searching.
    pub(crate) fn worker_to_notify(&self) -> Option<usize> {
        fence(SeqCst);
        let s = self.state.load(SeqCst);
        if searching(s) != 0 || unparked(s) >= self.workers {
            return None;
        }
        let mut sl = lock(&self.sleepers);
        let s = self.state.load(SeqCst);
        if searching(s) != 0 {
            return None;
        }
        let w = sl.pop()?;
        self.state.fetch_add(UNPARK_ONE + 1, SeqCst);
        Some(w)
    }

    /// Try to become a searcher. Limited to half the unparked workers so a burst of wake-ups
    /// does not turn every worker into a thief at once (tokio's rule).
    pub(crate) fn try_transition_to_searching(&self) -> bool {
        let s = self.state.load(SeqCst);
        if 2 * searching(s) >= unparked(s) && searching(s) != 0 {
            return false;
        }
        self.state.fetch_add(1, SeqCst);
        true
    }

    /// A searcher found work. Returns true when it was the last searcher (rule 2: the caller
    /// must then notify another worker).
    pub(crate) fn transition_from_searching(&self) -> bool {
        searching(self.state.fetch_sub(1, SeqCst)) == 1
    }

    /// Register `index` as sleeping. Returns true when it was the last searcher (the caller must
    /// re-check every queue before sleeping).
    pub(crate) fn transition_to_parked(&self, index: usize, was_searching: bool) -> bool {
        let mut sl = lock(&self.sleepers);
        let dec = UNPARK_ONE + usize::from(was_searching);
        let prev = self.state.fetch_sub(dec, SeqCst);
        sl.push(index);
        was_searching && searching(prev) == 1
    }

    /// The worker woke up (or gave up parking). Returns true when a notifier had already
    /// removed it from the sleepers and counted it as searching; false when it removed itself
    /// (it is then counted unparked, not searching).
    pub(crate) fn transition_from_parked(&self, index: usize) -> bool {
        let mut sl = lock(&self.sleepers);
        if let Some(pos) = sl.iter().position(|&w| w == index) {
            sl.swap_remove(pos);
            self.state.fetch_add(UNPARK_ONE, SeqCst);
            false
        } else {
            true
        }
    }

    /// (searching, unparked) snapshot for stats and tests.
    #[allow(dead_code)]
    pub(crate) fn counts(&self) -> (usize, usize) {
        let s = self.state.load(SeqCst);
        (searching(s), unparked(s))
    }
}
