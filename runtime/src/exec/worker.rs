//! The worker loop.
//!
//! # Work-finding order ([`WorkerLoop::next_task`], [`WorkerLoop::steal`])
//!
//! 0. Every [`GLOBAL_POLL_INTERVAL`]th tick: one task from the own inject queue, else one from
//!    the global queue, else one from the yield queue, *before* local work — so a worker kept
//!    busy by local work (a ping-pong pair in the LIFO slot, a stream of wake-ups) starves
//!    none of them.
//! 1. The LIFO slot (the process most recently woken from this worker), at most
//!    [`MAX_LIFO_STREAK`] times in a row; then it is moved to the back of the local queue.
//! 2. The local FIFO queue.
//! 3. The own inject queue: take one, move up to [`BATCH`]` - 1` more into the local queue.
//! 4. The global queue: take one, move up to [`BATCH`]` - 1` more.
//! 5. The yield queue (processes that ended their last step still runnable): take *one* — a
//!    batch would put CPU-bound processes in the local queue ahead of later wake-ups.
//! 6. Steal about half of a victim's local queue, victims scanned from a random start; then
//!    the global queue and the yield queue once more.
//!
//! # The yield queue ([`requeue_yielded`])
//!
//! A process that returns `Continue` — above all a Lua process preempted at the end of its
//! time slice — goes to the back of the executor-wide yield queue, never to the LIFO slot or
//! the local queue: every process woken while it ran (a message from outside lands in the
//! inject queue, one from a local step in the LIFO slot) runs first, so a woken process waits
//! at most for the rest of the current slice, however many CPU-bound processes share its
//! worker. CPU-bound processes take turns across all workers in FIFO order (the queue is
//! shared, which also balances them) and the periodic look of step 0 keeps them from
//! starving behind a steady stream of short wake-ups. Erlang puts a process that used up its
//! reductions at the back of its run queue; this is the same with the woken processes first.
//!
//! # Idle
//!
//! Nothing found → spin: `spin_tight` rounds with a CPU pause, then `spin_yield` rounds with
//! `yield_now`, each round re-running the whole search; then park (see `park.rs`, `idle.rs`
//! and `docs/scheduler.md` § Parking for the protocol and the no-lost-wake-up argument).
//!
//! A panic escaping the loop (a runtime bug; user panics are caught around `step`) aborts the
//! process through [`AbortOnPanic`]: the executor's invariants can no longer be trusted.

use std::cell::{Cell as StdCell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::exec::queue::Local;
use crate::exec::{Executor, Reason, Task};
use crate::process::{Event, StepOutput};
use crate::runtime::Handle;
use crate::runtime::host::HostState;
use crate::sync::Ordering::Relaxed;

/// Look at the inject and global queues before local work every this many ticks. 61 is tokio's
/// value: prime, so it does not fall into lockstep with periodic workloads, and rare enough to
/// keep the local fast path hot.
pub(crate) const GLOBAL_POLL_INTERVAL: u32 = 61;

/// A worker that keeps requeueing CPU-bound processes (`Continue`) calls `sched_yield` at most
/// this often. Workers are pinned and, when every process is CPU-bound, never sleep: a thread
/// outside the pool that needs a CPU (the reactor, a handler thread, a caller waiting for a
/// reply) would otherwise wait for the kernel to end a worker's time slice (~3 ms under
/// EEVDF). One syscall per 500 µs of CPU-bound work costs ~0.1 %; when nothing else wants
/// the CPU it returns at once. The same order as the Lua time slice, so a preempted Lua
/// process triggers about one.
pub(crate) const OS_YIELD_INTERVAL: Duration = Duration::from_micros(500);

/// Consecutive runs from the LIFO slot before it yields to the local queue (tokio uses 3): a
/// ping-pong pair keeps its cache-hot core, other local work still advances.
pub(crate) const MAX_LIFO_STREAK: u32 = 3;

/// Tasks taken from the inject or global queue at once (one to run + 16 to the local queue),
/// as in the original: amortises the shared-queue synchronisation, small enough to leave work
/// for other workers.
pub(crate) const BATCH: usize = 17;

/// Spin tuning (builder knobs, see [`crate::runtime::Builder::spin`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpinConfig {
    pub(crate) tight: u32,
    pub(crate) yields: u32,
}

