//! The packed process state word.
//!
//! One `AtomicU32` per process decides who may run it and whether a wake-up is needed. Layout
//! (the same as the Go original's `Processor.state`, spec §2.2):
//!
//! ```text
//!  bit  31 ........ 5 | 4      | 3 2 1 0
//!       unused (0)    | WAKEUP | state: READY=0 RUNNING=1 BLOCKED=2 IDLE=3 COMPLETE=4
//! ```
//!
//! # Transition table
//!
//! | from            | to              | who                         | method              |
//! |-----------------|-----------------|-----------------------------|---------------------|
//! | READY           | RUNNING         | a worker that popped it     | `StateWord::try_acquire` |
//! | IDLE / BLOCKED  | READY           | a notifier (message, completion, terminate) — the winner queues it | `StateWord::notify` |
//! | RUNNING         | RUNNING+WAKEUP  | a notifier while the owner runs the step | `StateWord::notify` |
//! | RUNNING(+W)     | READY           | the owner, when WAKEUP was set and events are pending, or on `Continue` | `StateWord::finish_step` |
//! | RUNNING         | IDLE / BLOCKED  | the owner after a step, only if WAKEUP is clear (CAS on the whole word) | `StateWord::finish_step` |
//! | READY/IDLE/BLOCKED | RUNNING      | a non-worker taking ownership to kill (terminate, forced stop) | `StateWord::try_seize` |
//! | RUNNING         | COMPLETE        | the owner (exit, error, kill)  | `StateWord::complete` |
//!
//! # Invariants
//!
//! 1. **Single owner.** Only the thread whose CAS moved the word *into* RUNNING touches the
//!    process object; it leaves RUNNING only by its own store/CAS.
//! 2. **One queue entry per READY.** Whoever moves the word into READY (a notifier winning
//!    IDLE/BLOCKED→READY, or the owner on requeue) pushes exactly one run-queue entry. Entries
//!    that lose the READY→RUNNING race (because a killer seized the process) are dropped.
//! 3. **WAKEUP only while RUNNING.** Notifiers set it only on a RUNNING word; the owner clears it
//!    before leaving RUNNING. A notifier that finds WAKEUP already set does nothing: the owner
//!    is guaranteed to look at the event queue after clearing the bit.
//! 4. **No lost wake-up.** An event is pushed *before* `StateWord::notify` runs. The owner, in
//!    `StateWord::finish_step`, either (a) sees WAKEUP, clears it, and re-checks the queue, or
//!    (b) parks the word with a CAS that fails if WAKEUP appeared. The notifier's
//!    push-then-load and the owner's clear-then-check form a store-buffering pair, made sound
//!    by a `SeqCst` fence on each side (`notify` starts with one; `finish_step` has one between
//!    clearing the bit and looking at the queue), so at least one side sees the other (see
//!    `docs/scheduler.md`). Fences rather than `SeqCst` accesses alone, because the C++/Rust
//!    model only guarantees store-buffering through fences, and loom checks fences (it treats
//!    `SeqCst` accesses as `AcqRel`).
//!
//! The CAS loops retry *until the masked state changes or the wanted transition happens*: a CAS
//! that fails only because WAKEUP flipped is retried, never given up (the lost-wake-up bug of
//! Wippy PR #325). The `loom_state_*` models in `src/tests/loom_state.rs` check these rules.

use crate::sync::{AtomicU32, Ordering::SeqCst, fence};

/// Runnable, in (or about to be put in) exactly one run queue.
pub(crate) const READY: u32 = 0;
/// Owned by one worker, inside `step` or its aftermath.
pub(crate) const RUNNING: u32 = 1;
/// Waiting on yielded commands.
pub(crate) const BLOCKED: u32 = 2;
/// Waiting on messages.
pub(crate) const IDLE: u32 = 3;
/// Finished; never runs again.
pub(crate) const COMPLETE: u32 = 4;
/// Mask of the state bits.
pub(crate) const STATE_MASK: u32 = 0xF;
/// "An event arrived while RUNNING": the owner must re-check the queue before parking.
pub(crate) const WAKEUP: u32 = 0x10;

/// The observable state of a process (introspection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcessState {
    /// Runnable, waiting for a worker.
    Ready,
    /// Being stepped by a worker.
    Running,
    /// Waiting for command completions.
    Blocked,
    /// Waiting for messages.
    Idle,
    /// Finished.
    Complete,
}

impl ProcessState {
    /// The original's inspection name: `ready|running|blocked|idle|complete`.
    pub fn name(self) -> &'static str {
        match self {
            ProcessState::Ready => "ready",
            ProcessState::Running => "running",
            ProcessState::Blocked => "blocked",
            ProcessState::Idle => "idle",
            ProcessState::Complete => "complete",
        }
    }

    pub(crate) fn from_bits(w: u32) -> ProcessState {
        match w & STATE_MASK {
            READY => ProcessState::Ready,
            RUNNING => ProcessState::Running,
            BLOCKED => ProcessState::Blocked,
            IDLE => ProcessState::Idle,
            _ => ProcessState::Complete,
        }
    }
}

/// What a notifier must do after `StateWord::notify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// It moved the process to READY: it must push it to a run queue.
    Schedule,
    /// Nothing: the process is already runnable, running (wake-up flag set) or complete.
    None,
}

