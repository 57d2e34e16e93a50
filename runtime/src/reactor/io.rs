//! I/O readiness: mio sources registered with the runtime's one `Poll`.
//!
//! mio is edge-triggered, so each registration keeps a readiness word (tokio's `ScheduledIo`
//! idea): the reactor ORs new readiness bits in and bumps a tick; a process tries its I/O
//! operation, and on `WouldBlock` clears the bits it saw with [`IoHandle::clear_ready`] — which
//! only clears if no new event arrived since (same tick), so an edge can never be lost — and
//! then waits with [`IoHandle::wait`] (a [`Completer`], delivered as `Event::Complete`) or gets
//! every readiness change as a message with [`IoHandle::watch`].
//!
//! ```text
//! loop {
//!     match io.poll_ready(Ready::READABLE) {
//!         Some(ev) => match sock.read(buf) {
//!             Err(e) if e.kind() == WouldBlock => io.clear_ready(ev),
//!             r => return r,
//!         },
//!         None => { io.wait(Ready::READABLE, cx.completer(tag)); /* yield */ }
//!     }
//! }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::pid::Pid;
use crate::process::Completer;
use crate::reactor::ReactorShared;
use crate::relay::Package;
use crate::value::Value;

/// Readiness bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ready(u8);

impl Ready {
    /// Readable.
    pub const READABLE: Ready = Ready(1);
    /// Writable.
    pub const WRITABLE: Ready = Ready(2);
    /// Read half closed (EOF / peer shutdown).
    pub const READ_CLOSED: Ready = Ready(4);
    /// Write half closed.
    pub const WRITE_CLOSED: Ready = Ready(8);
    /// Error condition.
    pub const ERROR: Ready = Ready(16);
    /// No bits.
    pub const EMPTY: Ready = Ready(0);

    /// Raw bits.
    pub fn bits(self) -> u8 {
        self.0
    }
    /// From raw bits.
    pub fn from_bits(b: u8) -> Ready {
        Ready(b & 31)
    }
    /// True when no bit is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// True when any bit of `o` is set.
    pub fn intersects(self, o: Ready) -> bool {
        self.0 & o.0 != 0
    }
    /// Readable.
    pub fn is_readable(self) -> bool {
        self.intersects(Ready::READABLE)
    }
    /// Writable.
    pub fn is_writable(self) -> bool {
        self.intersects(Ready::WRITABLE)
    }

    /// The bits a waiter for `interest` is woken by: the interest, plus closed/error states
    /// (which make any operation return immediately).
    fn wakes(interest: Ready) -> Ready {
        let mut b = interest.0 | Ready::ERROR.0;
        if interest.is_readable() {
            b |= Ready::READ_CLOSED.0;
        }
        if interest.is_writable() {
            b |= Ready::WRITE_CLOSED.0;
        }
        Ready(b)
    }

    pub(crate) fn from_event(e: &mio::event::Event) -> Ready {
        let mut b = 0;
        if e.is_readable() {
            b |= 1;
        }
        if e.is_writable() {
            b |= 2;
        }
        if e.is_read_closed() {
            b |= 4;
        }
        if e.is_write_closed() {
            b |= 8;
        }
        if e.is_error() {
            b |= 16;
        }
        Ready(b)
    }
}

impl std::ops::BitOr for Ready {
    type Output = Ready;
    fn bitor(self, o: Ready) -> Ready {
        Ready(self.0 | o.0)
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ready({:#07b})", self.0)
    }
}

/// Readiness observed at one tick (pass back to [`IoHandle::clear_ready`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyEvent {
    /// The bits.
    pub ready: Ready,
    tick: u32,
}

/// Readiness word layout: bits 0..8 readiness, bits 8..32 tick.
const TICK_SHIFT: u32 = 8;

pub(crate) struct IoEntry {
    pub(crate) token: usize,
    readiness: AtomicU32,
    waiters: Mutex<Vec<(Ready, Completer)>>,
    watch: Mutex<Option<(Pid, String)>>,
}

impl IoEntry {
    pub(crate) fn new(token: usize) -> IoEntry {
        IoEntry {
            token,
            readiness: AtomicU32::new(0),
            waiters: Mutex::new(Vec::new()),
            watch: Mutex::new(None),
        }
    }

