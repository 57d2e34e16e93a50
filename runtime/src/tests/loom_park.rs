//! Parking vs notification: no lost wake-up, for global and targeted (inject) work.

use loom::sync::Arc;
use loom::thread;

use crate::exec::Executor;

/// Worker `index`: take work from the global queue or its inject queue, else park; exit when
/// it took one item or the executor shut down. Returns the item.
fn worker(exec: &Executor<u32>, index: usize) -> Option<u32> {
    let mut searching = false;
    loop {
        if exec.is_shutdown() {
            return None;
        }
        if let Some(t) = exec.workers[index].inject.pop() {
            return Some(t);
        }
        if let Some(t) = exec.global.pop() {
            if searching {
                exec.idle.transition_from_searching();
            }
            return Some(t);
        }
        searching = exec.park_worker(index, searching);
    }
}

/// One worker, one producer pushing to the global queue: the worker must wake and take it
/// (loom reports a deadlock if the worker sleeps forever).
#[test]
fn loom_park_vs_global_notify() {
    loom::model(|| {
        let (exec, _locals) = Executor::<u32>::new(1);
        let exec = Arc::new(exec);
        let e2 = exec.clone();
        let producer = thread::spawn(move || e2.schedule_remote(7, None));
        assert_eq!(worker(&exec, 0), Some(7));
        producer.join().unwrap();
    });
}

/// Targeted wake-up through the worker's inject queue (completion affinity).
#[test]
fn loom_park_vs_inject_notify() {
    loom::model(|| {
        let (exec, _locals) = Executor::<u32>::new(1);
        let exec = Arc::new(exec);
        let e2 = exec.clone();
        let producer = thread::spawn(move || e2.schedule_remote(9, Some(0)));
        assert_eq!(worker(&exec, 0), Some(9));
        producer.join().unwrap();
    });
}

/// Two workers, one item: one of them takes it and shuts the executor down, which must wake
/// the other wherever it is in its parking protocol.
#[test]
fn loom_park_two_workers_one_item() {
    loom::model(|| {
        let (exec, _locals) = Executor::<u32>::new(2);
        let exec = Arc::new(exec);
        let e1 = exec.clone();
        let w1 = thread::spawn(move || {
            let r = worker(&e1, 1);
            if r.is_some() {
                e1.begin_shutdown();
            }
            r
        });
        exec.schedule_remote(5, None);
        let r0 = worker(&exec, 0);
        if r0.is_some() {
            exec.begin_shutdown();
        }
        let r1 = w1.join().unwrap();
        assert_eq!(usize::from(r0.is_some()) + usize::from(r1.is_some()), 1);
    });
}

/// A worker loop that also serves the yield queue (processes that ended a step runnable).
fn worker_with_yielded(exec: &Executor<u32>, index: usize) -> Option<u32> {
    let mut searching = false;
    loop {
        if exec.is_shutdown() {
            return None;
        }
        if let Some(t) = exec.workers[index]
            .inject
            .pop()
            .or_else(|| exec.global.pop())
            .or_else(|| exec.yielded.pop())
        {
            if searching {
                exec.idle.transition_from_searching();
            }
            return Some(t);
        }
        searching = exec.park_worker(index, searching);
    }
}

/// A process requeued on the yield queue by a busy worker (`requeue_yielded`: push, then
/// notify) must reach a worker that is parking concurrently.
#[test]
fn loom_park_vs_yield_queue() {
    loom::model(|| {
        let (exec, _locals) = Executor::<u32>::new(1);
        let exec = Arc::new(exec);
        let e2 = exec.clone();
        let producer = thread::spawn(move || {
            e2.yielded.push(3);
            e2.notify_work();
        });
        assert_eq!(worker_with_yielded(&exec, 0), Some(3));
        producer.join().unwrap();
    });
}
