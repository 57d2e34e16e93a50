//! The live-process table: PID → cell, sharded by the numeric uniq id.
//!
//! `Handle::send` to a local process starts here, so lookups must be cheap and must not
//! serialise the workers: 64 cache-padded shards, each a mutex around an FNV map keyed by the
//! PID's numeric uniq id (PIDs from the runtime's generator are unique per runtime). A lookup
//! locks one shard for a hash probe and an `Arc` clone. The caller checks the full PID against
//! `cell.pid` (node and host must match too).

use std::sync::Arc;

use crossbeam_utils::CachePadded;
use fnv::FnvHashMap;

use crate::pid::Pid;
use crate::process::cell::Cell;
use crate::sync::{AtomicUsize, Mutex, Ordering::Relaxed, lock};

/// Number of shards: a power of two well above the worker count so two workers rarely meet on
/// one lock; 64 × 128 B of padding is negligible.
const SHARDS: usize = 64;

type Shard = CachePadded<Mutex<FnvHashMap<u64, Arc<Cell>>>>;

/// See the module docs.
pub(crate) struct ProcessTable {
    shards: Box<[Shard]>,
    len: AtomicUsize,
}

impl ProcessTable {
    pub(crate) fn new() -> ProcessTable {
        ProcessTable {
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::new(FnvHashMap::default())))
                .collect(),
            len: AtomicUsize::new(0),
        }
    }

    #[inline]
    fn shard(&self, key: u64) -> &Mutex<FnvHashMap<u64, Arc<Cell>>> {
        &self.shards[(key as usize) & (SHARDS - 1)]
    }

    /// Insert; false when the key is taken.
    pub(crate) fn insert(&self, key: u64, cell: Arc<Cell>) -> bool {
        let mut g = lock(self.shard(key));
        if g.contains_key(&key) {
            return false;
        }
        g.insert(key, cell);
        self.len.fetch_add(1, Relaxed);
        true
    }

    /// The cell for `pid` if it is live on this runtime. The caller has checked that `pid` is
    /// local; its node part is not compared (`{host|id}` and `{<this node>@host|id}` name the
    /// same process, as in the original's router).
    #[inline]
    pub(crate) fn get(&self, pid: &Pid) -> Option<Arc<Cell>> {
        let key = pid.uniq_num()?;
        let cell = lock(self.shard(key)).get(&key).cloned()?;
        same_local_pid(&cell.pid, pid).then_some(cell)
    }

    /// Remove `cell` (only if the entry is that very cell).
    pub(crate) fn remove(&self, key: u64, cell: &Arc<Cell>) -> bool {
        let mut g = lock(self.shard(key));
        match g.get(&key) {
            Some(c) if Arc::ptr_eq(c, cell) => {
                g.remove(&key);
                self.len.fetch_sub(1, Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Number of live processes.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// A snapshot of all live cells.
    pub(crate) fn snapshot(&self) -> Vec<Arc<Cell>> {
        let mut out = Vec::with_capacity(self.len());
        for s in self.shards.iter() {
            out.extend(lock(s).values().cloned());
        }
        out
    }
}

/// Host and uniq equality (node ignored: both are local).
#[inline]
pub(crate) fn same_local_pid(a: &Pid, b: &Pid) -> bool {
    a.as_str().as_ptr() == b.as_str().as_ptr() || (a.uniq() == b.uniq() && a.host() == b.host())
}
