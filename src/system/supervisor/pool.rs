//! An elastic thread pool for `Service::start` / `Service::stop` calls.
//!
//! Those calls may block (a host waiting for its workers, a server binding a socket, a Lua
//! chunk running its top level), so the supervisor's loop never runs them itself. Jobs go to
//! one unbounded channel; a job submitted while no thread is idle starts a new thread, up to
//! [`MAX_THREADS`]; a thread idle for [`IDLE_EXIT`] exits. Beyond the cap jobs queue (FIFO).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};

/// Upper bound on pool threads: enough for many slow starts in parallel (each blocked start
/// holds one), small enough to never exhaust the machine.
pub const MAX_THREADS: usize = 64;
/// Idle time after which a pool thread exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Shared {
    threads: AtomicUsize,
    idle: AtomicUsize,
}

/// See the module docs.
pub(crate) struct Pool {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    shared: Arc<Shared>,
}

impl Pool {
    pub(crate) fn new() -> Pool {
        let (tx, rx) = unbounded();
        Pool {
            tx,
            rx,
            shared: Arc::new(Shared {
                threads: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
            }),
        }
    }

    /// Run `f` on a pool thread.
    pub(crate) fn submit(&self, f: impl FnOnce() + Send + 'static) {
        let _ = self.tx.send(Box::new(f));
        if self.shared.idle.load(SeqCst) == 0 && self.shared.threads.load(SeqCst) < MAX_THREADS {
            self.spawn();
        }
    }

    fn spawn(&self) {
        let n = self.shared.threads.fetch_add(1, SeqCst);
        if n >= MAX_THREADS {
            self.shared.threads.fetch_sub(1, SeqCst);
            return;
        }
        let (rx, sh) = (self.rx.clone(), self.shared.clone());
        let r = std::thread::Builder::new()
            .name("wippy-supervisor-pool".into())
            .spawn(move || {
                loop {
                    sh.idle.fetch_add(1, SeqCst);
                    let job = rx.recv_timeout(IDLE_EXIT);
                    sh.idle.fetch_sub(1, SeqCst);
                    match job {
                        Ok(f) => {
                            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
                                log::error!(target: "wippy::supervisor", "service call panicked");
                            }
                        }
                        Err(RecvTimeoutError::Timeout) if rx.is_empty() => break,
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                sh.threads.fetch_sub(1, SeqCst);
            });
        if let Err(e) = r {
            self.shared.threads.fetch_sub(1, SeqCst);
            log::error!(target: "wippy::supervisor", "cannot start a pool thread: {e}");
        }
    }
}
