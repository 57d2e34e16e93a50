//! The system lifecycle hook: what every process does on start and on exit (spec
//! `runtime-internals.md` §2.9, §4.5).
//!
//! Installed by [`crate::system::topology::install`] as the runtime's first global
//! [`Lifecycle`] hook.
//!
//! `on_start(child, options)` — runs after the child's `init`, after it is routable and before
//! its first step:
//! 1. `options.name` set → register the name (LOCAL scope). A conflict fails the spawn with
//!    `AlreadyExists` "name already registered" carrying the holder in detail `pid`
//!    ([`crate::system::names::existing_holder`]) — the spawner turns that into
//!    spawn-or-signal;
//! 2. `options.parent` set → `monitor` makes the parent watch the child, `link` links them.
//!    Failures here are logged, not fatal (the parent may be exiting), as upstream.
//!
//! `on_complete(child, result)` — runs once after the child left the process table: drop its
//! names, then [`Graph::complete`](crate::system::topology::Graph::complete) (EXIT to watchers,
//! LINK_DOWN to links when `result` is an error). Cost for a process with no names and no
//! edges: an atomic load and one shard lock with a hash miss.
//!
//! There is deliberately no parent/child cascade: a parent's exit does nothing to its children
//! unless they are linked (upstream behaviour).

use std::sync::Arc;

use wippy_rt::{Error, Lifecycle, Pid, SpawnOptions, Value};

use crate::system::topology::Topology;

/// See the module docs.
pub struct SystemLifecycle {
    topology: Arc<Topology>,
}

impl SystemLifecycle {
    /// A hook over `topology`.
    pub fn new(topology: Arc<Topology>) -> SystemLifecycle {
        SystemLifecycle { topology }
    }
}

impl std::fmt::Debug for SystemLifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemLifecycle").finish_non_exhaustive()
    }
}

impl Lifecycle for SystemLifecycle {
    fn on_start(&self, pid: &Pid, opts: &SpawnOptions) -> Result<(), Error> {
        if let Some(name) = &opts.name {
            self.topology.names().register(name, pid)?;
        }
        if let Some(parent) = &opts.parent {
            let g = self.topology.graph();
            if opts.monitor
                && let Err(e) = g.monitor(parent, pid)
            {
                log::debug!(target: "wippy::topology", parent:% = parent, child:% = pid; "spawn monitor failed: {e}");
            }
            if opts.link
                && let Err(e) = g.link(parent, pid)
            {
                log::debug!(target: "wippy::topology", parent:% = parent, child:% = pid; "spawn link failed: {e}");
            }
        }
        Ok(())
    }

    fn on_complete(&self, pid: &Pid, result: &Result<Value, Error>) {
        self.topology.names().remove(pid);
        self.topology.graph().complete(pid, result);
    }
}
