//! The process state word vs the wake-up bit (Wippy PR #325's bug class).

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;

use crate::process::Event;
use crate::process::queue::EventQueue;
use crate::process::state::{BLOCKED, IDLE, ProcessState, StateWord, Wake};
use crate::value::Value;

fn ev(tag: u64) -> Event {
    Event::Complete {
        tag,
        result: Ok(Value::Nil),
    }
}

struct Proc {
    state: StateWord,
    queue: EventQueue,
    /// Run-queue entries created (by notifiers winning IDLE/BLOCKED → READY, or by the owner).
    queued: AtomicUsize,
    /// Events the owner consumed.
    consumed: AtomicUsize,
}

impl Proc {
    fn new() -> Proc {
        Proc {
            state: StateWord::new(),
            queue: EventQueue::new(),
            queued: AtomicUsize::new(0),
            consumed: AtomicUsize::new(0),
        }
    }

    /// One step by the owner, leaving RUNNING for `target`.
    fn run_step(&self, target: u32) {
        assert!(self.state.try_acquire(), "single owner");
        let mut buf = Vec::new();
        self.queue.drain_into(&mut buf);
        self.consumed.fetch_add(buf.len(), SeqCst);
        if self.state.finish_step(target, || self.queue.has_events()) {
            self.queued.fetch_add(1, SeqCst);
        }
    }

    /// Push and notify; false when the queue was closed.
    fn send(&self, tag: u64) -> bool {
        if self.queue.push(ev(tag)).is_err() {
            return false;
        }
        if self.state.notify() == Wake::Schedule {
            self.queued.fetch_add(1, SeqCst);
        }
        true
    }

    /// The invariant after all threads joined: every event is consumed, or the process is
    /// READY with exactly one queue entry pending.
    fn check(&self, sent: usize) {
        let pending = self.queue.len();
        assert_eq!(self.consumed.load(SeqCst) + pending, sent);
        let queued = self.queued.load(SeqCst);
        match self.state.get() {
            ProcessState::Ready => assert_eq!(queued, 1, "READY needs exactly one queue entry"),
            s => {
                assert_eq!(queued, 0, "no queue entry for {s:?}");
                assert_eq!(
                    pending, 0,
                    "lost wake-up: {pending} event(s) pending while {s:?}"
                );
            }
        }
    }
}

/// A message arriving while the owner runs its step and parks the process (Idle).
#[test]
fn loom_state_message_vs_step() {
    loom::model(|| {
        let p = Arc::new(Proc::new());
        let p2 = p.clone();
        let sender = thread::spawn(move || assert!(p2.send(1)));
        p.run_step(IDLE);
        sender.join().unwrap();
        p.check(1);
    });
}

/// Two completions racing with a step that leaves for BLOCKED.
#[test]
fn loom_state_two_completions_vs_step() {
    loom::model(|| {
        let p = Arc::new(Proc::new());
        let a = {
            let p = p.clone();
            thread::spawn(move || assert!(p.send(1)))
        };
        let b = {
            let p = p.clone();
            thread::spawn(move || assert!(p.send(2)))
        };
        p.run_step(BLOCKED);
        a.join().unwrap();
        b.join().unwrap();
        p.check(2);
    });
}

/// Requeued process runs again: the second step consumes what the first could not.
#[test]
fn loom_state_event_during_second_step() {
    loom::model(|| {
        let p = Arc::new(Proc::new());
        p.run_step(IDLE); // now IDLE, nothing pending
        let p2 = p.clone();
        let sender = thread::spawn(move || assert!(p2.send(1)));
        // The owner side: if woken, run once more.
        if p.state.get() == ProcessState::Ready {
            p.queued.fetch_sub(1, SeqCst);
            p.run_step(IDLE);
        }
        sender.join().unwrap();
        p.check(1);
    });
}

/// A killer seizing a parked process races with a message that makes it READY: exactly one of
/// them owns it; a stale queue entry can never acquire a seized process.
#[test]
fn loom_state_seize_vs_notify() {
    loom::model(|| {
        let p = Arc::new(Proc::new());
        p.run_step(IDLE);
        let p2 = p.clone();
        let sender = thread::spawn(move || p2.send(1));
        let seized = p.state.try_seize();
        if seized {
            p.state.complete();
            p.queue.close();
        }
        let delivered = sender.join().unwrap();
        let entry = p.queued.load(SeqCst);
        if seized {
            // A queue entry may exist (the sender won IDLE → READY first), but it is stale.
            assert!(entry <= 1);
            assert!(entry == 0 || delivered);
            assert!(
                !p.state.try_acquire(),
                "a stale entry acquired a seized process"
            );
            assert_eq!(p.state.get(), ProcessState::Complete);
        } else {
            // The sender's READY came first and we saw it: the process is queued, not seized.
            assert!(delivered);
            assert_eq!(entry, 1);
            assert!(p.state.try_acquire());
        }
    });
}
