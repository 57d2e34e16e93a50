//! Process hosts: named groups of processes sharing the runtime's workers.
//!
//! The original runs one scheduler (with its own workers) per `process.host` entry. Here every
//! host shares the runtime's pinned workers (decision `docs/decisions/0001-hosts-share-workers.md`):
//! a host is a name on the relay node, a live-process count with an optional hard limit
//! (`max_processes`, "max processes limit exceeded", `LimitExceeded`), a stopping flag, and an
//! optional lifecycle hook.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Weak};

use crate::error::{Error, Kind};
use crate::relay::{Package, Receiver};
use crate::runtime::{Lifecycle, Shared};

/// Configuration of a process host.
#[derive(Clone, Default)]
pub struct HostConfig {
    /// Hard limit on live processes of this host (None = unlimited).
    pub max_processes: Option<usize>,
    /// Host-specific lifecycle hook, run after the global ones.
    pub lifecycle: Option<Arc<dyn Lifecycle>>,
}

impl fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostConfig")
            .field("max_processes", &self.max_processes)
            .field("lifecycle", &self.lifecycle.is_some())
            .finish()
    }
}

/// Runtime-side state of one host.
pub(crate) struct HostState {
    pub(crate) id: String,
    pub(crate) max_processes: Option<usize>,
    pub(crate) lifecycle: Option<Arc<dyn Lifecycle>>,
    pub(crate) count: AtomicUsize,
    pub(crate) stopping: AtomicBool,
    /// Set by `remove_host`: per-worker host caches must not hand this host out any more.
    pub(crate) removed: AtomicBool,
}

impl HostState {
    pub(crate) fn new(id: &str, cfg: HostConfig) -> HostState {
        HostState {
            id: id.to_owned(),
            max_processes: cfg.max_processes,
            lifecycle: cfg.lifecycle,
            count: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            removed: AtomicBool::new(false),
        }
    }

    /// Reserve a slot for a new process. Only limited hosts count (an unlimited host would
    /// pay a cross-core atomic per spawn and exit for nothing: stops find a host's processes
    /// through the process table).
    #[inline]
    pub(crate) fn reserve(&self) -> Result<(), Error> {
        let Some(max) = self.max_processes else {
            return Ok(());
        };
        let prev = self.count.fetch_add(1, SeqCst);
        if prev >= max {
            self.count.fetch_sub(1, SeqCst);
            return Err(limit_exceeded(&self.id, max));
        }
        Ok(())
    }

    /// Give a slot back.
    #[inline]
    pub(crate) fn release(&self) {
        if self.max_processes.is_some() {
            self.count.fetch_sub(1, SeqCst);
        }
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(SeqCst)
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(SeqCst)
    }
}

#[cold]
fn limit_exceeded(host: &str, max: usize) -> Error {
    Error::new(Kind::LIMIT_EXCEEDED, "max processes limit exceeded")
        .with_detail("host_id", host)
        .with_detail("max_processes", max)
}

#[cold]
pub(crate) fn host_stopping(host: &str) -> Error {
    Error::new(Kind::UNAVAILABLE, "host is shutting down")
        .with_retryable(Some(false))
        .with_detail("host_id", host)
}

/// The host's receiver on the relay node: delivers to the runtime's process table.
pub(crate) struct HostReceiver {
    pub(crate) host: Arc<HostState>,
    pub(crate) rt: Weak<Shared>,
}

impl Receiver for HostReceiver {
    fn send(&self, pkg: Package) -> Result<(), Error> {
        if self.host.is_stopping() && !pkg.is_control() {
            return Err(host_stopping(&self.host.id));
        }
        match self.rt.upgrade() {
            Some(rt) => rt.deliver_local(pkg),
            None => Err(Error::new(Kind::UNAVAILABLE, "runtime is shut down")),
        }
    }
}
