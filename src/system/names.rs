//! The process name registry, LOCAL scope (spec `runtime-internals.md` §4.6, `lua-api.md` §3.7
//! `process.registry.*`).
//!
//! # Semantics
//!
//! * `register(name, pid)`: same name + same pid → ok (idempotent); taken by another pid →
//!   `AlreadyExists` "name already registered" with the holder in detail `pid`; a pid that is
//!   not a live process → `NotFound` "process not found". A pid may hold several names.
//! * `unregister(name)` → whether it was registered.
//! * `lookup(name)` → the pid or `NotFound` "name not registered".
//! * `remove(pid)` drops every name of `pid`; the system lifecycle calls it when the process
//!   exits, so **names never outlive their process**.
//! * [`Names::resolve`] is the destination rule shared by every API that takes a destination:
//!   **PID first, then names**; failure → `NotFound`
//!   `"could not resolve '<dest>' as PID or registered name"`.
//! * Scopes other than LOCAL (CONSISTENT, EVENTUAL, STRONG) need a cluster; they fail with
//!   `Unavailable` `"registry scope <S> requires clustering"` (decision 0062).
//!
//! # Data structure and invariants
//!
//! Two sharded maps: `name → pid` (sharded by the name's FNV hash) and `pid → names` (sharded
//! by the PID's uniq number). Lock order is always **pid shard, then name shard**, so
//! `register` and `remove` never deadlock. `register` checks that the pid is alive *while
//! holding the pid shard*; the runtime removes an exiting process from its table *before* the
//! lifecycle calls `remove(pid)` (which takes the same pid shard), so either `register` sees
//! the process dead and fails, or its name is in the reverse index before `remove` runs and is
//! dropped by it. Hence no name can point to a dead process after its exit hook ran.
//!
//! Exit cost when a process has no names: one relaxed load of the global name count (skipped
//! entirely while no name exists), else one shard lock and a hash miss.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use crossbeam_utils::CachePadded;
use fnv::{FnvBuildHasher, FnvHashMap};
use wippy_rt::{Error, Handle, Kind, Pid, Value};

/// Number of shards of each map: a power of two well above the worker count.
const SHARDS: usize = 32;

/// Registry scopes (`process.registry.LOCAL` …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// This node only (the only scope without clustering).
    Local,
    /// Cluster-wide, consistent.
    Consistent,
    /// Cluster-wide, eventually consistent.
    Eventual,
    /// Cluster-wide, strongly consistent.
    Strong,
}

impl Scope {
    /// From the Lua constant (`LOCAL=0, CONSISTENT=1, EVENTUAL=2, STRONG=3`).
    ///
    /// # Errors
    /// `Invalid` `"invalid registry scope: <n>"`.
    pub fn from_code(n: i64) -> Result<Scope, Error> {
        Ok(match n {
            0 => Scope::Local,
            1 => Scope::Consistent,
            2 => Scope::Eventual,
            3 => Scope::Strong,
            _ => return Err(Error::invalid(format!("invalid registry scope: {n}"))),
        })
    }

    /// The constant's name.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Local => "LOCAL",
            Scope::Consistent => "CONSISTENT",
            Scope::Eventual => "EVENTUAL",
            Scope::Strong => "STRONG",
        }
    }

    /// Ok for LOCAL; the "requires clustering" error otherwise.
    ///
    /// # Errors
    /// `Unavailable` (non-retryable) `"registry scope <S> requires clustering"`.
    pub fn require_local(self) -> Result<(), Error> {
        if self == Scope::Local {
            return Ok(());
        }
        Err(requires_clustering(self))
    }
}

#[cold]
fn requires_clustering(s: Scope) -> Error {
    Error::new(
        Kind::UNAVAILABLE,
        format!("registry scope {} requires clustering", s.name()),
    )
    .with_retryable(Some(false))
    .with_detail("scope", s.name())
}

type NameShard = CachePadded<RwLock<FnvHashMap<Arc<str>, Pid>>>;
type PidShard = CachePadded<Mutex<FnvHashMap<Pid, Vec<Arc<str>>>>>;

/// The LOCAL name registry. See the module docs.
pub struct Names {
    by_name: Box<[NameShard]>,
    by_pid: Box<[PidShard]>,
    count: AtomicUsize,
    alive: Box<dyn Fn(&Pid) -> bool + Send + Sync>,
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names").field("len", &self.len()).finish()
    }
}

impl Names {
    /// A registry whose liveness check is the runtime's process table.
    pub fn new(handle: Handle) -> Names {
        Names::with_liveness(move |p| handle.is_alive(p))
    }