/// The per-thread worker context, reachable through a thread-local while the worker runs, so
/// that a send or spawn made inside a step can use the local queue and the LIFO slot.
pub(crate) struct WorkerCtx {
    pub(crate) exec_id: usize,
    pub(crate) index: usize,
    pub(crate) local: Local<Task>,
    pub(crate) lifo: StdCell<Option<Task>>,
    pub(crate) events: StdCell<Vec<Event>>,
    pub(crate) out: StdCell<Option<Box<StepOutput>>>,
    /// Retired cells ready for reuse by spawns on this worker (see `Cell::reinit`).
    pub(crate) pool: RefCell<Vec<Task>>,
    /// The host of the last spawn on this worker (skips the host map's lock and hash).
    pub(crate) host_cache: RefCell<Option<Arc<HostState>>>,
    /// Recently sent-to cells, direct-mapped by uniq id (skips the process table's lock).
    pub(crate) send_cache: RefCell<[Option<Task>; SEND_CACHE]>,
    /// Messages sent by the running step, when batching kicked in (see [`Outbox`]).
    pub(crate) outbox: RefCell<Outbox>,
    /// When this worker last let the OS run another thread (see [`OS_YIELD_INTERVAL`]).
    pub(crate) os_yield_at: StdCell<Instant>,
}

/// Write-combining of the messages one step sends.
///
/// A step's sends are delivered immediately until it sends to the same process twice in a
/// row; from then on every send of that step (to any target) is appended to per-target runs
/// in send order, and the runs are pushed — one queue lock and one wake-up per run — when the
/// step returns, before its yields are dispatched or it exits. Per-sender order holds (runs
/// are flushed in send order and a target's messages stay in one run or consecutive runs),
/// and so does causality across targets (once batching starts, nothing of this step
/// overtakes the buffered messages). What changes is only *when* the receiver can see them:
/// at the end of the sender's step rather than during it — so a native step must not block
/// waiting for a reaction to a message it just sent (it never could on a 1-worker runtime).
/// A process that is messaged once per step (ping-pong, rings) never batches.
#[derive(Default)]
pub(crate) struct Outbox {
    /// True while a step runs on this worker.
    pub(crate) active: bool,
    /// True once this step started batching.
    pub(crate) batching: bool,
    /// Address of the previous immediate target in this step (identity only, never read).
    pub(crate) last: usize,
    /// Buffered runs in send order.
    pub(crate) runs: Vec<(Task, Vec<Event>)>,
    /// Spare buffers for runs.
    pub(crate) spare: Vec<Vec<Event>>,
}

/// Runs kept in the spare list (each an empty `Vec<Event>` with some capacity).
const OUTBOX_SPARES: usize = 8;

impl Outbox {
    /// Append `ev` for `cell` to the runs.
    pub(crate) fn append(&mut self, cell: &Task, ev: Event) {
        if let Some((c, v)) = self.runs.last_mut()
            && Arc::ptr_eq(c, cell)
        {
            v.push(ev);
            return;
        }
        let mut v = self.spare.pop().unwrap_or_default();
        v.push(ev);
        self.runs.push((cell.clone(), v));
    }

    /// Take the runs out for flushing (leaves the outbox inactive).
    pub(crate) fn take_runs(&mut self) -> Vec<(Task, Vec<Event>)> {
        self.active = false;
        self.batching = false;
        self.last = 0;
        std::mem::take(&mut self.runs)
    }

    /// Give back emptied buffers (and the runs vector's allocation).
    pub(crate) fn recycle(&mut self, mut runs: Vec<(Task, Vec<Event>)>) {
        for (_, v) in runs.drain(..) {
            if self.spare.len() < OUTBOX_SPARES && v.capacity() <= 4096 {
                self.spare.push(v);
            }
        }
        if self.runs.capacity() == 0 {
            self.runs = runs;
        }
    }
}

/// Retired cells kept per worker: enough to absorb bursts of short processes, small enough
/// (a few hundred bytes each) not to matter.
pub(crate) const CELL_POOL: usize = 256;

/// Send-cache slots per worker (a power of two): covers the handful of peers a worker's
/// processes talk to at a time (ping-pong pairs, a fan-in receiver, a ring neighbour).
pub(crate) const SEND_CACHE: usize = 8;

thread_local! {
    static CURRENT: RefCell<Option<Rc<WorkerCtx>>> = const { RefCell::new(None) };
}

