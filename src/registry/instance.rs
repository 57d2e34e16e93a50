//! The registry: versioned state + handlers + history + finder (spec §9.2, §9.6).
//!
//! Invariants:
//! * the current version is an immutable `(Arc<State>, version id)` pair swapped under a
//!   short write lock; readers (`get`, `find`, `snapshot`) never wait for an apply;
//! * every mutation (`apply`, `apply_version`, `load_state`) holds the apply mutex, so
//!   transitions are strictly sequential;
//! * order inside `apply`: transition through the handlers → history `save` (atomic per
//!   version) → swap state. A failed save rolls the handlers back, so the in-memory state,
//!   the handlers and history agree after every call, successful or not;
//! * version ids come from a counter seeded with the largest id in history, never reused
//!   (the original seeded it with the head and could overwrite a branch after a rollback).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use wippy_rt::{Error, Value};

use super::changeset::{ChangeSet, Operation};
use super::delta::{build_delta, sort_changeset};
use super::deps::DepResolver;
use super::entry::{Entry, Id};
use super::events::{EventSink, NullSink, SYSTEM};
use super::finder::{DEFAULT_QUERY_CACHE, DEFAULT_REGEX_CACHE, Finder, Query};
use super::handlers::Handlers;
use super::history::{History, MemoryHistory, Step, VersionTree};
use super::squash::squash;
use super::state::State;
use super::transition::{DEFAULT_INTERNAL_KINDS, Runner};
use super::watch::{WatchEvent, Watchers};

/// Default `registry.event_wait_timeout`.
pub const DEFAULT_EVENT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Construction options.
pub struct RegistryOptions {
    /// History backend (default: memory).
    pub history: Box<dyn History>,
    /// How long to wait for a listener's answer.
    pub event_wait_timeout: Duration,
    /// Kinds applied without events.
    pub internal_kinds: Vec<String>,
    /// Finder result-cache size.
    pub query_cache_size: usize,
    /// Finder regex-cache size.
    pub regex_cache_size: usize,
    /// Dependency resolver (default: core patterns).
    pub resolver: Arc<DepResolver>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            history: Box::new(MemoryHistory::new()),
            event_wait_timeout: DEFAULT_EVENT_WAIT_TIMEOUT,
            internal_kinds: DEFAULT_INTERNAL_KINDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            query_cache_size: DEFAULT_QUERY_CACHE,
            regex_cache_size: DEFAULT_REGEX_CACHE,
            resolver: Arc::new(DepResolver::with_core_patterns()),
        }
    }
}

/// A version handle (`Version` in Lua).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// The id (0 = root).
    pub id: u64,
    /// The parent version (`None` for the root).
    pub parent: Option<u64>,
}

/// A read-only view of one version.
#[derive(Clone, Debug)]
pub struct Snapshot {
    state: Arc<State>,
    version: u64,
}

impl Snapshot {
    /// The version id this snapshot shows.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// The state.
    pub fn state(&self) -> &State {
        &self.state
    }
    /// One entry.
    pub fn get(&self, id: &Id) -> Option<Arc<Entry>> {
        self.state.get(id).cloned()
    }
    /// All entries in order.
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        self.state.to_vec()
    }
    /// Entries of one namespace.
    pub fn namespace(&self, ns: &str) -> Vec<Arc<Entry>> {
        self.state.namespace(ns).cloned().collect()
    }
    /// Evaluate a query against this snapshot (uncached).
    pub fn find(&self, q: &Query) -> Vec<Arc<Entry>> {
        Finder::find_uncached(&self.state, q)
    }
}

struct Inner {
    apply_lock: Mutex<()>,
    head: RwLock<Snapshot>,
    tree: RwLock<VersionTree>,
    next_version: AtomicU64,
    history: Box<dyn History>,
    handlers: Arc<Handlers>,
    resolver: Arc<DepResolver>,
    sink: RwLock<Arc<dyn EventSink>>,
    finder: Finder,
    watchers: Watchers,
    timeout: Duration,
    internal_kinds: Vec<String>,
    tx_seq: AtomicU64,
    warned_kinds: Mutex<HashSet<String>>,
}

/// The registry. Cheap to clone (shared handle).
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = self.snapshot();
        f.debug_struct("Registry")
            .field("version", &h.version)
            .field("entries", &h.state.len())
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(RegistryOptions::default()).expect("memory history cannot fail")
    }
}

