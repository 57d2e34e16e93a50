//! The monitor/link graph (spec `runtime-internals.md` §4.1–4.2).
//!
//! # Data structure
//!
//! [`SHARDS`] cache-padded mutexes, each guarding an FNV map `pid → Node`, the shard chosen by
//! FNV-1a of the PID text (as the original). A node holds three edge sets:
//! `watchers` (who monitors me), `links` (bidirectional peers) and `watching` (whom I
//! monitor), plus a `registered` flag for PIDs that are not runtime processes (function
//! executions, §11.8) and the process's `trap_links` option.
//!
//! Nodes are created **lazily**, by the first edge or option touching a PID, and dropped as soon
//! as they carry nothing. A process that is never monitored or linked costs nothing at spawn
//! and one shard lock with a hash miss at exit. Liveness of a monitor/link target is therefore
//! not "has a node" but "is a live runtime process **or** is explicitly registered".
//!
//! # Invariants
//!
//! 1. **Symmetry.** `a ∈ b.watchers ⇔ b ∈ a.watching` and `a ∈ b.links ⇔ b ∈ a.links`
//!    whenever both nodes exist; an edge is added or removed with *both* shards locked.
//! 2. **Lock order.** An operation on two PIDs locks their shards in ascending index order
//!    (one lock when they share a shard). [`Graph::complete`] never holds two shard locks:
//!    it detaches the exiting node under its own shard, then cleans each back-reference under
//!    that peer's shard alone. So there is no lock cycle.
//! 3. **No edge to the dead.** `monitor`/`link` check the target's liveness *while holding its
//!    shard*. The runtime removes an exiting process from its table before the lifecycle calls
//!    `complete`, which needs the same shard: either the check sees the process dead (error
//!    "pid not registered"), or the edge is in place before `complete` runs and the EXIT /
//!    LINK_DOWN is delivered. (An edge *from* a watcher that dies concurrently is cleaned when
//!    the target exits; the notification to the dead watcher is dropped.)
//! 4. **Empty nodes are freed**, so after every process exited the graph is empty again (the
//!    fault test checks this).
//!
//! Notifications are sent after all locks are released (spec §4.2 `Complete`): EXIT to every
//! watcher, always; LINK_DOWN to every linked peer only when the result is an error.

use std::sync::Mutex;

use crossbeam_utils::CachePadded;
use fnv::{FnvHashMap, FnvHashSet};
use wippy_rt::process::{exit_package, link_down_package};
use wippy_rt::{Error, Handle, Kind, Pid, Value};

/// Number of shards (the original's 32): a power of two well above the worker count.
pub const SHARDS: usize = 32;

/// One PID's edges and options.
#[derive(Default, Debug)]
struct Node {
    registered: bool,
    trap_links: bool,
    watchers: FnvHashSet<Pid>,
    links: FnvHashSet<Pid>,
    watching: FnvHashSet<Pid>,
}

impl Node {
    fn is_empty(&self) -> bool {
        !self.registered
            && !self.trap_links
            && self.watchers.is_empty()
            && self.links.is_empty()
            && self.watching.is_empty()
    }
}

type Map = FnvHashMap<Pid, Node>;
type Shard = CachePadded<Mutex<Map>>;

/// What [`Graph::complete`] delivered (for tests and stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notified {
    /// EXIT events sent.
    pub exits: usize,
    /// LINK_DOWN events sent.
    pub link_downs: usize,
}

/// Liveness of a PID that has no explicit registration.
pub type Liveness = Box<dyn Fn(&Pid) -> bool + Send + Sync>;
/// Where notifications go (the runtime's `send` in production).
pub type Sender = Box<dyn Fn(wippy_rt::Package) + Send + Sync>;

/// The monitor/link graph. See the module docs.
pub struct Graph {
    shards: Box<[Shard]>,
    alive: Liveness,
    send: Sender,
    local_node: String,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph").field("nodes", &self.len()).finish()
    }
}

/// FNV-1a (64-bit) of the PID text: the shard index (the original hashes the PID string).
#[inline]
fn shard_of(pid: &Pid) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in pid.as_str().as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h as usize) & (SHARDS - 1)
}

impl Graph {
    /// A graph over the runtime behind `handle`: liveness = the process table, notifications
    /// = `handle.send` (errors ignored: the receiver may be gone).
    pub fn new(handle: Handle) -> Graph {
        let node = handle.node().id().to_string();
        let h2 = handle.clone();
        Graph::with_parts(
            Box::new(move |p| handle.is_alive(p)),
            Box::new(move |pkg| {
                let _ = h2.send(pkg);
            }),
            &node,
        )
    }

