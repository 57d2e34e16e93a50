//! The process cell: everything the runtime keeps about one live process.
//!
//! A cell is shared (`Arc<Cell>`) by the process table, run-queue entries, completers and
//! introspection, but its mutable core — the process object and its exit channel — is reached
//! only through [`Cell::with_owned`], which requires ownership won through the state word
//! (invariant 1 of [`state`](super::state)).

use std::fmt;
use std::sync::Arc as StdArc;
use std::time::SystemTime;

use crate::error::{Error, Kind};
use crate::pid::Pid;
use crate::process::Process;
use crate::process::queue::EventQueue;
use crate::process::state::StateWord;
use crate::runtime::host::HostState;
use crate::runtime::{Shared, SpawnOptions};
use crate::sync::{AtomicU32, AtomicU64, Ordering::Relaxed, UnsafeCell};
use crate::value::Value;

/// `last_worker` value meaning "never ran on a worker".
pub(crate) const NO_WORKER: u32 = u32::MAX;

/// Why a process was killed from outside (stored in [`Cell::kill`]).
pub(crate) const KILL_NONE: u32 = 0;
/// `terminate`: exit error "process terminated".
pub(crate) const KILL_TERMINATE: u32 = 1;
/// Forced at the end of a stop timeout: exit error "context canceled".
pub(crate) const KILL_FORCED: u32 = 2;

/// The owner-only part of a cell.
pub(crate) struct Owned {
    pub(crate) process: Option<Box<dyn Process>>,
    pub(crate) exit_tx: Option<crossbeam_channel::Sender<Result<Value, Error>>>,
}

/// See the module docs.
pub(crate) struct Cell {
    pub(crate) state: StateWord,
    pub(crate) queue: EventQueue,
    /// Index of the worker that last ran the process (completions from other threads are
    /// routed to its inject queue), or [`NO_WORKER`].
    pub(crate) last_worker: AtomicU32,
    /// A `KILL_*` code; set before the killer notifies or seizes the process.
    pub(crate) kill: AtomicU32,
    /// Number of completed steps (written by the owner, read racily by introspection).
    pub(crate) steps: AtomicU64,
    pub(crate) pid: Pid,
    pub(crate) options: SpawnOptions,
    pub(crate) host: StdArc<HostState>,
    pub(crate) rt: StdArc<Shared>,
    pub(crate) started_at: SystemTime,
    owned: UnsafeCell<Owned>,
}

// SAFETY: every field but `owned` is Sync on its own (atomics, a mutex-protected queue, shared
// immutable data). `owned` holds `Send` data (`Box<dyn Process>` requires `Process: Send`;
// crossbeam senders are Send) and is only reached through `with_owned`, whose contract is that
// the caller holds ownership through the state word: exactly one thread at a time moved the
// word into RUNNING and has not yet left it (state.rs invariant 1), and that transition is a
// SeqCst RMW, so the previous owner's accesses happen-before the next owner's. Hence `&Cell`
// shared across threads never yields concurrent access to `owned`.
unsafe impl Sync for Cell {}

impl Cell {
    pub(crate) fn new(
        pid: Pid,
        options: SpawnOptions,
        host: StdArc<HostState>,
        rt: StdArc<Shared>,
        process: Box<dyn Process>,
        exit_tx: Option<crossbeam_channel::Sender<Result<Value, Error>>>,
    ) -> Cell {
        Cell {
            state: StateWord::new(),
            queue: EventQueue::new(),
            last_worker: AtomicU32::new(NO_WORKER),
            kill: AtomicU32::new(KILL_NONE),
            steps: AtomicU64::new(0),
            pid,
            options,
            host,
            rt,
            started_at: now(),
            owned: UnsafeCell::new(Owned {
                process: Some(process),
                exit_tx,
            }),
        }
    }

    /// Re-arm a retired cell for a new process. `&mut self` proves exclusivity (the caller got
    /// it from `Arc::get_mut`, so no completer, queue entry or table entry refers to it); the
    /// queue's generation is bumped all the same, so the "stale completions are rejected" rule
    /// does not depend on that argument.
    pub(crate) fn reinit(
        &mut self,
        pid: Pid,
        options: SpawnOptions,
        host: &StdArc<HostState>,
        process: Box<dyn Process>,
        exit_tx: Option<crossbeam_channel::Sender<Result<Value, Error>>>,
    ) {
        self.state = StateWord::new();
        drop(self.queue.reset());
        self.last_worker = AtomicU32::new(NO_WORKER);
        self.kill = AtomicU32::new(KILL_NONE);
        self.steps = AtomicU64::new(0);
        self.pid = pid;
        self.options = options;
        if !StdArc::ptr_eq(&self.host, host) {
            self.host = host.clone();
        }
        self.started_at = now();
        self.owned = UnsafeCell::new(Owned {
            process: Some(process),
            exit_tx,
        });
    }

    /// Drop what a retired cell should not keep alive while it waits in a pool.
    pub(crate) fn retire(&mut self) {
        self.options = SpawnOptions::default();
        self.owned = UnsafeCell::new(Owned {
            process: None,
            exit_tx: None,
        });
    }

    /// Run `f` on the owner-only data.
    ///
    /// # Safety
    /// The caller must own the process: its thread moved the state word into RUNNING (or created
    /// the cell and has not published it to any run queue yet) and has not left RUNNING. `f`
    /// must not call `with_owned` on the same cell again.
    pub(crate) unsafe fn with_owned<R>(&self, f: impl FnOnce(&mut Owned) -> R) -> R {
        // SAFETY: exclusivity is the caller's obligation (see above and the `Sync` impl); the
        // pointer is valid for the cell's lifetime and not aliased while `f` runs because `f`
        // may not re-enter.
        self.owned.with_mut(|p| f(unsafe { &mut *p }))
    }

    /// The kill error for a `KILL_*` code, if killed.
    pub(crate) fn kill_error(&self) -> Option<Error> {
        match self.kill.load(crate::sync::Ordering::SeqCst) {
            KILL_NONE => None,
            KILL_TERMINATE => Some(terminated_error()),
            _ => Some(Error::new(Kind::CANCELED, "context canceled")),
        }
    }

    pub(crate) fn steps(&self) -> u64 {
        self.steps.load(Relaxed)
    }
}

impl fmt::Debug for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cell")
            .field("pid", &self.pid)
            .field("state", &self.state.get())
            .finish()
    }
}

/// Spawn timestamp: the coarse real-time clock (a few ns instead of a full `clock_gettime`;
/// millisecond-level resolution is plenty for introspection).
fn now() -> SystemTime {
    crate::sys::coarse_now()
}

/// The exit error of a terminated process (spec `system/process/errors.go`).
#[cold]
pub(crate) fn terminated_error() -> Error {
    Error::internal("process terminated")
}