impl Registry {
    /// A registry over the given history. The current version is the history's head, but the
    /// state starts **empty**: call [`Registry::load_state`] at boot to replay it.
    pub fn new(opts: RegistryOptions) -> Result<Registry, Error> {
        let tree = VersionTree::from_pairs(opts.history.versions()?);
        let head = opts.history.head()?;
        let next = tree.max() + 1;
        Ok(Registry {
            inner: Arc::new(Inner {
                apply_lock: Mutex::new(()),
                head: RwLock::new(Snapshot {
                    state: Arc::new(State::new()),
                    version: head,
                }),
                tree: RwLock::new(tree),
                next_version: AtomicU64::new(next),
                history: opts.history,
                handlers: Arc::new(Handlers::new()),
                resolver: opts.resolver,
                sink: RwLock::new(Arc::new(NullSink)),
                finder: Finder::new(opts.query_cache_size, opts.regex_cache_size),
                watchers: Watchers::default(),
                timeout: opts.event_wait_timeout,
                internal_kinds: opts.internal_kinds,
                tx_seq: AtomicU64::new(0),
                warned_kinds: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The handler table (register listeners/observers/participants here).
    pub fn handlers(&self) -> &Arc<Handlers> {
        &self.inner.handlers
    }

    /// The dependency resolver (register extraction patterns here).
    pub fn resolver(&self) -> &Arc<DepResolver> {
        &self.inner.resolver
    }

    /// Plug in the event bus.
    pub fn set_event_sink(&self, sink: Arc<dyn EventSink>) {
        *self.inner.sink.write().unwrap_or_else(|e| e.into_inner()) = sink;
    }

    fn sink(&self) -> Arc<dyn EventSink> {
        self.inner
            .sink
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.inner
            .head
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One entry of the current version.
    pub fn get(&self, id: &Id) -> Option<Arc<Entry>> {
        self.snapshot().get(id)
    }

    /// Compile a criteria bag (see [`super::finder`]).
    pub fn query(&self, criteria: &Value) -> Query {
        self.inner.finder.compile_value(criteria)
    }

    /// Run a query against the current version (cached per version).
    pub fn find(&self, q: &Query) -> Arc<Vec<Arc<Entry>>> {
        let s = self.snapshot();
        self.inner.finder.find(&s.state, s.version, q)
    }

    /// Watch one entry id for committed changes.
    pub fn watch(&self, id: Id) -> crossbeam_channel::Receiver<WatchEvent> {
        self.inner.watchers.watch(id)
    }

    /// The current version.
    pub fn current_version(&self) -> Version {
        let v = self.snapshot().version;
        Version {
            id: v,
            parent: self.tree().parent(v),
        }
    }

    fn tree(&self) -> std::sync::RwLockReadGuard<'_, VersionTree> {
        self.inner.tree.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Every known version, ascending.
    pub fn versions(&self) -> Vec<Version> {
        self.tree()
            .iter()
            .map(|(id, parent)| Version { id, parent })
            .collect()
    }

    /// One version, if known.
    pub fn version(&self, id: u64) -> Option<Version> {
        let t = self.tree();
        t.contains(id).then(|| Version {
            id,
            parent: t.parent(id),
        })
    }

    /// The most recent child of a version (`Version:next()`).
    pub fn next_version_of(&self, id: u64) -> Option<Version> {
        let t = self.tree();
        t.next(id).map(|c| Version {
            id: c,
            parent: Some(id),
        })
    }

    /// The changeset recorded for a version (None when unknown or history disabled).
    pub fn changeset(&self, version: u64) -> Result<Option<ChangeSet>, Error> {
        self.inner.history.changeset(version)
    }

    fn runner<'a>(&'a self, sink: &'a dyn EventSink) -> Runner<'a> {
        Runner {
            handlers: &self.inner.handlers,
            sink,
            resolver: &self.inner.resolver,
            internal_kinds: &self.inner.internal_kinds,
            timeout: self.inner.timeout,
            tx_seq: &self.inner.tx_seq,
            warned_kinds: &self.inner.warned_kinds,
        }
    }

    fn install(&self, state: State, version: u64, applied: &[Operation]) {
        *self.inner.head.write().unwrap_or_else(|e| e.into_inner()) = Snapshot {
            state: Arc::new(state),
            version,
        };
        self.inner.finder.invalidate();
        self.inner.watchers.notify(version, applied);
    }

    /// Build a dependency-sorted delta between two entry lists (`registry.build_delta`).
    pub fn build_delta(&self, from: &[Arc<Entry>], to: &[Arc<Entry>]) -> ChangeSet {
        let from = State::from_entries(from.iter().cloned());
        let to = State::from_entries(to.iter().cloned());
        build_delta(&from, &to, &self.inner.resolver)
    }

    /// Apply a changeset: dependency-sort it, run it through the handlers (all-or-nothing),
    /// record a new version and make it current.
    pub fn apply(&self, changes: ChangeSet) -> Result<Version, Error> {
        if changes.is_empty() {
            return Err(Error::invalid("no changes to apply"));
        }
        let _g = self
            .inner
            .apply_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let head = self.snapshot();
        let sorted = sort_changeset(&head.state, changes, &self.inner.resolver);
        let sink = self.sink();
        let runner = self.runner(&*sink);
        let out = runner.transition(&head.state, sorted.ops)?;
        let version = self.inner.next_version.fetch_add(1, Ordering::Relaxed);
        let record = ChangeSet { ops: out.applied };
        if let Err(e) = self.inner.history.save(version, head.version, &record) {
            let back = build_delta(&out.state, &head.state, &self.inner.resolver);
            if let Err(re) = runner.transition(&out.state, back.ops) {
                log::error!(target: "wippy::registry", "rollback after history failure failed: {re}");
            }
            return Err(e.wrap("registry history"));
        }
        self.inner
            .tree
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(version, head.version);
        self.install(out.state, version, &record.ops);
        self.publish_version(version, head.version, &*sink);
        Ok(Version {
            id: version,
            parent: Some(head.version),
        })
    }

    fn publish_version(&self, version: u64, previous: u64, sink: &dyn EventSink) {
        if sink.interested(SYSTEM, "registry.version") {
            sink.publish(
                SYSTEM,
                "registry.version",
                &version.to_string(),
                Value::Map(vec![
                    (Value::str("version"), Value::Int(version as i64)),
                    (Value::str("previous"), Value::Int(previous as i64)),
                ]),
            );
        }
    }

    /// The net changeset leading from the current state to `target` (squash of the path).
    fn path_changes(&self, from_state: &State, from: u64, target: u64) -> Result<ChangeSet, Error> {
        if !self.inner.history.is_enabled() && from != target {
            return Err(Error::unavailable("registry history is disabled"));
        }
        let steps = self.tree().path(from, target)?;
        let mut sets = Vec::with_capacity(steps.len());
        for step in steps {
            let (v, back) = match step {
                Step::Back(v) => (v, true),
                Step::Forward(v) => (v, false),
            };
            let cs =
                self.inner.history.changeset(v)?.ok_or_else(|| {
                    Error::not_found(format!("changeset for version {v} not found"))
                })?;
            sets.push(if back { cs.reverse() } else { cs });
        }
        Ok(squash(sets.iter(), from_state, &self.inner.resolver))
    }

    /// Move the registry to another version (rollback or roll forward) through the handlers,
    /// without creating a version; the history head follows.
    pub fn apply_version(&self, target: u64) -> Result<Version, Error> {
        let _g = self
            .inner
            .apply_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let head = self.snapshot();
        if target == head.version {
            return Ok(Version {
                id: target,
                parent: self.tree().parent(target),
            });
        }
        let net = self.path_changes(&head.state, head.version, target)?;
        let sink = self.sink();
        let out = self.runner(&*sink).transition(&head.state, net.ops)?;
        self.inner.history.set_head(target)?;
        self.install(out.state, target, &out.applied);
        self.publish_version(target, head.version, &*sink);
        Ok(Version {
            id: target,
            parent: self.tree().parent(target),
        })
    }

    /// The state at another version, reconstructed without any handler involvement.
    pub fn snapshot_at(&self, version: u64) -> Result<Snapshot, Error> {
        let head = self.snapshot();
        if version == head.version {
            return Ok(head);
        }
        let net = self.path_changes(&head.state, head.version, version)?;
        let mut state = (*head.state).clone();
        state.apply_lenient(&net.ops);
        Ok(Snapshot {
            state: Arc::new(state),
            version,
        })
    }

    /// Boot: start from the file `baseline`, replay the history changesets along the path
    /// root → head directly (no events, no new versions), then transition from the current
    /// state to the result through the handlers (listeners see the creates, dependency
    /// first). The current version becomes the history head.
    pub fn load_state(&self, baseline: Vec<Entry>) -> Result<Version, Error> {
        let _g = self
            .inner
            .apply_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let head_v = self.inner.history.head()?;
        let mut target = State::from_entries(baseline.into_iter().map(Arc::new));
        let chain: Vec<u64> = {
            let t = self.tree();
            if !t.contains(head_v) {
                return Err(Error::internal(format!(
                    "registry history head {head_v} is not a known version"
                )));
            }
            t.ancestry(head_v)
                .into_iter()
                .rev()
                .filter(|&v| v != 0)
                .collect()
        };
        for v in chain {
            let cs =
                self.inner.history.changeset(v)?.ok_or_else(|| {
                    Error::not_found(format!("changeset for version {v} not found"))
                })?;
            target.apply_lenient(&cs.ops);
        }
        let head = self.snapshot();
        let delta = build_delta(&head.state, &target, &self.inner.resolver);
        let sink = self.sink();
        let out = self.runner(&*sink).transition(&head.state, delta.ops)?;
        self.install(out.state, head_v, &out.applied);
        Ok(Version {
            id: head_v,
            parent: self.tree().parent(head_v),
        })
    }
}