    /// A graph with custom liveness and delivery (unit tests).
    pub fn with_parts(alive: Liveness, send: Sender, local_node: &str) -> Graph {
        Graph {
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::new(FnvHashMap::default())))
                .collect(),
            alive,
            send,
            local_node: local_node.to_string(),
        }
    }

    #[inline]
    fn shard(&self, i: usize) -> std::sync::MutexGuard<'_, Map> {
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_local(&self, pid: &Pid) -> bool {
        pid.node().is_empty() || pid.node() == self.local_node
    }

    fn live_in(&self, map: &Map, pid: &Pid) -> bool {
        map.get(pid).is_some_and(|n| n.registered) || (self.alive)(pid)
    }

    /// Run `f` with the shards of `a` and `b` locked in ascending index order. The second
    /// map is `None` when both PIDs share a shard (use the first one for both then).
    fn with_pair<R>(&self, a: &Pid, b: &Pid, f: impl FnOnce(&mut Map, Option<&mut Map>) -> R) -> R {
        let (ia, ib) = (shard_of(a), shard_of(b));
        if ia == ib {
            return f(&mut self.shard(ia), None);
        }
        let (lo, hi) = if ia < ib { (ia, ib) } else { (ib, ia) };
        let mut g_lo = self.shard(lo);
        let mut g_hi = self.shard(hi);
        if ia < ib {
            f(&mut g_lo, Some(&mut g_hi))
        } else {
            f(&mut g_hi, Some(&mut g_lo))
        }
    }

    /// Explicitly register a PID that is not a runtime process (a function execution), so it
    /// can be monitored and linked until [`Graph::complete`] or [`Graph::remove`].
    ///
    /// # Errors
    /// `AlreadyExists` "pid already registered".
    pub fn register(&self, pid: &Pid) -> Result<(), Error> {
        let mut g = self.shard(shard_of(pid));
        let n = g.entry(pid.clone()).or_default();
        if n.registered {
            return Err(Error::new(Kind::ALREADY_EXISTS, "pid already registered")
                .with_detail("pid", pid.as_str()));
        }
        n.registered = true;
        Ok(())
    }

    /// `watcher` monitors `target`: when `target` exits, `watcher` gets an EXIT event.
    ///
    /// # Errors
    /// `Invalid` "cannot monitor self"; `Unavailable` "remote monitoring requires clustering";
    /// `NotFound` "pid not registered" (target dead or unknown; details `pid`, `operation`,
    /// `role`); `AlreadyExists` "already monitoring pid".
    pub fn monitor(&self, watcher: &Pid, target: &Pid) -> Result<(), Error> {
        if watcher == target {
            return Err(Error::invalid("cannot monitor self").with_detail("pid", target.as_str()));
        }
        if !self.is_local(target) {
            return Err(remote("monitor", target));
        }
        self.with_pair(target, watcher, |tm, wm| {
            if !self.live_in(tm, target) {
                return Err(not_registered(target, "monitor", "target"));
            }
            let t = tm.entry(target.clone()).or_default();
            if t.watchers.contains(watcher) {
                return Err(Error::new(Kind::ALREADY_EXISTS, "already monitoring pid")
                    .with_detail("pid", target.as_str()));
            }
            t.watchers.insert(watcher.clone());
            let wmap = match wm {
                Some(m) => m,
                None => tm,
            };
            wmap.entry(watcher.clone())
                .or_default()
                .watching
                .insert(target.clone());
            Ok(())
        })
    }

    /// Stop monitoring. Never fails (missing edges are fine).
    pub fn demonitor(&self, watcher: &Pid, target: &Pid) {
        self.with_pair(target, watcher, |tm, wm| {
            drop_edge(tm, target, |n| n.watchers.remove(watcher));
            drop_edge(wm.unwrap_or(tm), watcher, |n| n.watching.remove(target));
        });
    }

    /// Link `a` and `b` (bidirectional; idempotent).
    ///
    /// # Errors
    /// `Invalid` "cannot link to self"; `Unavailable` "remote linking requires clustering";
    /// `NotFound` "pid not registered" with `role` = `from` (a) or `to` (b).
    pub fn link(&self, a: &Pid, b: &Pid) -> Result<(), Error> {
        if a == b {
            return Err(Error::invalid("cannot link to self").with_detail("pid", a.as_str()));
        }
        if !self.is_local(b) {
            return Err(remote("link", b));
        }
        self.with_pair(a, b, |am, bm| {
            if !self.live_in(am, a) {
                return Err(not_registered(a, "link", "from"));
            }
            {
                let bmap: &mut Map = match bm {
                    Some(m) => m,
                    None => &mut *am,
                };
                if !self.live_in(bmap, b) {
                    return Err(not_registered(b, "link", "to"));
                }
                bmap.entry(b.clone()).or_default().links.insert(a.clone());
            }
            am.entry(a.clone()).or_default().links.insert(b.clone());
            Ok(())
        })
    }

    /// Remove the link between `a` and `b`. Never fails.
    pub fn unlink(&self, a: &Pid, b: &Pid) {
        self.with_pair(a, b, |am, bm| {
            drop_edge(am, a, |n| n.links.remove(b));
            drop_edge(bm.unwrap_or(am), b, |n| n.links.remove(a));
        });
    }

    /// Set the `trap_links` option of `pid` (kept here so the exit path reads it under the
    /// same lock as the link set).
    pub fn set_trap_links(&self, pid: &Pid, on: bool) {
        let mut g = self.shard(shard_of(pid));
        if on {
            g.entry(pid.clone()).or_default().trap_links = true;
        } else {
            drop_edge(&mut g, pid, |n| std::mem::replace(&mut n.trap_links, false));
        }
    }

    /// The `trap_links` option of `pid` (default false).
    pub fn traps_links(&self, pid: &Pid) -> bool {
        self.shard(shard_of(pid))
            .get(pid)
            .is_some_and(|n| n.trap_links)
    }

    /// Peers linked to `pid`.
    pub fn links(&self, pid: &Pid) -> Vec<Pid> {
        self.edges(pid, |n| &n.links)
    }

    /// PIDs monitoring `pid`.
    pub fn watchers(&self, pid: &Pid) -> Vec<Pid> {
        self.edges(pid, |n| &n.watchers)
    }

    /// PIDs `pid` monitors.
    pub fn watching(&self, pid: &Pid) -> Vec<Pid> {
        self.edges(pid, |n| &n.watching)
    }

    fn edges(&self, pid: &Pid, f: impl Fn(&Node) -> &FnvHashSet<Pid>) -> Vec<Pid> {
        let mut v: Vec<Pid> = self
            .shard(shard_of(pid))
            .get(pid)
            .map(|n| f(n).iter().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        v
    }

    /// `pid` exited with `result`: detach it, then send EXIT to its watchers (always) and
    /// LINK_DOWN to its linked peers (only when `result` is an error).
    pub fn complete(&self, pid: &Pid, result: &Result<Value, Error>) -> Notified {
        let Some(node) = self.detach(pid) else {
            return Notified::default();
        };
        let mut out = Notified::default();
        for w in &node.watchers {
            (self.send)(exit_package(pid, w, result));
            out.exits += 1;
        }
        if result.is_err() {
            for l in &node.links {
                (self.send)(link_down_package(pid, l, result));
                out.link_downs += 1;
            }
        }
        out
    }

    /// Remove `pid` silently (no notifications): temporary watcher PIDs.
    pub fn remove(&self, pid: &Pid) {
        let _ = self.detach(pid);
    }

    /// Take `pid`'s node out and clean every back-reference (one shard lock at a time).
    fn detach(&self, pid: &Pid) -> Option<Node> {
        let node = self.shard(shard_of(pid)).remove(pid)?;
        for w in &node.watchers {
            drop_edge(&mut self.shard(shard_of(w)), w, |n| n.watching.remove(pid));
        }
        for l in &node.links {
            drop_edge(&mut self.shard(shard_of(l)), l, |n| n.links.remove(pid));
        }
        for t in &node.watching {
            drop_edge(&mut self.shard(shard_of(t)), t, |n| n.watchers.remove(pid));
        }
        Some(node)
    }

    /// Number of PIDs with a node (0 when nothing is monitored, linked or registered).
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.shard(i).len()).sum()
    }

    /// True when the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total number of directed edge entries (each monitor counts twice, each link twice).
    pub fn edge_count(&self) -> usize {
        (0..SHARDS)
            .map(|i| {
                self.shard(i)
                    .values()
                    .map(|n| n.watchers.len() + n.links.len() + n.watching.len())
                    .sum::<usize>()
            })
            .sum()
    }
}

/// Apply `f` to `pid`'s node if present, freeing the node when it became empty.
#[inline]
fn drop_edge<R>(map: &mut Map, pid: &Pid, f: impl FnOnce(&mut Node) -> R) {
    if let Some(n) = map.get_mut(pid) {
        f(n);
        if n.is_empty() {
            map.remove(pid);
        }
    }
}

#[cold]
fn not_registered(pid: &Pid, op: &str, role: &str) -> Error {
    Error::not_found("pid not registered")
        .with_detail("pid", pid.as_str())
        .with_detail("operation", op)
        .with_detail("role", role)
}

#[cold]
fn remote(op: &str, pid: &Pid) -> Error {
    Error::new(
        Kind::UNAVAILABLE,
        format!("remote {op} requires clustering"),
    )
    .with_retryable(Some(false))
    .with_detail("pid", pid.as_str())
}
