//! The runtime: builder, shared state, handle, hosts, lifecycle, stop.
//!
//! * [`Builder`] → [`Runtime`] (owns the worker and reactor threads) → [`Handle`] (cheap,
//!   cloneable access from anywhere, including inside steps and handlers).
//! * `host` — process hosts ([`HostConfig`]); `lifecycle` — [`Lifecycle`], [`SpawnOptions`].
//! * `step` — one step of a process and the exit path; `stop` — cancel / wait / force;
//!   `stats` — introspection types.

mod handle;
pub(crate) mod host;
mod lifecycle;
mod stats;
pub(crate) mod step;
mod stop;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fnv::FnvBuildHasher;

use crate::app_context::AppContext;
use crate::bus::Bus;
use crate::dispatch::Dispatcher;
use crate::error::{Error, Kind};
use crate::exec::worker::{SpinConfig, WorkerLoop};
use crate::exec::{Executor, Reason};
use crate::pid::{Pid, PidGen};
use crate::process::cell::Cell;
use crate::process::state::Wake;
use crate::process::{Event, table::ProcessTable};
use crate::reactor::Reactor;
use crate::relay::{Node, Package, Router};
use crate::value::Value;

pub use handle::{ExitWatch, Handle};
pub use host::HostConfig;
pub use lifecycle::{Lifecycle, SpawnOptions};
pub use stats::{ProcessInfo, RuntimeStats, StopReport, WorkerStats};

use host::HostState;

/// Default tight-spin rounds before yielding (the original's 3).
pub const DEFAULT_SPIN_TIGHT: u32 = 3;
/// Default `yield_now` rounds before parking (the original parks at attempt 16).
pub const DEFAULT_SPIN_YIELD: u32 = 12;
/// Upper bound on `Builder::workers` (the idle accounting packs the counts into 16 bits; far
/// beyond any machine this runs on).
pub const MAX_WORKERS: usize = 4096;
/// Default stop grace period (the original's scheduler default, 10 s).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a [`Runtime`].
///
/// ```
/// let rt = wippy_rt::Builder::new().workers(2).pin(false).build().unwrap();
/// let h = rt.handle();
/// h.add_host("app:processes", Default::default()).unwrap();
/// rt.shutdown(std::time::Duration::from_secs(1));
/// ```
pub struct Builder {
    workers: Option<usize>,
    pin: bool,
    spin: SpinConfig,
    stop_timeout: Duration,
    node_id: String,
    lifecycles: Vec<Arc<dyn Lifecycle>>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("workers", &self.workers)
            .field("pin", &self.pin)
            .field("spin", &self.spin)
            .field("stop_timeout", &self.stop_timeout)
            .field("node_id", &self.node_id)
            .finish()
    }
}

