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
//! completer to whoever does the work — a database connection thread, the engine's
//! blocking-job pool (`crate::lua::engine::jobs`), a queue waiting for space — and returns at once. The worker never blocks. The completion
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