/// Run `f` with the current worker context if this thread is a worker of `exec`.
#[inline]
pub(crate) fn with_current<R>(exec: &Executor, f: impl FnOnce(&WorkerCtx) -> R) -> Option<R> {
    CURRENT
        .try_with(|c| match &*c.borrow() {
            Some(ctx) if ctx.exec_id == exec.id => Some(f(ctx)),
            _ => None,
        })
        .ok()
        .flatten()
}

/// True when the calling thread is one of `exec`'s workers.
pub(crate) fn is_worker_of(exec: &Executor) -> bool {
    with_current(exec, |_| ()).is_some()
}

/// Schedule on the calling worker if it belongs to `exec`; else give the task back.
#[inline]
pub(crate) fn try_schedule_local(exec: &Executor, task: Task, reason: Reason) -> Result<(), Task> {
    let mut task = Some(task);
    let done = with_current(exec, |ctx| {
        let t = task.take().expect("task");
        match reason {
            Reason::Wake => {
                if let Some(prev) = ctx.lifo.replace(Some(t)) {
                    ctx.local.push(prev);
                    exec.notify_work();
                }
            }
            Reason::Spawn => {
                ctx.local.push(t);
                exec.notify_work();
            }
        }
    });
    match done {
        Some(()) => Ok(()),
        None => Err(task.expect("task")),
    }
}

/// Queue a process that ended its step still runnable (`Continue`) at the back of the yield
/// queue (see the module docs). A sleeping worker is woken only when this worker has
/// something else to run: a lone CPU-bound process just comes back here, without a wake-up.
/// At most every [`OS_YIELD_INTERVAL`] the worker also yields its CPU to the OS.
#[inline]
pub(crate) fn requeue_yielded(exec: &Executor, ctx: &WorkerCtx, task: Task) {
    let lifo = ctx.lifo.take();
    let others = lifo.is_some()
        || ctx.local.len() != 0
        || !exec.workers[ctx.index].inject.is_empty()
        || !exec.global.is_empty()
        || !exec.yielded.is_empty();
    ctx.lifo.set(lifo);
    exec.yielded.push(task);
    if others {
        exec.notify_work();
    }
    let now = Instant::now();
    if now.duration_since(ctx.os_yield_at.get()) >= OS_YIELD_INTERVAL {
        ctx.os_yield_at.set(now);
        std::thread::yield_now();
    }
}

/// Aborts the process if dropped during a panic (a runtime invariant broke).
pub(crate) struct AbortOnPanic;

impl Drop for AbortOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("wippy-rt: fatal: a worker panicked outside user code; aborting");
            std::process::abort();
        }
    }
}

/// The loop state of one worker (owned by its thread).
pub(crate) struct WorkerLoop {
    handle: Handle,
    ctx: Rc<WorkerCtx>,
    spin: SpinConfig,
    searching: bool,
    tick: u32,
    lifo_streak: u32,
    rng: u64,
}

