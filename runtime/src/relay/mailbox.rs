//! The mailbox host: delivers packages to channels attached per PID, through a worker pool
//! (spec §3.5). Used for hosts such as `node:control` (supervisor and `process.exec` watchers)
//! and the HTTP server host.
//!
//! # Algorithm
//!
//! * N worker threads. A package goes to worker `fnv1a32(from.uniq) % N`, so all packages of
//!   one sender pass through one worker: **per-sender FIFO** (different senders interleave).
//! * Each worker has two lanes: a **data** lane bounded by `buffer` — a full lane blocks the
//!   sender (back-pressure, never a drop) — and an unbounded **control** lane for reserved
//!   `@`-topics (CANCEL / EXIT / LINK_DOWN events, [`Package::is_control`]), which therefore
//!   never block and are never dropped. Workers always empty the control lane first, so a
//!   control package may overtake data packages of the same sender (it never overtakes another
//!   control package of that sender).
//! * Delivery blocks on a full attached channel (back-pressure again). A package for a PID with
//!   no attached channel is dropped (logged at debug), as in the original; so is one whose
//!   channel was disconnected, which also detaches it.
//! * [`Mailbox::close`] (or drop) stops the workers; later sends fail with `Unavailable`
//!   "mailbox is closed".

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver as ChanRx, Sender, bounded, select_biased, unbounded};
use fnv::FnvBuildHasher;

use crate::error::{Error, Kind};
use crate::pid::Pid;
use crate::relay::{Attach, Package, Receiver};

/// Mailbox sizing.
#[derive(Clone, Debug)]
pub struct MailboxConfig {
    /// Worker threads (original `node:control` default: 16).
    pub workers: usize,
    /// Data-lane capacity per worker (original default: 1024).
    pub buffer: usize,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        MailboxConfig {
            workers: 16,
            buffer: 1024,
        }
    }
}

type Receivers = RwLock<HashMap<Pid, Sender<Package>, FnvBuildHasher>>;

struct Lane {
    data: Sender<Package>,
    control: Sender<Package>,
}

/// See the module docs.
pub struct Mailbox {
    id: String,
    receivers: Arc<Receivers>,
    lanes: RwLock<Vec<Lane>>,
    closed: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// FNV-1a, 32-bit (offset 2166136261, prime 16777619), as the original's worker assignment.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

impl Mailbox {
    /// Start a mailbox host named `id` (used in thread names and errors).
    pub fn new(id: impl Into<String>, cfg: MailboxConfig) -> Arc<Mailbox> {
        let id = id.into();
        let workers = cfg.workers.max(1);
        let receivers: Arc<Receivers> = Arc::new(RwLock::new(HashMap::default()));
        let mut lanes = Vec::with_capacity(workers);
        let mut threads = Vec::with_capacity(workers);
        for n in 0..workers {
            let (dtx, drx) = bounded(cfg.buffer.max(1));
            let (ctx, crx) = unbounded();
            lanes.push(Lane {
                data: dtx,
                control: ctx,
            });
            let recv = receivers.clone();
            let t = std::thread::Builder::new()
                .name(format!("wippy-mbox-{n}"))
                .spawn(move || worker(recv, drx, crx))
                .expect("spawn mailbox worker");
            threads.push(t);
        }
        Arc::new(Mailbox {
            id,
            receivers,
            lanes: RwLock::new(lanes),
            closed: AtomicBool::new(false),
            threads: Mutex::new(threads),
        })
    }

    /// The host id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Number of attached receivers.
    pub fn attached(&self) -> usize {
        self.receivers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Stop the workers (pending packages are still delivered) and reject later sends.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.lanes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.close();
    }
}

fn worker(receivers: Arc<Receivers>, data: ChanRx<Package>, control: ChanRx<Package>) {
    let deliver = |pkg: Package| {
        let tx = receivers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&pkg.to)
            .cloned();
        match tx {
            Some(tx) => {
                let to = pkg.to.clone();
                if tx.send(pkg).is_err() {
                    log::debug!(pid:% = to; "mailbox: receiver disconnected, detaching");
                    receivers
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&to);
                }
            }
            None => {
                log::debug!(pid:% = pkg.to, topic = pkg.topic.as_str(); "mailbox: no receiver attached, dropped")
            }
        }
    };
    loop {
        while let Ok(p) = control.try_recv() {
            deliver(p);
        }
        select_biased! {
            recv(control) -> m => match m { Ok(p) => deliver(p), Err(_) => break },
            recv(data) -> m => match m { Ok(p) => deliver(p), Err(_) => break },
        }
    }
    // Senders are gone: deliver whatever is left.
    while let Ok(p) = control.try_recv() {
        deliver(p);
    }
    while let Ok(p) = data.try_recv() {
        deliver(p);
    }
}

impl Receiver for Mailbox {
    fn send(&self, pkg: Package) -> Result<(), Error> {
        let lanes = self.lanes.read().unwrap_or_else(|p| p.into_inner());
        if lanes.is_empty() {
            return Err(Error::new(Kind::UNAVAILABLE, "mailbox is closed")
                .with_detail("host_id", self.id.as_str()));
        }
        let lane = &lanes[fnv1a32(pkg.from.uniq().as_bytes()) as usize % lanes.len()];
        let ch = if pkg.is_control() {
            lane.control.clone()
        } else {
            lane.data.clone()
        };
        drop(lanes); // never block while holding the lanes lock (close needs it)
        ch.send(pkg).map_err(|_| {
            Error::new(Kind::UNAVAILABLE, "mailbox is closed")
                .with_detail("host_id", self.id.as_str())
        })
    }

    fn as_attach(&self) -> Option<&dyn Attach> {
        Some(self)
    }
}

impl Attach for Mailbox {
    fn attach(&self, pid: &Pid, tx: Sender<Package>) -> Result<(), Error> {
        let mut g = self.receivers.write().unwrap_or_else(|p| p.into_inner());
        if g.contains_key(pid) {
            return Err(
                Error::new(Kind::ALREADY_EXISTS, "receiver already attached")
                    .with_detail("pid", pid.as_str()),
            );
        }
        g.insert(pid.clone(), tx);
        Ok(())
    }

    fn detach(&self, pid: &Pid) -> bool {
        self.receivers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(pid)
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a32(b""), 2_166_136_261);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }
}
