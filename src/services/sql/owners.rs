//! Resources owned by processes: released when the owning process ends.
//!
//! Database handles, transactions, prepared statements, store handles and open files are
//! acquired by a Lua process (or one function call, which is a process too) and must not
//! outlive it: an uncommitted transaction would hold the single SQLite connection forever, an
//! open file its descriptor. Lua finalizers cannot do this — states are recycled without a
//! collection, so `__gc` may run much later or never.
//!
//! # Design
//!
//! [`Owners`] maps a PID to the resources it acquired ([`Owned`]). One global runtime
//! [`Lifecycle`] hook ([`install`]) runs for every process exit and releases that PID's
//! resources. The hook costs one atomic load per exit while no process owns anything (the
//! common case for apps that never touch the data services); otherwise one lock of one of
//! [`SHARDS`] shards.
//!
//! Invariants: [`Owned::release`] is idempotent and may run on any thread (the exiting
//! process's worker, or the thread of an explicit `release()`); a resource released early
//! stays in its owner's list until the list is compacted (every time it doubles past
//! [`COMPACT_AT`]) or the owner exits, so a long-lived process that acquires and releases in a
//! loop keeps a bounded list.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use fnv::FnvHashMap;
use wippy_rt::app_context::Key;
use wippy_rt::{Error, Handle, Lifecycle, Pid, Value};

/// A resource released when its owner exits.
pub trait Owned: Send + Sync + 'static {
    /// Release (idempotent; any thread).
    fn release(&self);
    /// True once released.
    fn is_released(&self) -> bool;
}

/// Shards of the owner table (PIDs spread by hash; exits of unrelated processes rarely meet).
pub const SHARDS: usize = 16;
/// List length from which an owner's released resources are compacted away.
pub const COMPACT_AT: usize = 64;

type Shard = Mutex<FnvHashMap<Pid, Vec<Arc<dyn Owned>>>>;

/// See the module docs.
pub struct Owners {
    shards: Box<[Shard]>,
    owners: AtomicUsize,
}

/// App-context slot of the system's [`Owners`].
pub static OWNERS: Key<Owners> = Key::new("data.owners");

impl Default for Owners {
    fn default() -> Self {
        Owners {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(FnvHashMap::default()))
                .collect(),
            owners: AtomicUsize::new(0),
        }
    }
}

impl std::fmt::Debug for Owners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owners")
            .field("owners", &self.owners.load(Ordering::Relaxed))
            .field("live", &self.live())
            .finish()
    }
}

impl Owners {
    fn shard(&self, pid: &Pid) -> MutexGuard<'_, FnvHashMap<Pid, Vec<Arc<dyn Owned>>>> {
        use std::hash::{Hash, Hasher};
        let mut h = fnv::FnvHasher::default();
        pid.hash(&mut h);
        let i = (h.finish() as usize) % self.shards.len();
        // A panic while holding the lock leaves at worst a half-pushed Vec, still valid.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record that `pid` owns `res`.
    pub fn add(&self, pid: &Pid, res: Arc<dyn Owned>) {
        let mut g = self.shard(pid);
        let list = g.entry(pid.clone()).or_insert_with(|| {
            self.owners.fetch_add(1, Ordering::SeqCst);
            Vec::new()
        });
        list.push(res);
        let n = list.len();
        if n >= COMPACT_AT && n.is_power_of_two() {
            list.retain(|r| !r.is_released());
        }
    }

    /// Release everything `pid` owns (its exit).
    pub fn release_all(&self, pid: &Pid) {
        if self.owners.load(Ordering::SeqCst) == 0 {
            return;
        }
        let list = {
            let mut g = self.shard(pid);
            let l = g.remove(pid);
            if l.is_some() {
                self.owners.fetch_sub(1, Ordering::SeqCst);
            }
            l
        };
        for r in list.into_iter().flatten() {
            r.release();
        }
    }

    /// Resources not yet released, over all owners (introspection and tests).
    pub fn live(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .flatten()
                    .filter(|r| !r.is_released())
                    .count()
            })
            .sum()
    }

    /// Processes that own at least one (possibly released) resource.
    pub fn owner_count(&self) -> usize {
        self.owners.load(Ordering::SeqCst)
    }
}

struct Janitor(Arc<Owners>);

impl Lifecycle for Janitor {
    fn on_complete(&self, pid: &Pid, _result: &Result<Value, Error>) {
        self.0.release_all(pid);
    }
}

/// The owner table of the system behind `handle`, installing it (and its exit hook) on first
/// use. Call during the load phase (the app context is sealed afterwards).
pub fn install(handle: &Handle) -> Arc<Owners> {
    let cx = handle.app_context();
    if let Some(o) = cx.get(&OWNERS) {
        return o;
    }
    let o = Arc::new(Owners::default());
    cx.set_arc(&OWNERS, o.clone());
    handle.add_lifecycle(Arc::new(Janitor(o.clone())));
    o
}

/// The owner table of the system behind `handle`, if installed.
pub fn of(handle: &Handle) -> Option<Arc<Owners>> {
    handle.app_context().get(&OWNERS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    struct R(AtomicBool);
    impl Owned for R {
        fn release(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
        fn is_released(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn exit_releases_only_the_owners_resources() {
        let o = Owners::default();
        let a = Pid::new("", "h", "1");
        let b = Pid::new("", "h", "2");
        let ra = Arc::new(R(AtomicBool::new(false)));
        let rb = Arc::new(R(AtomicBool::new(false)));
        o.add(&a, ra.clone());
        o.add(&b, rb.clone());
        assert_eq!(o.live(), 2);
        o.release_all(&a);
        assert!(ra.is_released());
        assert!(!rb.is_released());
        assert_eq!(o.live(), 1);
        assert_eq!(o.owner_count(), 1);
        o.release_all(&b);
        assert_eq!(o.owner_count(), 0);
    }

    #[test]
    fn released_resources_are_compacted() {
        let o = Owners::default();
        let a = Pid::new("", "h", "1");
        for _ in 0..1000 {
            let r = Arc::new(R(AtomicBool::new(false)));
            o.add(&a, r.clone());
            r.release();
        }
        let n = o.shard(&a).get(&a).map(Vec::len).unwrap_or(0);
        assert!(n < 600, "list not compacted: {n}");
        assert_eq!(o.live(), 0);
    }
}