    /// A registry with a custom liveness check (tests, non-process PIDs).
    pub fn with_liveness(alive: impl Fn(&Pid) -> bool + Send + Sync + 'static) -> Names {
        Names {
            by_name: (0..SHARDS)
                .map(|_| CachePadded::new(RwLock::new(FnvHashMap::default())))
                .collect(),
            by_pid: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::new(FnvHashMap::default())))
                .collect(),
            count: AtomicUsize::new(0),
            alive: Box::new(alive),
        }
    }

    #[inline]
    fn name_shard(&self, name: &str) -> &RwLock<FnvHashMap<Arc<str>, Pid>> {
        &self.by_name[(FnvBuildHasher::default().hash_one(name) as usize) & (SHARDS - 1)]
    }

    #[inline]
    fn pid_shard(&self, pid: &Pid) -> &Mutex<FnvHashMap<Pid, Vec<Arc<str>>>> {
        let k = match pid.uniq_num() {
            Some(n) => n as usize,
            None => FnvBuildHasher::default().hash_one(pid) as usize,
        };
        &self.by_pid[k & (SHARDS - 1)]
    }

    /// Register `name` for `pid` (LOCAL scope).
    ///
    /// # Errors
    /// `Invalid` "name cannot be empty"; `AlreadyExists` "name already registered" (detail
    /// `pid` = the holder); `NotFound` "process not found" when `pid` is not alive.
    pub fn register(&self, name: &str, pid: &Pid) -> Result<(), Error> {
        if name.is_empty() {
            return Err(Error::invalid("name cannot be empty"));
        }
        let mut rev = lock(self.pid_shard(pid));
        if !(self.alive)(pid) {
            return Err(Error::not_found("process not found").with_detail("pid", pid.as_str()));
        }
        let name: Arc<str> = {
            let mut g = write(self.name_shard(name));
            let mut stale = false;
            if let Some(holder) = g.get(name) {
                if holder == pid {
                    return Ok(());
                }
                if (self.alive)(holder) {
                    return Err(already_registered(name, holder));
                }
                // The holder died without its exit hook running (its spawn was aborted by a
                // later lifecycle hook): take the name over. Its reverse entry stays behind
                // harmlessly (`remove` re-checks the holder before deleting).
                stale = true;
            }
            let key: Arc<str> = Arc::from(name);
            g.insert(key.clone(), pid.clone());
            if stale {
                self.count.fetch_sub(1, Relaxed);
            }
            key
        };
        rev.entry(pid.clone()).or_default().push(name);
        self.count.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Register in `scope` (non-LOCAL scopes need clustering).
    ///
    /// # Errors
    /// As [`Names::register`], plus [`Scope::require_local`].
    pub fn register_in(&self, scope: Scope, name: &str, pid: &Pid) -> Result<(), Error> {
        scope.require_local()?;
        self.register(name, pid)
    }

    /// The pid holding `name`.
    #[inline]
    pub fn get(&self, name: &str) -> Option<Pid> {
        if self.count.load(Relaxed) == 0 {
            return None;
        }
        read(self.name_shard(name)).get(name).cloned()
    }

    /// The pid holding `name`.
    ///
    /// # Errors
    /// `NotFound` "name not registered" (detail `name`).
    pub fn lookup(&self, name: &str) -> Result<Pid, Error> {
        self.get(name).ok_or_else(|| not_registered(name))
    }

    /// Remove `name`; true when it was registered.
    pub fn unregister(&self, name: &str) -> bool {
        let Some(holder) = self.get(name) else {
            return false;
        };
        let mut rev = lock(self.pid_shard(&holder));
        let removed = {
            let mut g = write(self.name_shard(name));
            match g.get(name) {
                Some(p) if *p == holder => g.remove(name).is_some(),
                // Re-registered by someone else between the read and the locks: retry.
                Some(_) => {
                    drop(g);
                    drop(rev);
                    return self.unregister(name);
                }
                None => false,
            }
        };
        if removed {
            if let Some(list) = rev.get_mut(&holder) {
                list.retain(|n| &**n != name);
                if list.is_empty() {
                    rev.remove(&holder);
                }
            }
            self.count.fetch_sub(1, Relaxed);
        }
        removed
    }

    /// Remove `name` in `scope`.
    ///
    /// # Errors
    /// [`Scope::require_local`].
    pub fn unregister_in(&self, scope: Scope, name: &str) -> Result<bool, Error> {
        scope.require_local()?;
        Ok(self.unregister(name))
    }

    /// Drop every name of `pid` (process exit). Returns how many were dropped.
    #[inline]
    pub fn remove(&self, pid: &Pid) -> usize {
        if self.count.load(Relaxed) == 0 {
            return 0;
        }
        let mut rev = lock(self.pid_shard(pid));
        let Some(list) = rev.remove(pid) else {
            return 0;
        };
        let mut n = 0;
        for name in &list {
            let mut g = write(self.name_shard(name));
            if g.get(&**name).is_some_and(|p| p == pid) {
                g.remove(&**name);
                n += 1;
            }
        }
        self.count.fetch_sub(n, Relaxed);
        n
    }

    /// The names held by `pid` (registration order).
    pub fn names_of(&self, pid: &Pid) -> Vec<String> {
        lock(self.pid_shard(pid))
            .get(pid)
            .map(|l| l.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default()
    }

    /// Number of registered names.
    pub fn len(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// True when no name is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolve a destination: a PID string first, then a registered name.
    ///
    /// # Errors
    /// `NotFound` `"could not resolve '<dest>' as PID or registered name"` (detail `destination`).
    pub fn resolve(&self, dest: &str) -> Result<Pid, Error> {
        if dest.starts_with('{')
            && let Ok(p) = Pid::parse(dest)
        {
            return Ok(p);
        }
        self.get(dest).ok_or_else(|| unresolvable(dest))
    }

    /// Resolve a destination given as a [`Value`] (string PID or name).
    ///
    /// # Errors
    /// As [`Names::resolve`]; `Invalid` "destination must be a string" for other values.
    pub fn resolve_value(&self, dest: &Value) -> Result<Pid, Error> {
        match dest.as_str() {
            Some(s) => self.resolve(s),
            None => Err(Error::invalid("destination must be a string")),
        }
    }
}

/// The pid carried by a "name already registered" error (spawn-or-signal: the host routes the
/// spawn's messages to the existing holder instead).
pub fn existing_holder(err: &Error) -> Option<Pid> {
    if err.message() != NAME_TAKEN {
        return None;
    }
    err.detail("pid")
        .and_then(Value::as_str)
        .and_then(|s| Pid::parse(s).ok())
}

const NAME_TAKEN: &str = "name already registered";

#[cold]
fn already_registered(name: &str, holder: &Pid) -> Error {
    Error::new(Kind::ALREADY_EXISTS, NAME_TAKEN)
        .with_detail("name", name)
        .with_detail("pid", holder.as_str())
}

#[cold]
fn not_registered(name: &str) -> Error {
    Error::not_found("name not registered").with_detail("name", name)
}

/// The destination-resolution error (spec §4.6).
#[cold]
pub fn unresolvable(dest: &str) -> Error {
    Error::not_found(format!(
        "could not resolve '{dest}' as PID or registered name"
    ))
    .with_detail("destination", dest)
}

#[inline]
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
#[inline]
fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
#[inline]
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn names() -> (Names, Arc<Mutex<HashSet<Pid>>>) {
        let live = Arc::new(Mutex::new(HashSet::new()));
        let l = live.clone();
        (
            Names::with_liveness(move |p| l.lock().unwrap().contains(p)),
            live,
        )
    }

    fn pid(n: u64) -> Pid {
        Pid::new("", "app:h", &wippy_rt::pid::format_uniq(n))
    }

    #[test]
    fn register_lookup_conflict_remove() {
        let (n, live) = names();
        let (a, b) = (pid(1), pid(2));
        live.lock().unwrap().extend([a.clone(), b.clone()]);
        n.register("svc", &a).unwrap();
        n.register("svc", &a).unwrap();
        n.register("other", &a).unwrap();
        let e = n.register("svc", &b).unwrap_err();
        assert_eq!(e.message(), "name already registered");
        assert_eq!(existing_holder(&e), Some(a.clone()));
        assert_eq!(n.lookup("svc").unwrap(), a);
        assert_eq!(n.names_of(&a), vec!["svc", "other"]);
        assert_eq!(n.remove(&a), 2);
        assert!(n.is_empty());
        assert_eq!(
            n.lookup("svc").unwrap_err().message(),
            "name not registered"
        );
        n.register("svc", &b).unwrap();
        assert!(n.unregister("svc"));
        assert!(!n.unregister("svc"));
        assert!(n.is_empty());
    }

    #[test]
    fn dead_pid_rejected_and_resolution_order() {
        let (n, live) = names();
        let a = pid(7);
        assert_eq!(
            n.register("x", &a).unwrap_err().message(),
            "process not found"
        );
        live.lock().unwrap().insert(a.clone());
        n.register("x", &a).unwrap();
        assert_eq!(n.resolve("x").unwrap(), a);
        assert_eq!(n.resolve(a.as_str()).unwrap(), a);
        let e = n.resolve("nope").unwrap_err();
        assert_eq!(e.kind(), &Kind::NOT_FOUND);
        assert_eq!(
            e.message(),
            "could not resolve 'nope' as PID or registered name"
        );
        assert_eq!(
            Scope::from_code(2)
                .unwrap()
                .require_local()
                .unwrap_err()
                .message(),
            "registry scope EVENTUAL requires clustering"
        );
    }
}
