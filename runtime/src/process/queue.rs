//! The per-process event queue: many producers (senders, completers, timers), one consumer
//! (the worker that owns the process for a step).
//!
//! # Design
//!
//! A spin lock (`sync::SpinLock`: the critical sections are a push or a swap) around a
//! `Vec<Event>` (empty, unallocated, until the first event), drained by
//! *swapping* the vector with the worker's (empty) batch buffer, so steady-state operation
//! allocates nothing: capacities circulate between
//! queues and workers (the Go original double-buffers the same way). The lock is held only for a
//! push or a swap, never while user code runs. BEAM's experience ("lock-free run queues did not
//! perform as well as one lock per queue") and our fan-in bench guided the choice; an intrusive
//! lock-free MPSC can replace it behind this API if measurements ever demand it.
//!
//! `len` mirrors the vector length and is read without the lock by the state-word protocol
//! (`has_events` in [`StateWord::finish_step`](super::state::StateWord::finish_step)); it is
//! written under the lock (`Release`); the `SeqCst` fences of the state-word protocol (one at
//! the top of `notify`, after the push; one before each lock-free `has_events` check) order it
//! against the state word.
//!
//! # Generation and close
//!
//! * `epoch` identifies the incarnation of the cell. A [`Completer`](super::Completer) captures it
//!   when created; [`EventQueue::push_completion`] rejects a mismatch, so a completion from a
//!   previous incarnation can never land in a new one (spec §2.14, fixed here).
//! * [`EventQueue::close`] (on exit) rejects every later push and discards pending events.
//! * Messages ([`EventQueue::push`]) are addressed by PID through the process table, which only
//!   ever maps a PID to its own incarnation, so they need no generation.

use crate::process::Event;
use crate::sync::{AtomicU32, AtomicUsize, Ordering::Release, Ordering::SeqCst, SpinLock, fence};

#[derive(Debug)]
struct Inner {
    events: Vec<Event>,
    epoch: u32,
    closed: bool,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct EventQueue {
    inner: SpinLock<Inner>,
    len: AtomicUsize,
    /// Mirror of `inner.epoch` for lock-free reads (new completers); written under the lock.
    epoch: AtomicU32,
}

impl EventQueue {
    pub(crate) fn new() -> EventQueue {
        EventQueue {
            inner: SpinLock::new(Inner {
                events: Vec::new(),
                epoch: 1,
                closed: false,
            }),
            len: AtomicUsize::new(0),
            epoch: AtomicU32::new(1),
        }
    }

    /// Push a message (or a runtime-generated event). Returns the event back when closed.
    #[inline]
    pub(crate) fn push(&self, ev: Event) -> Result<(), Event> {
        let mut g = self.inner.lock();
        if g.closed {
            return Err(ev);
        }
        g.events.push(ev);
        self.len.store(g.events.len(), Release);
        Ok(())
    }

    /// Append a batch of messages (emptying `batch`; its buffer may be exchanged for the
    /// queue's when the queue was empty). False when closed (the batch is dropped).
    pub(crate) fn push_batch(&self, batch: &mut Vec<Event>) -> bool {
        let mut g = self.inner.lock();
        if g.closed {
            drop(g);
            batch.clear();
            return false;
        }
        if g.events.is_empty() {
            std::mem::swap(&mut g.events, batch);
        } else {
            g.events.append(batch);
        }
        self.len.store(g.events.len(), Release);
        true
    }

    /// Push a completion captured at generation `epoch`. Rejected when closed or stale.
    #[inline]
    pub(crate) fn push_completion(&self, epoch: u32, ev: Event) -> Result<(), Event> {
        let mut g = self.inner.lock();
        if g.closed || g.epoch != epoch {
            return Err(ev);
        }
        g.events.push(ev);
        self.len.store(g.events.len(), Release);
        Ok(())
    }

    /// True when events are pending (lock-free, `SeqCst`).
    #[inline]
    pub(crate) fn has_events(&self) -> bool {
        self.len.load(SeqCst) != 0
    }

    /// Number of pending events (introspection).
    pub(crate) fn len(&self) -> usize {
        self.len.load(SeqCst)
    }

    /// Move all pending events into `buf` (which must be empty) by swapping buffers.
    #[inline]
    pub(crate) fn drain_into(&self, buf: &mut Vec<Event>) {
        debug_assert!(buf.is_empty());
        // The caller just won READY → RUNNING; this fence pairs with the one in `notify`, so
        // an event pushed by a notifier that saw READY is visible to the check below.
        fence(SeqCst);
        if !self.has_events() {
            return;
        }
        let mut g = self.inner.lock();
        std::mem::swap(&mut g.events, buf);
        self.len.store(0, Release);
    }

    /// The current generation (for new completers).
    pub(crate) fn generation(&self) -> u32 {
        self.epoch.load(SeqCst)
    }

    /// Close: reject later pushes and return the discarded events (drop them outside the lock).
    pub(crate) fn close(&self) -> Vec<Event> {
        let mut g = self.inner.lock();
        g.closed = true;
        self.len.store(0, Release);
        std::mem::take(&mut g.events)
    }

    /// True once closed.
    #[allow(dead_code)] // tests and loom models
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// Reopen for a new incarnation: bump the generation, clear pending events.
    #[allow(dead_code)] // used when cells are recycled, and by the loom models
    pub(crate) fn reset(&self) -> Vec<Event> {
        let mut g = self.inner.lock();
        g.epoch = g.epoch.wrapping_add(1);
        self.epoch.store(g.epoch, SeqCst);
        g.closed = false;
        self.len.store(0, Release);
        std::mem::take(&mut g.events)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::value::Value;

    fn done(tag: u64) -> Event {
        Event::Complete {
            tag,
            result: Ok(Value::Nil),
        }
    }

    #[test]
    fn generation_and_close() {
        let q = EventQueue::new();
        let g = q.generation();
        assert!(q.push_completion(g, done(1)).is_ok());
        assert!(
            q.push_completion(g + 1, done(2)).is_err(),
            "future/stale generation rejected"
        );
        assert!(q.has_events());
        let mut buf = Vec::new();
        q.drain_into(&mut buf);
        assert_eq!(buf.len(), 1);
        assert!(!q.has_events());
        q.reset();
        assert!(
            q.push_completion(g, done(3)).is_err(),
            "old generation rejected after reset"
        );
        assert!(q.push_completion(g + 1, done(4)).is_ok());
        assert_eq!(q.close().len(), 1);
        assert!(q.push(done(5)).is_err());
        assert!(q.is_closed());
    }
}