impl Builder {
    /// Defaults: one worker per CPU of the process's affinity mask (so `taskset` and cgroup
    /// cpusets are honoured), pinned; spin 3 tight + 12 yield rounds; stop timeout 10 s; node
    /// id `"local"` (PIDs render without a node prefix).
    pub fn new() -> Builder {
        Builder {
            workers: None,
            pin: true,
            spin: SpinConfig {
                tight: DEFAULT_SPIN_TIGHT,
                yields: DEFAULT_SPIN_YIELD,
            },
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            node_id: "local".into(),
            lifecycles: Vec::new(),
        }
    }
    /// Number of workers (≥ 1).
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = Some(n.max(1));
        self
    }
    /// Pin worker *i* to the *i*-th CPU of the affinity mask (default true).
    pub fn pin(mut self, pin: bool) -> Builder {
        self.pin = pin;
        self
    }
    /// Idle spinning before parking: `tight` rounds with a CPU pause, then `yields` rounds with
    /// `yield_now`. Each round re-runs the whole work search.
    pub fn spin(mut self, tight: u32, yields: u32) -> Builder {
        self.spin = SpinConfig { tight, yields };
        self
    }
    /// Grace period used by `Drop` and by [`Runtime::shutdown`] callers that pass none.
    pub fn stop_timeout(mut self, d: Duration) -> Builder {
        self.stop_timeout = d;
        self
    }
    /// The relay node id (`"local"` is blanked in PIDs, as the original's PID generator does).
    pub fn node_id(mut self, id: impl Into<String>) -> Builder {
        self.node_id = id.into();
        self
    }
    /// A global lifecycle hook (runs for every process, before host hooks).
    pub fn lifecycle(mut self, l: Arc<dyn Lifecycle>) -> Builder {
        self.lifecycles.push(l);
        self
    }

    /// Start the workers and the reactor.
    ///
    /// # Errors
    /// `Invalid` for more than [`MAX_WORKERS`] workers; `Internal` when the poller or a thread
    /// cannot be created.
    pub fn build(self) -> Result<Runtime, Error> {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let workers = self.workers.unwrap_or_else(|| {
            if cores.is_empty() {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            } else {
                cores.len()
            }
        });
        if workers > MAX_WORKERS {
            return Err(Error::invalid(format!(
                "workers must be between 1 and {MAX_WORKERS} (got {workers})"
            )));
        }
        let (exec, locals) = Executor::new(workers);
        let (reactor, poll) =
            Reactor::new().map_err(|e| Error::internal(format!("reactor: {e}")))?;
        let node = Arc::new(Node::new(self.node_id.clone()));
        let has_lc = !self.lifecycles.is_empty();
        let shared = Arc::new(Shared {
            exec,
            table: ProcessTable::new(),
            hosts: RwLock::new(HashMap::default()),
            dispatcher: Dispatcher::new(),
            router: Router::new(node.clone()),
            node,
            bus: Bus::new(),
            pidgen: PidGen::new(&self.node_id),
            app: AppContext::new(),
            lifecycles: RwLock::new(self.lifecycles.into()),
            has_lifecycles: AtomicBool::new(has_lc),
            reactor,
            stopping: AtomicBool::new(false),
            exit_lock: Mutex::new(()),
            exit_cv: Condvar::new(),
            spawned: AtomicU64::new(0),
            exited: AtomicU64::new(0),
            workers,
            pinned: self.pin && !cores.is_empty(),
            stop_timeout: self.stop_timeout,
        });
        shared.reactor.start(poll, Arc::downgrade(&shared));
        let handle = Handle {
            shared: shared.clone(),
        };
        let mut threads = Vec::with_capacity(workers);
        for (i, local) in locals.into_iter().enumerate() {
            let h = handle.clone();
            let core = (self.pin && !cores.is_empty()).then(|| cores[i % cores.len()]);
            let spin = self.spin;
            let t = std::thread::Builder::new()
                .name(format!("wippy-worker-{i}"))
                .spawn(move || {
                    if let Some(c) = core
                        && !core_affinity::set_for_current(c)
                    {
                        log::warn!(worker = i; "could not pin worker to its core");
                    }
                    WorkerLoop::new(h, i, local, spin).run();
                })
                .map_err(|e| Error::internal(format!("spawn worker: {e}")))?;
            threads.push(t);
        }
        Ok(Runtime {
            handle,
            threads,
            down: false,
        })
    }
}

/// A running runtime. Dropping it stops everything (with the builder's stop timeout).
pub struct Runtime {
    handle: Handle,
    threads: Vec<JoinHandle<()>>,
    down: bool,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.threads.len())
            .finish()
    }
}

impl Runtime {
    /// A handle (cheap to clone, usable from any thread).
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Stop all processes ([`Handle::stop`]: CANCEL, wait up to `timeout`, force), then stop
    /// the workers, the reactor and the bus. Worker threads stuck inside a step that never
    /// returns are left behind (detached) after `timeout`; the report says so.
    pub fn shutdown(mut self, timeout: Duration) -> StopReport {
        self.shutdown_inner(timeout)
    }

    fn shutdown_inner(&mut self, timeout: Duration) -> StopReport {
        self.down = true;
        let deadline = Instant::now() + timeout;
        let mut report = self.handle.stop(timeout);
        let sh = &self.handle.shared;
        sh.exec.begin_shutdown();
        sh.reactor.shutdown();
        let threads = std::mem::take(&mut self.threads);
        for t in threads {
            while !t.is_finished() && Instant::now() < deadline + Duration::from_millis(100) {
                std::thread::sleep(Duration::from_millis(1));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                report.stuck_workers += 1;
            }
        }
        sh.exec.drain();
        sh.bus.close();
        report
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if !self.down {
            let t = self.handle.shared.stop_timeout;
            self.shutdown_inner(t);
        }
    }
}

