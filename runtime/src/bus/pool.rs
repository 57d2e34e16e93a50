//! The elastic callback pool of the bus.
//!
//! Each callback subscription owns a FIFO queue and a `scheduled` flag. A push that flips the
//! flag false → true hands the subscription to the pool's job channel; a pool thread runs up
//! to [`BATCH`] callbacks, clears the flag, and re-checks the queue (a push that raced with the
//! clear saw the flag still set and relied on this re-check). Exactly one thread drains a
//! subscription at a time, so its callbacks run sequentially, in queue order.
//!
//! Threads: one at start; when a job is handed over while every thread is busy, another thread
//! starts (up to [`MAX_POOL_THREADS`]) — a slow callback therefore never delays the others
//! while fewer than that many callbacks are slow at once. Threads beyond the first exit after
//! [`POOL_IDLE_EXIT`] without work.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::bus::BusEvent;

/// Upper bound on pool threads (each slow callback can hold one).
pub const MAX_POOL_THREADS: usize = 64;
/// Idle time after which a surplus pool thread exits.
pub const POOL_IDLE_EXIT: Duration = Duration::from_secs(10);
/// Callbacks run per turn before the subscription goes to the back of the job queue, so one
/// busy subscription cannot monopolise a thread while others wait.
const BATCH: usize = 64;

type Callback = Box<dyn Fn(&BusEvent) + Send + Sync>;

pub(crate) struct CallbackSub {
    queue: Mutex<VecDeque<Arc<BusEvent>>>,
    scheduled: AtomicBool,
    active: AtomicBool,
    f: Callback,
}

impl CallbackSub {
    pub(crate) fn new(f: Callback) -> CallbackSub {
        CallbackSub {
            queue: Mutex::new(VecDeque::new()),
            scheduled: AtomicBool::new(false),
            active: AtomicBool::new(true),
            f,
        }
    }

    pub(crate) fn push(self: &Arc<Self>, ev: Arc<BusEvent>, pool: &Pool) {
        if !self.active.load(SeqCst) {
            return;
        }
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(ev);
        if !self.scheduled.swap(true, SeqCst) {
            pool.submit(self.clone());
        }
    }

    pub(crate) fn deactivate(&self) {
        self.active.store(false, SeqCst);
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Run one turn; returns true when the subscription must be resubmitted.
    fn run_turn(&self) -> bool {
        for _ in 0..BATCH {
            if !self.active.load(SeqCst) {
                break;
            }
            let Some(ev) = self
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front()
            else {
                break;
            };
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.f)(&ev))).is_err() {
                log::error!(system = ev.system.as_str(), kind = ev.kind.as_str(); "bus: subscriber callback panicked");
            }
        }
        self.scheduled.store(false, SeqCst);
        let pending = !self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        pending && self.active.load(SeqCst) && !self.scheduled.swap(true, SeqCst)
    }
}

struct PoolState {
    threads: AtomicUsize,
    busy: AtomicUsize,
}

struct PoolCore {
    tx: Sender<Arc<CallbackSub>>,
    rx: Receiver<Arc<CallbackSub>>,
    state: Arc<PoolState>,
    spawn_lock: Mutex<()>,
}

pub(crate) struct Pool {
    core: Arc<PoolCore>,
}

impl Pool {
    pub(crate) fn new() -> Pool {
        let (tx, rx) = crossbeam_channel::unbounded();
        let state = Arc::new(PoolState {
            threads: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
        });
        Pool {
            core: Arc::new(PoolCore {
                tx,
                rx,
                state,
                spawn_lock: Mutex::new(()),
            }),
        }
    }

    fn submit(&self, sub: Arc<CallbackSub>) {
        let _ = self.core.tx.send(sub);
        PoolCore::grow_if_saturated(&self.core);
    }
}

impl PoolCore {
    /// Start a thread when every thread is busy and jobs are waiting. Called after a submit
    /// and by a thread that just became busy (one of the two sees the other's update: both
    /// sides are `SeqCst`).
    fn grow_if_saturated(core: &Arc<PoolCore>) {
        let st = &core.state;
        if st.busy.load(SeqCst) < st.threads.load(SeqCst) || core.rx.is_empty() {
            return;
        }
        let _g = core.spawn_lock.lock().unwrap_or_else(|p| p.into_inner());
        let n = st.threads.load(SeqCst);
        if st.busy.load(SeqCst) < n || n >= MAX_POOL_THREADS {
            return;
        }
        st.threads.fetch_add(1, SeqCst);
        let rx = core.rx.clone();
        let weak = Arc::downgrade(core);
        let state = core.state.clone();
        let spawned = std::thread::Builder::new()
            .name("wippy-bus".into())
            .spawn(move || pool_thread(rx, weak, state, n == 0));
        if spawned.is_err() {
            st.threads.fetch_sub(1, SeqCst);
            log::error!("bus: cannot start a callback thread");
        }
    }
}

fn run_job(sub: Arc<CallbackSub>, core: &Weak<PoolCore>, state: &PoolState) {
    state.busy.fetch_add(1, SeqCst);
    if let Some(c) = core.upgrade() {
        PoolCore::grow_if_saturated(&c);
    }
    let again = sub.run_turn();
    state.busy.fetch_sub(1, SeqCst);
    if again && let Some(c) = core.upgrade() {
        let _ = c.tx.send(sub);
        PoolCore::grow_if_saturated(&c);
    }
}

fn pool_thread(
    rx: Receiver<Arc<CallbackSub>>,
    core: Weak<PoolCore>,
    state: Arc<PoolState>,
    permanent: bool,
) {
    loop {
        let job = if permanent {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(POOL_IDLE_EXIT)
        };
        match job {
            Ok(sub) => run_job(sub, &core, &state),
            Err(RecvTimeoutError::Timeout) => {
                state.threads.fetch_sub(1, SeqCst);
                // A job may have arrived between the timeout and the decrement while everyone
                // looked busy: take it rather than leave it waiting.
                if let Ok(sub) = rx.try_recv() {
                    state.threads.fetch_add(1, SeqCst);
                    run_job(sub, &core, &state);
                    continue;
                }
                return;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
