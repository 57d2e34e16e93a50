//! The process contract: what an engine (the Lua engine, a native test process) implements.
//!
//! A process is a state machine driven by the executor:
//!
//! 1. [`Process::init`] runs once, synchronously, inside [`Handle::spawn`](crate::Handle::spawn)
//!    on the spawner's thread, before the process is registered or queued. An error aborts the
//!    spawn and is returned to the spawner.
//! 2. [`Process::step`] runs whenever the process is runnable, on whichever worker picked it up
//!    (never on two threads at once). It receives the batch of [`Event`]s that arrived since the
//!    last step (possibly empty: after `Continue`, or a spurious wake-up) and writes its
//!    intentions into the reusable [`StepOutput`]: commands to dispatch (each with a correlation
//!    [`Tag`]) and a [`Status`]. Returning `Err` ends the process with that error; a panic ends it
//!    with an `Internal` error naming the panic.
//! 3. [`Process::close`] runs exactly once after the process finished (for any reason,
//!    including `terminate` and forced shutdown), on the thread that finished it.
//!
//! Status semantics (spec §2.5): `Continue` = runnable again at once; `Idle` = wake on the next
//! message; `Yield` = wake on the next completion (new yields in the output imply `Yield`);
//! `Done` = finished with the result given to [`StepOutput::finish`]. Unlike the original, any
//! event (message *or* completion) wakes an `Idle` or `Blocked` process, so an engine may report
//! `Idle` while commands are outstanding.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::pid::Pid;
use crate::process::cell::Cell;
use crate::process::completer::Completer;
use crate::relay::Package;
use crate::runtime::Handle;
use crate::value::Value;

/// Correlation tag of a yielded command, chosen by the process (unique among its outstanding
/// commands).
pub type Tag = u64;

/// Command identifier (spec §7): ids below 256 index a direct table, larger ids a map.
pub type CommandId = u16;

/// A command a process yields; dispatched to the [`Handler`](crate::dispatch::Handler)
/// registered for its [`id`](Command::id).
pub trait Command: Send + 'static {
    /// The command id used to find the handler.
    fn id(&self) -> CommandId;
    /// Turn the command into `Any` so the handler can downcast it to its concrete type.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
    /// A short name for logs and errors (defaults to the Rust type name).
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

impl fmt::Debug for dyn Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({}, {})", self.id(), self.name())
    }
}

/// An input to [`Process::step`].
#[derive(Debug)]
pub enum Event {
    /// The result of a command this process yielded with `tag`.
    Complete {
        /// The tag given to [`StepOutput::yield_command`] (or [`ProcessCx::completer`]).
        tag: Tag,
        /// The command's result.
        result: Result<Value, Error>,
    },
    /// A message from another process, a timer or the runtime (cancel/exit events arrive as
    /// messages on topic [`EVENTS_TOPIC`](crate::process::EVENTS_TOPIC)).
    Message(Package),
}

/// What the process wants after a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Status {
    /// Runnable again immediately (the default after [`StepOutput`] is reset).
    #[default]
    Continue,
    /// Nothing to do until an event arrives.
    Idle,
    /// Waiting for completions of yielded commands.
    Yield,
    /// Finished; see [`StepOutput::finish`].
    Done,
}

/// A hot-swap request: replace the process object, keeping PID and event queue (spec §2.11).
pub struct Upgrade {
    /// The replacement process; its `init` runs before its first step.
    pub process: Box<dyn Process>,
    /// Method passed to the new process's `init`.
    pub method: String,
    /// Input passed to the new process's `init`.
    pub input: Vec<Value>,
}

impl fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrade")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// Number of yields stored without allocating (the common case is one or two).
const INLINE_YIELDS: usize = 2;

/// The reusable, worker-owned output buffer of a step.
///
/// Reset before every step (status `Continue`, no yields, no result). Holds up to
/// two yields inline and spills to a vector after that, so a typical step allocates nothing.
pub struct StepOutput {
    inline: [Option<(Tag, Box<dyn Command>)>; INLINE_YIELDS],
    overflow: Vec<(Tag, Box<dyn Command>)>,
    status: Status,
    result: Option<Result<Value, Error>>,
    upgrade: Option<Upgrade>,
}

impl Default for StepOutput {
    fn default() -> Self {
        StepOutput::new()
    }
}

impl fmt::Debug for StepOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepOutput")
            .field("status", &self.status)
            .field("yields", &self.yield_count())
            .field("result", &self.result)
            .finish()
    }
}

