//! Native watchers: PIDs whose packages are handed to Rust closures.
//!
//! The supervisor needs a PID that monitors each service's child process, cancel-with-deadline
//! needs one that receives a timer and the victim's EXIT, and Rust code in general (tests, the
//! CLI) wants to watch processes without being one. The original used channel-attached PIDs
//! on the `node:control` mailbox, one goroutine per waiter. Here a watcher costs one map entry:
//!
//! * [`WatchHost`] is a relay [`Receiver`] registered on the node under [`WATCH_HOST`]. Its
//!   PIDs come from the runtime's PID generator, so they are unique among all processes.
//! * [`WatchHost::watch`] allocates a PID and stores the closure in a sharded map keyed by the
//!   uniq number; the returned [`Watch`] unregisters it when dropped.
//! * Delivery looks the closure up under the shard lock, clones its `Arc`, releases the lock
//!   and calls it **on the sender's thread** (a worker finishing a process, the reactor firing
//!   a timer, …). Closures must therefore be short and must never block; they may drop their
//!   own [`Watch`] or create new ones (no lock is held during the call).
//! * A package for an unknown watcher fails with `NotFound` "process not found", like a send to
//!   a dead process.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

use crossbeam_utils::CachePadded;
use fnv::FnvHashMap;
use wippy_rt::relay::Receiver;
use wippy_rt::{Error, Handle, Package, Pid};

/// Host id of the watcher PIDs (`{node:watch|0x…}`).
pub const WATCH_HOST: &str = "node:watch";

/// Shards of the closure map.
const SHARDS: usize = 16;

type Callback = Arc<dyn Fn(Package) + Send + Sync>;
type Shard = CachePadded<Mutex<FnvHashMap<u64, Callback>>>;

/// The receiver hosting watcher PIDs. See the module docs.
pub struct WatchHost {
    id: String,
    handle: Handle,
    shards: Box<[Shard]>,
    len: AtomicUsize,
}

impl std::fmt::Debug for WatchHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHost")
            .field("id", &self.id)
            .field("watchers", &self.len())
            .finish()
    }
}

impl WatchHost {
    /// Create the host and register it on the runtime's node under `id`.
    ///
    /// # Errors
    /// `AlreadyExists` "host already exists".
    pub fn install(handle: &Handle, id: &str) -> Result<Arc<WatchHost>, Error> {
        let host = Arc::new(WatchHost {
            id: id.to_string(),
            handle: handle.clone(),
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::new(FnvHashMap::default())))
                .collect(),
            len: AtomicUsize::new(0),
        });
        handle.register_receiver(id, Arc::new(Relay(Arc::downgrade(&host))))?;
        Ok(host)
    }

    fn shard(&self, n: u64) -> std::sync::MutexGuard<'_, FnvHashMap<u64, Callback>> {
        self.shards[(n as usize) & (SHARDS - 1)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Allocate a watcher PID delivering to `f` until the returned [`Watch`] is dropped.
    pub fn watch(self: &Arc<Self>, f: impl Fn(Package) + Send + Sync + 'static) -> Watch {
        let pid = self.handle.pidgen().generate(&self.id);
        let n = pid.uniq_num().expect("generated pids are numeric");
        self.shard(n).insert(n, Arc::new(f));
        self.len.fetch_add(1, Relaxed);
        Watch {
            pid,
            host: Arc::downgrade(self),
        }
    }

    /// True when `pid` is a live watcher of this host.
    pub fn contains(&self, pid: &Pid) -> bool {
        pid.host() == self.id
            && pid
                .uniq_num()
                .is_some_and(|n| self.shard(n).contains_key(&n))
    }

    /// Number of live watchers.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// True when no watcher is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn deliver(&self, pkg: Package) -> Result<(), Error> {
        let cb = pkg
            .to
            .uniq_num()
            .and_then(|n| self.shard(n).get(&n).cloned());
        match cb {
            Some(f) => {
                f(pkg);
                Ok(())
            }
            None => Err(Error::not_found("process not found").with_detail("pid", pkg.to.as_str())),
        }
    }

    fn unregister(&self, pid: &Pid) {
        if let Some(n) = pid.uniq_num()
            && self.shard(n).remove(&n).is_some()
        {
            self.len.fetch_sub(1, Relaxed);
        }
    }
}

/// The node-facing receiver (holds the host weakly so dropping the last `Arc<WatchHost>`
/// frees it even while registered).
struct Relay(Weak<WatchHost>);

impl Receiver for Relay {
    fn send(&self, pkg: Package) -> Result<(), Error> {
        match self.0.upgrade() {
            Some(h) => h.deliver(pkg),
            None => Err(Error::unavailable("watch host is gone")),
        }
    }
}

/// A registered watcher PID; dropping it unregisters the closure.
pub struct Watch {
    pid: Pid,
    host: Weak<WatchHost>,
}

impl Watch {
    /// The watcher's PID (use it as `from`, as a monitor, as a timer target).
    pub fn pid(&self) -> &Pid {
        &self.pid
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("pid", &self.pid).finish()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(h) = self.host.upgrade() {
            h.unregister(&self.pid);
        }
    }
}
