//! Blocking work for the data services: how a Lua task hands an operation to another thread
//! and is resumed with its result. Shared by `sql`, `store`, `queue` and `fs`.
//!
//! # Protocol
//!
//! A module callback that cannot answer at once builds a [`Job`] — a boxed closure that
//! receives the task's [`Completer`] — and suspends the task with the engine's generic
//! dispatcher extension point (`Op::Command(job, Conv::Custom(..))`, see
//! `crate::lua::engine::core`). After the step, the worker dispatches the command: the handler
//! registered for the job's id ([`register`]) just runs the closure, which passes the
//! completer to whoever does the work — a database connection thread, the [`BlockingPool`],
//! a queue waiting for space — and returns at once. The worker never blocks. The completion
//! carries the native result as `Value::Opaque` and the `Conv::Custom` closure turns it into
//! Lua values on the process's own thread when the task resumes.
//!
//! Invariants: a job's closure runs exactly once (the dispatcher consumes the command); a
//! completer dropped unused (a thread died, a pool shut down) resumes the task with the
//! runtime's `Internal` "command dropped without completion", so no task can hang on a lost
//! job.
//!
//! Command ids follow the original's table (spec `runtime-internals.md` §7): 50 stream
//! (`fs` files), 100 sql, 120 store; the queue module has no id upstream and uses 220 from the
//! unassigned range.

use std::any::Any;
use std::sync::Arc;
use std::sync::Mutex;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use wippy_rt::{Command, CommandId, Completer, DispatchCx, Error, Handle, Value};

/// Command id of stream (file) jobs.
pub const STREAM: CommandId = 50;
/// Command id of SQL jobs.
pub const SQL: CommandId = 100;
/// Command id of store jobs.
pub const STORE: CommandId = 120;
/// Command id of queue jobs.
pub const QUEUE: CommandId = 220;

/// The work a job does with the completer of the suspended task.
pub type JobFn = Box<dyn FnOnce(Completer) + Send>;

/// A dispatcher command carrying a closure (see the module docs).
pub struct Job {
    id: CommandId,
    run: JobFn,
}

impl Job {
    /// A job dispatched under command `id`.
    pub fn new(id: CommandId, run: impl FnOnce(Completer) + Send + 'static) -> Job {
        Job {
            id,
            run: Box::new(run),
        }
    }
}

impl Command for Job {
    fn id(&self) -> CommandId {
        self.id
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
    fn name(&self) -> &'static str {
        match self.id {
            STREAM => "data.stream",
            SQL => "data.sql",
            STORE => "data.store",
            QUEUE => "data.queue",
            _ => "data.job",
        }
    }
}

fn handle_job(_cx: &DispatchCx<'_>, cmd: Box<dyn Command>, done: Completer) {
    match cmd.into_any().downcast::<Job>() {
        Ok(job) => (job.run)(done),
        Err(_) => {
            done.complete(Err(Error::internal(
                "data job handler got a foreign command",
            )));
        }
    }
}

/// Register the job handler for `id` (load phase, before the dispatcher is frozen). Idempotent
/// per id: a second call for an id already registered by this module is ignored.
pub fn register(handle: &Handle, id: CommandId, owner: &'static str) {
    let d = handle.dispatcher();
    if d.owner(id).is_some() {
        return;
    }
    d.register(id, owner, Arc::new(handle_job));
}

/// Wrap a native result for the completion (read back with [`take`]).
pub fn opaque<T: Send + Sync + 'static>(v: T) -> Value {
    Value::Opaque(Arc::new(v))
}

/// The native value of a completion made with [`opaque`].
///
/// # Errors
/// `Internal` when the completion holds something else (a broken module invariant).
pub fn take<T: Send + Sync + 'static>(v: Value) -> Result<Arc<T>, Error> {
    match v {
        Value::Opaque(a) => a
            .downcast::<T>()
            .map_err(|_| Error::internal("unexpected completion type")),
        _ => Err(Error::internal("unexpected completion value")),
    }
}

/// A closure run by the [`BlockingPool`].
pub type Task = Box<dyn FnOnce() + Send>;

/// Threads for blocking file work (`fs`), shared by one system.
///
/// A fixed number of threads pull closures from one channel. Sized small: file operations
/// are short and the machine's cores belong to the executor.
pub struct BlockingPool {
    tx: Mutex<Option<Sender<Task>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Threads of a [`BlockingPool`]: enough to overlap a slow disk operation with others
/// without competing with the executor's workers for CPU.
pub const BLOCKING_THREADS: usize = 2;

impl BlockingPool {
    /// Start `n` threads named `name-<i>`.
    pub fn new(name: &str, n: usize) -> BlockingPool {
        let (tx, rx): (Sender<Task>, Receiver<Task>) = crossbeam_channel::unbounded();
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let rx = rx.clone();
            let h = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    while let Ok(f) = rx.recv() {
                        f();
                    }
                });
            match h {
                Ok(h) => threads.push(h),
                Err(e) => log::error!(target: "wippy::data", "cannot start {name} thread: {e}"),
            }
        }
        BlockingPool {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
        }
    }

    /// Run `f` on a pool thread. After [`shutdown`](Self::shutdown) the closure is dropped
    /// (its completer then reports the drop to the waiting task).
    pub fn run(&self, f: impl FnOnce() + Send + 'static) {
        let g = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = g.as_ref() {
            let _ = tx.send(Box::new(f));
        }
    }

    /// Stop accepting work and join the threads (after they drain the queue).
    pub fn shutdown(&self) {
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for BlockingPool {
    fn drop(&mut self) {
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

impl std::fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingPool").finish_non_exhaustive()
    }
}