    /// Reactor side: merge new readiness, wake matching waiters, notify the watcher.
    pub(crate) fn on_event(&self, r: Ready, rt: &crate::runtime::Handle) {
        let mut cur = self.readiness.load(SeqCst);
        loop {
            let tick = (cur >> TICK_SHIFT).wrapping_add(1) & 0x00FF_FFFF;
            let next = (tick << TICK_SHIFT) | ((cur as u8 | r.0) as u32);
            match self.readiness.compare_exchange(cur, next, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        let now = Ready::from_bits(self.readiness.load(SeqCst) as u8);
        let ready: Vec<(Ready, Completer)> = {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            let (fire, keep): (Vec<_>, Vec<_>) = w
                .drain(..)
                .partition(|(i, _)| now.intersects(Ready::wakes(*i)));
            *w = keep;
            fire
        };
        for (_, c) in ready {
            c.complete(Ok(Value::Int(i64::from(now.0))));
        }
        let watch = self.watch.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some((pid, topic)) = watch {
            let _ = rt.send(Package::new(
                Pid::zero(),
                pid,
                topic,
                vec![Value::Int(i64::from(r.0))],
            ));
        }
    }

    fn snapshot(&self) -> ReadyEvent {
        let w = self.readiness.load(SeqCst);
        ReadyEvent {
            ready: Ready::from_bits(w as u8),
            tick: w >> TICK_SHIFT,
        }
    }

    pub(crate) fn close_waiters(&self) {
        let w = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, c) in w {
            c.complete(Err(Error::new(
                crate::error::Kind::CANCELED,
                "io source deregistered",
            )));
        }
    }
}

/// A registered I/O source. Deregister with [`IoHandle::deregister`], or drop the handle after
/// closing the source (the kernel removes a closed fd from the poll by itself). Dropping the
/// handle forgets the readiness state and completes pending waiters with `Canceled`.
pub struct IoHandle {
    pub(crate) entry: Arc<IoEntry>,
    pub(crate) reactor: Arc<ReactorShared>,
}

impl fmt::Debug for IoHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoHandle")
            .field("token", &self.entry.token)
            .field("ready", &self.entry.snapshot().ready)
            .finish()
    }
}

impl IoHandle {
    /// The readiness seen so far.
    pub fn ready(&self) -> Ready {
        self.entry.snapshot().ready
    }

    /// The current readiness if it intersects `interest` (or has closed/error bits).
    pub fn poll_ready(&self, interest: Ready) -> Option<ReadyEvent> {
        let ev = self.entry.snapshot();
        ev.ready.intersects(Ready::wakes(interest)).then_some(ev)
    }

    /// Clear the bits of `ev` after an operation returned `WouldBlock`; no-op if a newer event
    /// arrived meanwhile (its tick differs), so the new edge is kept. Closed/error bits stay.
    pub fn clear_ready(&self, ev: ReadyEvent) {
        let mut cur = self.entry.readiness.load(SeqCst);
        loop {
            if cur >> TICK_SHIFT != ev.tick {
                return;
            }
            let keep = Ready::READ_CLOSED.0 | Ready::WRITE_CLOSED.0 | Ready::ERROR.0;
            let bits = (cur as u8) & !(ev.ready.0 & !keep);
            let next = (cur & !0xFF) | bits as u32;
            match self
                .entry
                .readiness
                .compare_exchange(cur, next, SeqCst, SeqCst)
            {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Complete `done` with `Ok(Int(readiness bits))` once the source is ready for `interest`
    /// (immediately if it already is).
    pub fn wait(&self, interest: Ready, done: Completer) {
        let mut w = self.entry.waiters.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.entry.snapshot().ready;
        if now.intersects(Ready::wakes(interest)) {
            drop(w);
            done.complete(Ok(Value::Int(i64::from(now.0))));
        } else {
            w.push((interest, done));
        }
    }

    /// Also deliver every readiness event as a message `{topic, [Int(bits)]}` to `pid`
    /// (`None` stops it).
    pub fn watch(&self, target: Option<(Pid, String)>) {
        *self.entry.watch.lock().unwrap_or_else(|p| p.into_inner()) = target;
    }

    /// Deregister `source` from the poll and forget this registration; pending waiters complete
    /// with `Canceled` "io source deregistered".
    ///
    /// # Errors
    /// The OS error from `epoll_ctl`.
    pub fn deregister<S: mio::event::Source + ?Sized>(self, source: &mut S) -> Result<(), Error> {
        // Drop (below) forgets the registration and cancels waiters.
        self.reactor
            .registry
            .deregister(source)
            .map_err(Error::from)
    }
}

impl Drop for IoHandle {
    fn drop(&mut self) {
        self.reactor.forget_io(self.entry.token);
        self.entry.close_waiters();
    }
}
