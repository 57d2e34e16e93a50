//! The per-process event queue: push vs close vs owner exit, and generation checks.

use loom::sync::Arc;
use loom::thread;

use crate::process::Event;
use crate::process::queue::EventQueue;
use crate::process::state::{StateWord, Wake};
use crate::value::Value;

fn ev(tag: u64) -> Event {
    Event::Complete {
        tag,
        result: Ok(Value::Nil),
    }
}

/// A completer pushing while the owner exits (COMPLETE, then close): an accepted event is
/// either consumed or discarded by the close — never left behind in a closed queue — and the
/// notify never schedules an exited process.
#[test]
fn loom_queue_push_vs_close_on_exit() {
    loom::model(|| {
        let state = Arc::new(StateWord::new());
        let q = Arc::new(EventQueue::new());
        let epoch = q.generation();
        assert!(state.try_acquire());
        let (s2, q2) = (state.clone(), q.clone());
        let producer = thread::spawn(move || {
            let ok = q2.push_completion(epoch, ev(1)).is_ok();
            let wake = s2.notify();
            assert_eq!(wake, Wake::None, "an exiting process is never scheduled");
            ok
        });
        let mut buf = Vec::new();
        q.drain_into(&mut buf);
        state.complete();
        let discarded = q.close();
        let accepted = producer.join().unwrap();
        assert_eq!(usize::from(accepted), buf.len() + discarded.len());
        assert!(q.push(ev(2)).is_err(), "closed queue rejects");
        assert_eq!(q.len(), 0);
    });
}

/// A stale completer (captured before a reset) racing with the reset and a fresh completer:
/// the stale one is either rejected or its event is cleared by the reset; the fresh one always
/// lands in the new incarnation.
#[test]
fn loom_queue_generation_rejects_stale() {
    loom::model(|| {
        let q = Arc::new(EventQueue::new());
        let old = q.generation();
        let q2 = q.clone();
        let stale = thread::spawn(move || q2.push_completion(old, ev(1)).is_ok());
        q.close();
        let cleared = q.reset();
        let fresh = q.generation();
        assert_ne!(old, fresh);
        assert!(q.push_completion(fresh, ev(2)).is_ok());
        let _ = stale.join().unwrap();
        let mut buf = Vec::new();
        q.drain_into(&mut buf);
        drop(cleared);
        assert_eq!(buf.len(), 1, "only the fresh completion survives");
        assert!(matches!(buf[0], Event::Complete { tag: 2, .. }));
    });
}
