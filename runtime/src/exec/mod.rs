//! The executor: N pinned workers with work stealing.
//!
//! * `queue` — run-queue seam (crossbeam-deque, or a mutex model under loom).
//! * `park` — per-worker parker (EMPTY / PARKED / NOTIFIED).
//! * `idle` — searching / sleeping accounting and the "whom to wake" rule.
//! * `worker` — the worker loop and the work-finding order.
//!
//! The protocol (work-finding order, spinning, parking, wake-up routing and the proofs of "no
//! lost wake-up") is written down in `docs/scheduler.md`.
//!
//! # Where a runnable process goes ([`Executor::schedule`])
//!
//! 1. Made runnable *on one of this executor's workers* (a send, spawn or completion from
//!    inside a step): the worker's LIFO slot for wake-ups (so a ping-pong pair stays on one
//!    core, cache-hot), its local FIFO queue for spawns. Local queues are stealable; the LIFO
//!    slot is not.
//! 2. From any other thread, for a process that ran before: the inject queue of the worker that
//!    last ran it (affinity), and that worker is unparked if it sleeps.
//! 3. Otherwise: the global queue, and one parked worker is woken if nobody is searching.
//!
//! A process that ends a step still runnable (`Continue`: a Lua process preempted at the end
//! of its time slice, a native process yielding between batches) goes to the back of the
//! shared *yield queue* ([`Executor::yielded`], see [`worker::requeue_yielded`]): every
//! process woken meanwhile runs before it, on whichever worker is free.

pub(crate) mod idle;
pub(crate) mod park;
pub(crate) mod queue;
pub(crate) mod worker;

use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::process::cell::{Cell, NO_WORKER};
use crate::sync::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst, fence};

use idle::Idle;
use park::Parker;
use queue::{Injector, Stealer};

/// The unit of scheduling: a process cell.
pub(crate) type Task = Arc<Cell>;

/// Per-worker counters (written by the owner, read racily by `stats()`).
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    pub(crate) executed: AtomicU64,
    pub(crate) stolen: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) spawned: AtomicU64,
    pub(crate) exited: AtomicU64,
}

/// Increment a counter that only its owning worker writes (no locked RMW needed).
#[inline]
pub(crate) fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed) + 1, Relaxed);
}

/// The thread-safe part of one worker.
pub(crate) struct WorkerShared<T = Task> {
    pub(crate) stealer: Stealer<T>,
    pub(crate) inject: Injector<T>,
    pub(crate) parker: Parker,
    pub(crate) counters: CachePadded<WorkerCounters>,
}

/// Shared executor state (owned by the runtime's `Shared`). Generic over the task type only so
/// the loom models can drive the parking protocol with plain integers.
pub(crate) struct Executor<T = Task> {
    pub(crate) workers: Box<[WorkerShared<T>]>,
    pub(crate) global: Injector<T>,
    /// Processes that ended a step still runnable (`Continue`), oldest first; any worker pops
    /// one at a time after its other queues (`docs/scheduler.md` §2).
    pub(crate) yielded: Injector<T>,
    pub(crate) idle: Idle,
    pub(crate) shutdown: AtomicBool,
    /// Identity of this executor, to recognise our own worker threads.
    pub(crate) id: usize,
}

/// How a task became runnable (decides LIFO slot vs FIFO queue on a worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Woken by an event: LIFO slot.
    Wake,
    /// Newly spawned: back of the local queue.
    Spawn,
}

impl<T> Executor<T> {
    /// Build the shared part and the owners' local queues (one per worker, moved to the
    /// worker threads).
    pub(crate) fn new(workers: usize) -> (Executor<T>, Vec<queue::Local<T>>) {
        static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let mut locals = Vec::with_capacity(workers);
        let mut shared = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (l, s) = queue::Local::new();
            locals.push(l);
            shared.push(WorkerShared {
                stealer: s,
                inject: Injector::new(),
                parker: Parker::new(),
                counters: CachePadded::new(WorkerCounters::default()),
            });
        }
        let exec = Executor {
            workers: shared.into_boxed_slice(),
            global: Injector::new(),
            yielded: Injector::new(),
            idle: Idle::new(workers),
            shutdown: AtomicBool::new(false),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        (exec, locals)
    }

    /// Queue a task made runnable by a thread that is not one of our workers: the inject queue
    /// of `affinity` (unparking that worker if it sleeps), else the global queue.
    #[inline]
    pub(crate) fn schedule_remote(&self, task: T, affinity: Option<usize>) {
        match affinity {
            Some(w) if w < self.workers.len() => {
                let ws = &self.workers[w];
                ws.inject.push(task);
                // Store-buffering pair with the worker's `prepare(); fence; check inject`.
                fence(SeqCst);
                if ws.parker.is_parked() {
                    ws.parker.unpark();
                }
            }
            _ => {
                self.global.push(task);
                self.notify_work();
            }
        }
    }

    /// New stealable work exists: wake one sleeper if nobody is searching.
    #[inline]
    pub(crate) fn notify_work(&self) {
        if let Some(w) = self.idle.worker_to_notify() {
            self.workers[w].parker.unpark();
        }
    }

    /// True when any queue other than `except`'s private ones holds work.
    pub(crate) fn any_work(&self, except: usize) -> bool {
        !self.global.is_empty()
            || !self.yielded.is_empty()
            || self
                .workers
                .iter()
                .enumerate()
                .any(|(i, w)| !w.stealer.is_empty() || (i == except && !w.inject.is_empty()))
    }

    /// Ask every worker to exit and wake them all.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, SeqCst);
        for w in self.workers.iter() {
            w.parker.unpark();
        }
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Relaxed)
    }

    /// Drop every queued task (after the workers exited), breaking `Arc` cycles.
    pub(crate) fn drain(&self) {
        while self.global.pop().is_some() {}
        while self.yielded.pop().is_some() {}
        for w in self.workers.iter() {
            while w.inject.pop().is_some() {}
        }
    }

    /// The parking protocol of worker `index` (see `park.rs`, `idle.rs`): announce, look at
    /// every queue once more, sleep unless something is there. Returns whether the worker
    /// is counted as searching afterwards.
    pub(crate) fn park_worker(&self, index: usize, was_searching: bool) -> bool {
        let me = &self.workers[index];
        self.idle.transition_to_parked(index, was_searching);
        if me.parker.prepare() {
            // Announced PARKED; one last look at every queue (store-buffering pair with the
            // notifiers' push-then-check).
            fence(SeqCst);
            if self.is_shutdown() || self.any_work(index) {
                me.parker.cancel();
            } else {
                bump(&me.counters.parks);
                me.parker.park();
            }
        }
        self.idle.transition_from_parked(index)
    }
}

impl Executor<Task> {
    /// Queue a task that just became READY (see the module docs for the routing).
    #[inline]
    pub(crate) fn schedule(&self, task: Task, reason: Reason) {
        let task = match worker::try_schedule_local(self, task, reason) {
            Ok(()) => return,
            Err(t) => t,
        };
        let w = task.last_worker.load(Relaxed);
        let affinity = (w != NO_WORKER).then_some(w as usize);
        self.schedule_remote(task, affinity);
    }
}
