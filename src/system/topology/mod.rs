//! The process topology: who watches whom, who is linked to whom, process names, graceful and
//! forced stops (spec `runtime-internals.md` §4, `lua-api.md` §3.7).
//!
//! Table of contents:
//! * [`graph`] — the sharded monitor/link graph ([`Graph`]): EXIT to monitors on every exit,
//!   LINK_DOWN to links on abnormal exits only;
//! * [`watch`] — native watcher PIDs ([`WatchHost`], [`Watch`]) whose packages go to closures;
//! * [`control`] — CANCEL (with optional deadline escalation) and terminate;
//! * the name registry lives next door in [`crate::system::names`];
//! * the runtime hook that ties them to every process ([`crate::system::lifecycle`]).
//!
//! [`Topology`] bundles the four and is what the rest of the system uses: it is created once
//! by [`install`] (boot's load phase), stored in the runtime's application context under
//! [`TOPOLOGY`], and registered as the first global lifecycle hook so that names, monitors and
//! links of a spawn are in place before the child's first step.
//!
//! # Semantics decided here (see `docs/system.md` and decisions 0060–0062)
//!
//! * There is no parent/child cascade: only links propagate failure (upstream behaviour).
//! * Monitoring or linking a PID that already exited fails with `NotFound` "pid not registered"
//!   (upstream behaviour, not Erlang's immediate `noproc` EXIT; decision 0060).
//! * A linked process that does not trap links fails with "linked process failed"
//!   ([`link_failed_error`]) when a LINK_DOWN reaches it; with `trap_links` the LINK_DOWN is an
//!   ordinary event. The option lives in the graph ([`Graph::set_trap_links`]).
//! * `cancel(dest, reason, deadline)`: the deadline form escalates to terminate (decision 0061).

pub mod control;
pub mod graph;
pub mod watch;

use std::sync::Arc;

use wippy_rt::app_context::Key;
use wippy_rt::{Error, Handle, Kind, Pid};

use crate::system::System;
use crate::system::lifecycle::SystemLifecycle;
use crate::system::names::Names;

pub use control::{CancelArg, DEADLINE_TOPIC};
pub use graph::{Graph, Notified};
pub use watch::{WATCH_HOST, Watch, WatchHost};

/// Application-context slot of the installed [`Topology`].
pub static TOPOLOGY: Key<Topology> = Key::new("wippy.system.topology");

/// The exit error of a process that received LINK_DOWN without trapping links.
#[cold]
pub fn link_failed_error() -> Error {
    Error::new(Kind::INTERNAL, "linked process failed")
}

/// Graph + names + watchers + control, over one runtime.
pub struct Topology {
    handle: Handle,
    graph: Graph,
    names: Names,
    watch: Arc<WatchHost>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topology")
            .field("graph", &self.graph)
            .field("names", &self.names)
            .field("watch", &self.watch)
            .finish()
    }
}

/// Install the topology on the runtime of `system` (see [`Topology::install`]).
///
/// # Errors
/// As [`Topology::install`].
pub fn install(system: &Arc<System>) -> Result<Arc<Topology>, Error> {
    Topology::install(&system.handle)
}

impl Topology {
    /// Create the topology for `handle`'s runtime: register the watcher host
    /// ([`WATCH_HOST`]), add the [`SystemLifecycle`] hook, and store the result under
    /// [`TOPOLOGY`] when the application context is not sealed yet. Call once, before the
    /// first spawn (boot's load phase).
    ///
    /// # Errors
    /// `AlreadyExists` when the watcher host is registered already (installed twice).
    pub fn install(handle: &Handle) -> Result<Arc<Topology>, Error> {
        let t = Arc::new(Topology::build(handle)?);
        handle.add_lifecycle(Arc::new(SystemLifecycle::new(t.clone())));
        let cx = handle.app_context();
        if !cx.is_sealed() && !cx.contains(&TOPOLOGY) {
            cx.set_arc(&TOPOLOGY, t.clone());
        }
        Ok(t)
    }

    fn build(handle: &Handle) -> Result<Topology, Error> {
        let watch = WatchHost::install(handle, WATCH_HOST)?;
        let alive = {
            let (h, w) = (handle.clone(), watch.clone());
            move |p: &Pid| h.is_alive(p) || w.contains(p)
        };
        let alive2 = alive.clone();
        let sender = handle.clone();
        let graph = Graph::with_parts(
            Box::new(alive),
            Box::new(move |pkg| {
                let _ = sender.send(pkg);
            }),
            handle.node().id(),
        );
        Ok(Topology {
            handle: handle.clone(),
            graph,
            names: Names::with_liveness(alive2),
            watch,
        })
    }

    /// The installed topology of a runtime, if any.
    pub fn of(handle: &Handle) -> Option<Arc<Topology>> {
        handle.app_context().get(&TOPOLOGY)
    }

    /// The runtime handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The monitor/link graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The LOCAL name registry.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The watcher host.
    pub fn watch_host(&self) -> &Arc<WatchHost> {
        &self.watch
    }

    /// A native watcher PID (see [`WatchHost::watch`]).
    pub fn watch(&self, f: impl Fn(wippy_rt::Package) + Send + Sync + 'static) -> Watch {
        self.watch.watch(f)
    }

    /// Resolve a destination: PID text first, then a registered name.
    ///
    /// # Errors
    /// `NotFound` `"could not resolve '<dest>' as PID or registered name"`.
    #[inline]
    pub fn resolve(&self, dest: &str) -> Result<Pid, Error> {
        self.names.resolve(dest)
    }

    /// `caller` monitors `target` ([`Graph::monitor`]).
    ///
    /// # Errors
    /// As [`Graph::monitor`].
    pub fn monitor(&self, caller: &Pid, target: &Pid) -> Result<(), Error> {
        self.graph.monitor(caller, target)
    }

    /// `caller` stops monitoring `target`.
    pub fn unmonitor(&self, caller: &Pid, target: &Pid) {
        self.graph.demonitor(caller, target)
    }

    /// Link `caller` and `target` ([`Graph::link`]).
    ///
    /// # Errors
    /// As [`Graph::link`].
    pub fn link(&self, caller: &Pid, target: &Pid) -> Result<(), Error> {
        self.graph.link(caller, target)
    }

    /// Remove the link between `caller` and `target`.
    pub fn unlink(&self, caller: &Pid, target: &Pid) {
        self.graph.unlink(caller, target)
    }

    /// True when nothing is monitored, linked, named or watched (leak checks).
    pub fn is_quiescent(&self) -> bool {
        self.graph.is_empty() && self.names.is_empty() && self.watch.is_empty()
    }
}
