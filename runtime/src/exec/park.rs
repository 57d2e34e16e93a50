//! Per-worker parker: a three-state token (EMPTY / PARKED / NOTIFIED) over a mutex + condvar.
//!
//! The protocol splits parking in two so the worker can announce itself *before* its last look
//! at the queues (see `PARKING` in `docs/scheduler.md`):
//!
//! 1. [`Parker::prepare`]: EMPTY → PARKED (`SeqCst`). If a token is pending (NOTIFIED) it is
//!    consumed and `prepare` returns false: do not sleep.
//! 2. The worker re-checks its queues. Found work → [`Parker::cancel`] (PARKED/NOTIFIED → EMPTY).
//! 3. [`Parker::park`] sleeps until the state is NOTIFIED, then resets it to EMPTY.
//!
//! [`Parker::unpark`] swaps in NOTIFIED and signals the condvar only if the worker was PARKED.
//! Taking the mutex before signalling closes the window between the sleeper's check and its
//! `wait`. A notification that arrives while the worker runs is remembered (NOTIFIED) and makes
//! the next `prepare` return false — never lost, at worst one extra search round.

use crate::sync::{AtomicUsize, Condvar, Mutex, Ordering::SeqCst, lock, wait};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Parker {
    state: AtomicUsize,
    lock: Mutex<()>,
    cvar: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
        }
    }

    /// Announce the intent to sleep. False when a notification was pending (consumed).
    pub(crate) fn prepare(&self) -> bool {
        match self.state.compare_exchange(EMPTY, PARKED, SeqCst, SeqCst) {
            Ok(_) => true,
            Err(NOTIFIED) => {
                self.state.swap(EMPTY, SeqCst);
                false
            }
            Err(s) => unreachable!("parker: prepare in state {s}"),
        }
    }

    /// Abandon a prepared park (work was found); consumes a racing notification too.
    pub(crate) fn cancel(&self) {
        // Swap, not store: `unpark` swaps concurrently (and loom issue #254, see state.rs).
        self.state.swap(EMPTY, SeqCst);
    }

    /// Sleep until notified (after a successful `prepare`).
    pub(crate) fn park(&self) {
        let mut g = lock(&self.lock);
        loop {
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
                .is_ok()
            {
                return;
            }
            g = wait(&self.cvar, g);
        }
    }

    /// Wake the worker (or make its next `prepare` fail).
    pub(crate) fn unpark(&self) {
        if self.state.swap(NOTIFIED, SeqCst) == PARKED {
            drop(lock(&self.lock));
            self.cvar.notify_one();
        }
    }

    /// True between `prepare` and wake-up (used for targeted wake-ups after a `SeqCst` fence).
    #[inline]
    pub(crate) fn is_parked(&self) -> bool {
        self.state.load(SeqCst) == PARKED
    }
}