impl WorkerLoop {
    pub(crate) fn new(
        handle: Handle,
        index: usize,
        local: Local<Task>,
        spin: SpinConfig,
    ) -> WorkerLoop {
        let exec_id = handle.shared.exec.id;
        let ctx = Rc::new(WorkerCtx {
            exec_id,
            index,
            local,
            lifo: StdCell::new(None),
            events: StdCell::new(Vec::with_capacity(64)),
            out: StdCell::new(Some(Box::new(StepOutput::new()))),
            pool: RefCell::new(Vec::with_capacity(CELL_POOL)),
            host_cache: RefCell::new(None),
            send_cache: RefCell::new(Default::default()),
            outbox: RefCell::new(Outbox::default()),
            os_yield_at: StdCell::new(Instant::now()),
        });
        WorkerLoop {
            handle,
            ctx,
            spin,
            searching: false,
            tick: 0,
            lifo_streak: 0,
            rng: 0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9)),
        }
    }

    /// Run until the executor shuts down.
    pub(crate) fn run(mut self) {
        let _guard = AbortOnPanic;
        CURRENT.with(|c| *c.borrow_mut() = Some(self.ctx.clone()));
        let mut spins = 0u32;
        loop {
            let exec = &self.handle.shared.exec;
            if exec.is_shutdown() {
                break;
            }
            if let Some(t) = self.next_task() {
                spins = 0;
                self.found();
                self.run_task(t);
                continue;
            }
            if !self.searching {
                self.searching = self.handle.shared.exec.idle.try_transition_to_searching();
            }
            if let Some(t) = self.steal() {
                spins = 0;
                self.found();
                self.run_task(t);
                continue;
            }
            spins += 1;
            if spins <= self.spin.tight {
                std::hint::spin_loop();
            } else if spins <= self.spin.tight + self.spin.yields {
                std::thread::yield_now();
            } else {
                spins = 0;
                self.park();
            }
        }
        if self.searching {
            self.handle.shared.exec.idle.transition_from_searching();
        }
        CURRENT.with(|c| c.borrow_mut().take());
        // Drop what is still queued or cached here (breaks cell → runtime reference cycles).
        drop(self.ctx.lifo.take());
        while self.ctx.local.pop().is_some() {}
        self.ctx.pool.borrow_mut().clear();
        *self.ctx.send_cache.borrow_mut() = Default::default();
        self.ctx.host_cache.borrow_mut().take();
    }

    #[inline]
    fn run_task(&self, t: Task) {
        let exec = &self.handle.shared.exec;
        crate::exec::bump(&exec.workers[self.ctx.index].counters.executed);
        crate::runtime::step::run_task(&self.handle, &self.ctx, t);
    }

    /// Leave the searching state after finding work (idle.rs rule 2).
    #[inline]
    fn found(&mut self) {
        if self.searching {
            self.searching = false;
            let exec = &self.handle.shared.exec;
            if exec.idle.transition_from_searching() {
                exec.notify_work();
            }
        }
    }

    #[inline]
    fn next_task(&mut self) -> Option<Task> {
        let exec = &self.handle.shared.exec;
        let me = &exec.workers[self.ctx.index];
        self.tick = self.tick.wrapping_add(1);
        if self.tick.is_multiple_of(GLOBAL_POLL_INTERVAL) {
            if let Some(t) = me.inject.pop() {
                return Some(t);
            }
            if let Some(t) = exec.global.pop() {
                return Some(t);
            }
            if let Some(t) = exec.yielded.pop() {
                return Some(t);
            }
        }
        if let Some(t) = self.ctx.lifo.take() {
            if self.lifo_streak < MAX_LIFO_STREAK {
                self.lifo_streak += 1;
                return Some(t);
            }
            if self.ctx.local.len() == 0 {
                // Nothing else is runnable here: yielding to the local queue would just pop it
                // back (and waking a thief for a single hot task only moves it across cores).
                self.lifo_streak = 0;
                return Some(t);
            }
            self.ctx.local.push(t);
            exec.notify_work();
        }
        self.lifo_streak = 0;
        if let Some(t) = self.ctx.local.pop() {
            return Some(t);
        }
        if let Some(t) = me.inject.pop_batch_into(&self.ctx.local, BATCH) {
            return Some(t);
        }
        if let Some(t) = exec.global.pop_batch_into(&self.ctx.local, BATCH) {
            return Some(t);
        }
        exec.yielded.pop()
    }

    fn steal(&mut self) -> Option<Task> {
        let exec = &self.handle.shared.exec;
        let n = exec.workers.len();
        if n > 1 {
            // xorshift64: cheap victim randomisation (no shared RNG state).
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let start = (self.rng % n as u64) as usize;
            for i in 0..n {
                let v = (start + i) % n;
                if v == self.ctx.index {
                    continue;
                }
                let before = self.ctx.local.len();
                if let Some(t) = exec.workers[v].stealer.steal_half_into(&self.ctx.local) {
                    let got = (self.ctx.local.len() - before) as u64 + 1;
                    let c = &exec.workers[self.ctx.index].counters.stolen;
                    c.store(c.load(Relaxed) + got, Relaxed); // owner-only counter
                    return Some(t);
                }
            }
        }
        if let Some(t) = exec.global.pop_batch_into(&self.ctx.local, BATCH) {
            return Some(t);
        }
        exec.yielded.pop()
    }

    /// Park until notified (see `Executor::park_worker`).
    fn park(&mut self) {
        let was_searching = std::mem::replace(&mut self.searching, false);
        self.searching = self
            .handle
            .shared
            .exec
            .park_worker(self.ctx.index, was_searching);
    }
}