/// Everything shared by handles, workers, cells and the reactor.
pub(crate) struct Shared {
    pub(crate) exec: Executor,
    pub(crate) table: ProcessTable,
    pub(crate) hosts: RwLock<HashMap<String, Arc<HostState>, FnvBuildHasher>>,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) node: Arc<Node>,
    pub(crate) router: Router,
    pub(crate) bus: Bus,
    pub(crate) pidgen: PidGen,
    pub(crate) app: AppContext,
    pub(crate) lifecycles: RwLock<Arc<[Arc<dyn Lifecycle>]>>,
    pub(crate) has_lifecycles: AtomicBool,
    pub(crate) reactor: Reactor,
    pub(crate) stopping: AtomicBool,
    pub(crate) exit_lock: Mutex<()>,
    pub(crate) exit_cv: Condvar,
    /// Spawns/exits counted on threads that are not workers (workers count in their own
    /// cache-padded counters: a shared counter would bounce between cores on every spawn).
    pub(crate) spawned: AtomicU64,
    pub(crate) exited: AtomicU64,
    pub(crate) workers: usize,
    pub(crate) pinned: bool,
    pub(crate) stop_timeout: Duration,
}

impl Shared {
    pub(crate) fn host(&self, id: &str) -> Option<Arc<HostState>> {
        self.hosts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Deliver a message to a live local process (the host receiver's path).
    pub(crate) fn deliver_local(&self, pkg: Package) -> Result<(), Error> {
        match self.table.get(&pkg.to) {
            Some(cell) => push_message(&cell, pkg),
            None => Err(process_not_found(&pkg.to)),
        }
    }

    pub(crate) fn lifecycles(&self) -> Option<Arc<[Arc<dyn Lifecycle>]>> {
        if !self.has_lifecycles.load(SeqCst) {
            return None;
        }
        Some(
            self.lifecycles
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    pub(crate) fn run_on_complete(&self, cell: &Cell, result: &Result<Value, Error>) {
        if let Some(ls) = self.lifecycles() {
            for l in ls.iter() {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    l.on_complete(&cell.pid, result)
                }))
                .is_err()
                {
                    log::error!(pid:% = cell.pid; "lifecycle on_complete panicked");
                }
            }
        }
        if let Some(l) = &cell.host.lifecycle
            && std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                l.on_complete(&cell.pid, result)
            }))
            .is_err()
        {
            log::error!(pid:% = cell.pid; "host lifecycle on_complete panicked");
        }
    }

    /// Count a spawn (`spawn == true`) or an exit on the calling thread's counter.
    #[inline]
    pub(crate) fn count(&self, spawn: bool) {
        let done = crate::exec::worker::with_current(&self.exec, |ctx| {
            let c = &self.exec.workers[ctx.index].counters;
            crate::exec::bump(if spawn { &c.spawned } else { &c.exited });
        });
        if done.is_none() {
            (if spawn { &self.spawned } else { &self.exited })
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Wake stop waiters after an exit (only while a stop is in progress).
    pub(crate) fn notify_exit(&self, cell: &Cell) {
        if self.stopping.load(SeqCst) || cell.host.is_stopping() {
            let _g = self.exit_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.exit_cv.notify_all();
        }
    }
}

/// Make a cell runnable after an event was pushed (or a kill flag set): the notifier that wins
/// IDLE/BLOCKED → READY queues it.
#[inline]
pub(crate) fn wake(cell: &Arc<Cell>) {
    if cell.state.notify() == Wake::Schedule {
        cell.rt.exec.schedule(cell.clone(), Reason::Wake);
    }
}

/// Push a message into a cell and wake it.
#[inline]
pub(crate) fn push_message(cell: &Arc<Cell>, pkg: Package) -> Result<(), Error> {
    match cell.queue.push(Event::Message(pkg)) {
        Ok(()) => {
            wake(cell);
            Ok(())
        }
        Err(Event::Message(p)) => Err(process_not_found(&p.to)),
        Err(_) => Err(Error::not_found("process not found")),
    }
}

/// "process not found" (spec §2.8), kind NotFound, detail `pid`.
#[cold]
pub(crate) fn process_not_found(pid: &Pid) -> Error {
    Error::new(Kind::NOT_FOUND, "process not found").with_detail("pid", pid.as_str())
}