/// The atomic state word of one process.
#[derive(Debug)]
pub(crate) struct StateWord(AtomicU32);

impl StateWord {
    /// A fresh word in READY (the spawner queues it).
    pub(crate) fn new() -> StateWord {
        StateWord(AtomicU32::new(READY))
    }

    /// The current state (racy snapshot, for introspection and assertions).
    pub(crate) fn get(&self) -> ProcessState {
        ProcessState::from_bits(self.0.load(SeqCst))
    }

    /// READY → RUNNING. Success grants exclusive ownership of the process object.
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        self.0
            .compare_exchange(READY, RUNNING, SeqCst, SeqCst)
            .is_ok()
    }

    /// READY | IDLE | BLOCKED → RUNNING from any thread, to kill the process outside a worker.
    /// Returns false when it is RUNNING (the owner must handle the kill) or COMPLETE.
    pub(crate) fn try_seize(&self) -> bool {
        let mut cur = self.0.load(SeqCst);
        loop {
            match cur & STATE_MASK {
                READY | IDLE | BLOCKED => {
                    match self.0.compare_exchange(cur, RUNNING, SeqCst, SeqCst) {
                        Ok(_) => return true,
                        Err(now) => cur = now,
                    }
                }
                _ => return false,
            }
        }
    }

    /// Called after an event was pushed to the process's queue (or a kill flag was set).
    #[inline]
    pub(crate) fn notify(&self) -> Wake {
        // Store-buffering pair with the owner's fence in `finish_step` / `drain_into`: the
        // push before this fence is seen by the owner, or the owner's transition is seen here.
        fence(SeqCst);
        let mut cur = self.0.load(SeqCst);
        loop {
            let next = match cur & STATE_MASK {
                IDLE | BLOCKED => READY,
                RUNNING if cur & WAKEUP == 0 => cur | WAKEUP,
                _ => return Wake::None,
            };
            match self.0.compare_exchange(cur, next, SeqCst, SeqCst) {
                Ok(_) => {
                    return if next == READY {
                        Wake::Schedule
                    } else {
                        Wake::None
                    };
                }
                Err(now) => cur = now,
            }
        }
    }

    /// The owner leaves RUNNING after a step. `target` is READY (status Continue), IDLE or
    /// BLOCKED; `has_events` reports whether the event queue is non-empty (a `SeqCst` load).
    /// Returns true when the process ends up READY and the caller must queue it.
    #[inline]
    pub(crate) fn finish_step(&self, target: u32, has_events: impl Fn() -> bool) -> bool {
        debug_assert!(matches!(target, READY | IDLE | BLOCKED));
        loop {
            let cur = self.0.load(SeqCst);
            debug_assert_eq!(cur & STATE_MASK, RUNNING, "finish_step by a non-owner");
            if cur & WAKEUP != 0 {
                // Some notifier pushed during the step. Its event may already have been drained
                // by this step, so clear the flag and look at the queue (invariant 4).
                self.0.fetch_and(!WAKEUP, SeqCst);
                fence(SeqCst); // pairs with the fence at the top of `notify`
                if has_events() {
                    // Any WAKEUP set after the clear is redundant: we queue the process anyway.
                    self.0.swap(READY, SeqCst);
                    return true;
                }
                continue;
            }
            if self.0.compare_exchange(cur, target, SeqCst, SeqCst).is_ok() {
                return target == READY;
            }
            // WAKEUP appeared between the load and the CAS: go round again.
        }
    }

    /// The owner marks the process finished. Later notifiers do nothing.
    pub(crate) fn complete(&self) {
        // A swap, not a store: notifiers may CAS the word concurrently (setting WAKEUP), and an
        // RMW is what orders the two (also loom issue #254: loom mis-orders a plain store
        // against a concurrent RMW on the same atomic, so we never mix them).
        let prev = self.0.swap(COMPLETE, SeqCst);
        debug_assert_eq!(prev & STATE_MASK, RUNNING);
    }

    /// True once COMPLETE.
    pub(crate) fn is_complete(&self) -> bool {
        self.0.load(SeqCst) & STATE_MASK == COMPLETE
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let s = StateWord::new();
        assert_eq!(s.get(), ProcessState::Ready);
        assert_eq!(s.notify(), Wake::None, "ready: already queued");
        assert!(s.try_acquire());
        assert!(!s.try_acquire());
        assert_eq!(s.notify(), Wake::None);
        // Wake-up flag set while running, queue empty (event already drained): park anyway.
        assert!(!s.finish_step(IDLE, || false));
        assert_eq!(s.get(), ProcessState::Idle);
        assert_eq!(s.notify(), Wake::Schedule);
        assert_eq!(s.get(), ProcessState::Ready);
        assert!(s.try_acquire());
        s.notify();
        assert!(s.finish_step(BLOCKED, || true), "pending event: requeue");
        assert_eq!(s.get(), ProcessState::Ready);
        assert!(s.try_acquire());
        assert!(s.finish_step(READY, || false));
        assert!(s.try_seize());
        s.complete();
        assert!(s.is_complete());
        assert_eq!(s.notify(), Wake::None);
        assert!(!s.try_seize());
    }
}