impl StepOutput {
    /// An empty output (status `Continue`).
    pub fn new() -> StepOutput {
        StepOutput {
            inline: [None, None],
            overflow: Vec::new(),
            status: Status::Continue,
            result: None,
            upgrade: None,
        }
    }

    /// Yield a command; the process will receive `Event::Complete { tag, .. }` for it.
    /// Implies status `Yield` unless the step also finishes.
    pub fn yield_command(&mut self, tag: Tag, cmd: Box<dyn Command>) {
        for slot in &mut self.inline {
            if slot.is_none() {
                *slot = Some((tag, cmd));
                return;
            }
        }
        self.overflow.push((tag, cmd));
    }

    /// Set the status written by this step.
    pub fn set_status(&mut self, s: Status) {
        self.status = s;
    }

    /// Finish the process: status `Done` with `result` (an `Err` is the exit error).
    pub fn finish(&mut self, result: Result<Value, Error>) {
        self.status = Status::Done;
        self.result = Some(result);
    }

    /// Request a hot swap of the process object after this step (spec §2.11).
    pub fn upgrade(
        &mut self,
        process: Box<dyn Process>,
        method: impl Into<String>,
        input: Vec<Value>,
    ) {
        self.upgrade = Some(Upgrade {
            process,
            method: method.into(),
            input,
        });
    }

    /// The status written so far.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Number of commands yielded in this step.
    pub fn yield_count(&self) -> usize {
        self.inline.iter().filter(|s| s.is_some()).count() + self.overflow.len()
    }

    /// Reset for the next step.
    pub(crate) fn reset(&mut self) {
        self.status = Status::Continue;
        self.result = None;
        self.upgrade = None;
        for slot in &mut self.inline {
            *slot = None;
        }
        self.overflow.clear();
    }

    pub(crate) fn has_yields(&self) -> bool {
        self.inline[0].is_some() || !self.overflow.is_empty()
    }

    /// Move the yields out in order.
    pub(crate) fn take_yields(&mut self, mut f: impl FnMut(Tag, Box<dyn Command>)) {
        for slot in &mut self.inline {
            if let Some((t, c)) = slot.take() {
                f(t, c);
            }
        }
        for (t, c) in self.overflow.drain(..) {
            f(t, c);
        }
    }

    pub(crate) fn take_result(&mut self) -> Result<Value, Error> {
        self.result.take().unwrap_or(Ok(Value::Nil))
    }

    pub(crate) fn take_upgrade(&mut self) -> Option<Upgrade> {
        self.upgrade.take()
    }
}

/// A schedulable process (spec §2.1). See the module docs for the protocol.
pub trait Process: Send + 'static {
    /// Called synchronously inside spawn before the process is queued; `Err` aborts the spawn.
    fn init(
        &mut self,
        cx: &mut ProcessCx<'_>,
        method: &str,
        input: Vec<Value>,
    ) -> Result<(), Error>;

    /// Advance the process. `events` is the drained batch, owned by the worker (cleared after
    /// the step; take what you need with `drain(..)` or `mem::take`).
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        events: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error>;

    /// Release resources. Called exactly once for every process whose `init` ran: after it
    /// finished for any reason, or when `init` or an `on_start` hook failed the spawn.
    fn close(&mut self) {}
}

/// The process's view of the runtime during `init` and `step`.
pub struct ProcessCx<'a> {
    pub(crate) cell: &'a Arc<Cell>,
    pub(crate) handle: &'a Handle,
}

impl<'a> ProcessCx<'a> {
    /// This process's PID.
    pub fn pid(&self) -> &Pid {
        &self.cell.pid
    }

    /// The runtime handle: send, spawn, timers, I/O directly from inside a step.
    pub fn handle(&self) -> &Handle {
        self.handle
    }

    /// The host id this process runs on.
    pub fn host(&self) -> &str {
        self.cell.pid.host()
    }

    /// A completion handle for `tag` bound to this incarnation of the process: hand it to a
    /// timer, an I/O wait or another thread; its result arrives as `Event::Complete { tag }`.
    pub fn completer(&self, tag: Tag) -> Completer {
        Completer::new(self.cell.clone(), tag)
    }

    /// The spawn options this process was started with.
    pub fn options(&self) -> &crate::runtime::SpawnOptions {
        &self.cell.options
    }
}

impl fmt::Debug for ProcessCx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessCx")
            .field("pid", &self.cell.pid)
            .finish()
    }
}
