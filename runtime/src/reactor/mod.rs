//! The reactor: one thread owning one `mio::Poll` with every I/O registration, every timer
//! and the SIGINT/SIGTERM handler.
//!
//! * `timer` — sleep / one-shot / ticker entries in a min-heap ([`TimerHandle`]).
//! * `io` — readiness words and waiters per registration ([`IoHandle`], [`Ready`]).
//!
//! # Loop
//!
//! 1. Mark itself awake (`next_wake = 0`), apply queued operations (arm timers, enable
//!    signals), fire expired timers.
//! 2. Publish the next deadline in `next_wake`, re-check the operation queue, then
//!    `poll(timeout = next deadline)`.
//! 3. Dispatch events: the [`mio::Waker`] token (operations pending), the signal token, or
//!    an I/O token (merge readiness, wake waiters).
//!
//! Other threads queue operations under a mutex and wake the reactor through the `mio::Waker`
//! only when the new deadline is earlier than `next_wake` (the reactor re-checks the queue
//! after publishing `next_wake`, so a skipped wake is never a missed deadline). Timer
//! resolution is the poll timeout's: mio rounds sub-millisecond timeouts *up*, so timers fire
//! at or slightly after their deadline, never early.
//!
//! # Signals
//!
//! Enabled by the first [`Handle::on_shutdown_signal`](crate::Handle::on_shutdown_signal).
//! The first SIGINT/SIGTERM logs "received shutdown signal" and runs the registered callbacks
//! on the reactor thread (they must only trigger the shutdown, not perform it); a second one
//! logs "force exit" and exits the process with status 1 (spec §12).

pub(crate) mod io;
pub(crate) mod timer;

use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use fnv::FnvBuildHasher;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::error::Error;
use crate::pid::Pid;
use crate::process::{Completer, unix_now};
use crate::relay::Package;
use crate::runtime::{Handle, Shared};
use crate::value::Value;

pub use io::{IoHandle, Ready, ReadyEvent};
pub use timer::TimerHandle;

use io::IoEntry;
use timer::{ACTIVE, FIRED, Scheduled, TimerAction, TimerEntry, next_tick};

const WAKE_TOKEN: Token = Token(usize::MAX);
const SIGNAL_TOKEN: Token = Token(usize::MAX - 1);
/// Events fetched per poll.
const EVENTS_CAPACITY: usize = 1024;

pub(crate) enum Op {
    Arm {
        entry: Arc<TimerEntry>,
        deadline: Instant,
        version: u64,
    },
    /// Register the (already installed) signal handler's pipe with the poll.
    EnableSignals(signal_hook_mio::v1_0::Signals),
}

type Callback = Arc<dyn Fn() + Send + Sync>;

pub(crate) struct ReactorShared {
    pub(crate) registry: mio::Registry,
    waker: Waker,
    ops: Mutex<Vec<Op>>,
    /// Nanoseconds since `base` at which the reactor plans to wake; 0 = awake.
    next_wake: AtomicU64,
    base: Instant,
    io: Mutex<HashMap<usize, Arc<IoEntry>, FnvBuildHasher>>,
    next_token: AtomicUsize,
    next_timer: AtomicU64,
    shutdown: AtomicBool,
    handlers: Mutex<Vec<Callback>>,
    signals_enabled: AtomicBool,
    signal_count: AtomicU32,
    timers_live: AtomicUsize,
}

impl ReactorShared {
    fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.base)
            .as_nanos()
            .min(u64::MAX as u128 - 1) as u64
    }

    pub(crate) fn submit(&self, op: Op) {
        let must_wake = match &op {
            Op::Arm { deadline, .. } => self.nanos(*deadline) < self.next_wake.load(SeqCst).max(1),
            Op::EnableSignals(_) => true,
        };
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).push(op);
        // Re-read after the push: the reactor publishes `next_wake` before re-checking `ops`.
        if must_wake || self.next_wake.load(SeqCst) == u64::MAX {
            let _ = self.waker.wake();
        }
    }

    pub(crate) fn forget_io(&self, token: usize) {
        self.io
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&token);
    }

    fn new_timer(self: &Arc<Self>, action: TimerAction, deadline: Instant) -> TimerHandle {
        let entry = Arc::new(TimerEntry {
            id: self.next_timer.fetch_add(1, SeqCst) + 1,
            state: std::sync::atomic::AtomicU8::new(ACTIVE),
            version: AtomicU64::new(0),
            action: Mutex::new(action),
        });
        self.submit(Op::Arm {
            entry: entry.clone(),
            deadline,
            version: 0,
        });
        TimerHandle {
            entry,
            reactor: self.clone(),
        }
    }

    /// Run the shutdown callbacks as if a signal arrived (second call exits the process).
    pub(crate) fn signal(&self) {
        let n = self.signal_count.fetch_add(1, SeqCst) + 1;
        if n >= 2 {
            log::error!("force exit");
            std::process::exit(1);
        }
        log::warn!("received shutdown signal");
        let hs: Vec<Callback> = self
            .handlers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for h in hs {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h())).is_err() {
                log::error!("shutdown signal callback panicked");
            }
        }
    }
}

/// The reactor part owned by the runtime: shared state plus the thread.
pub(crate) struct Reactor {
    pub(crate) shared: Arc<ReactorShared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Reactor {
    pub(crate) fn new() -> std::io::Result<(Reactor, Poll)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE_TOKEN)?;
        let registry = poll.registry().try_clone()?;
        let shared = Arc::new(ReactorShared {
            registry,
            waker,
            ops: Mutex::new(Vec::new()),
            next_wake: AtomicU64::new(0),
            base: Instant::now(),
            io: Mutex::new(HashMap::default()),
            next_token: AtomicUsize::new(0),
            next_timer: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            handlers: Mutex::new(Vec::new()),
            signals_enabled: AtomicBool::new(false),
            signal_count: AtomicU32::new(0),
            timers_live: AtomicUsize::new(0),
        });
        Ok((
            Reactor {
                shared,
                thread: Mutex::new(None),
            },
            poll,
        ))
    }

    pub(crate) fn start(&self, poll: Poll, rt: Weak<Shared>) {
        let shared = self.shared.clone();
        let t = std::thread::Builder::new()
            .name("wippy-reactor".into())
            .spawn(move || run(poll, shared, rt))
            .expect("spawn reactor thread");
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
    }

    pub(crate) fn shutdown(&self) {
        self.shared.shutdown.store(true, SeqCst);
        let _ = self.shared.waker.wake();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }

    // ===== API used by Handle =====

    pub(crate) fn sleep(&self, deadline: Instant, done: Completer) -> TimerHandle {
        self.shared
            .new_timer(TimerAction::Complete(Some(done)), deadline)
    }

    pub(crate) fn after(
        &self,
        deadline: Instant,
        from: Pid,
        to: Pid,
        topic: String,
    ) -> TimerHandle {
        self.shared
            .new_timer(TimerAction::Message { from, to, topic }, deadline)
    }

    pub(crate) fn ticker(
        &self,
        period: Duration,
        from: Pid,
        to: Pid,
        topic: String,
    ) -> TimerHandle {
        let period = period.max(Duration::from_micros(1));
        self.shared.new_timer(
            TimerAction::Ticker {
                from,
                to,
                topic,
                period,
            },
            Instant::now() + period,
        )
    }

    pub(crate) fn register<S: mio::event::Source + ?Sized>(
        &self,
        src: &mut S,
        interest: Interest,
    ) -> Result<IoHandle, Error> {
        let token = self.shared.next_token.fetch_add(1, SeqCst);
        if token >= usize::MAX - 2 {
            return Err(Error::internal("io token space exhausted"));
        }
        let entry = Arc::new(IoEntry::new(token));
        self.shared
            .io
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token, entry.clone());
        if let Err(e) = self.shared.registry.register(src, Token(token), interest) {
            self.shared.forget_io(token);
            return Err(Error::from(e));
        }
        Ok(IoHandle {
            entry,
            reactor: self.shared.clone(),
        })
    }

    pub(crate) fn on_signal(&self, f: Callback) {
        self.shared
            .handlers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(f);
        if !self.shared.signals_enabled.swap(true, SeqCst) {
            // Install the OS handlers now, on the caller's thread, so a signal that arrives
            // before the reactor registers the pipe is queued in it rather than killing us.
            match signal_hook_mio::v1_0::Signals::new([libc::SIGINT, libc::SIGTERM]) {
                Ok(s) => self.shared.submit(Op::EnableSignals(s)),
                Err(e) => {
                    log::error!(error:% = e; "reactor: cannot install the SIGINT/SIGTERM handler")
                }
            }
        }
    }

    pub(crate) fn timers_live(&self) -> usize {
        self.shared.timers_live.load(SeqCst)
    }
}

fn run(mut poll: Poll, sh: Arc<ReactorShared>, rt: Weak<Shared>) {
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    let mut heap: BinaryHeap<Scheduled> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut signals: Option<signal_hook_mio::v1_0::Signals> = None;
    loop {
        sh.next_wake.store(0, SeqCst);
        let ops = std::mem::take(&mut *sh.ops.lock().unwrap_or_else(|p| p.into_inner()));
        for op in ops {
            match op {
                Op::Arm {
                    entry,
                    deadline,
                    version,
                } => {
                    seq += 1;
                    heap.push(Scheduled {
                        deadline,
                        seq,
                        version,
                        entry,
                    });
                }
                Op::EnableSignals(mut s) => {
                    if let Err(e) =
                        poll.registry()
                            .register(&mut s, SIGNAL_TOKEN, Interest::READABLE)
                    {
                        log::error!(error:% = e; "reactor: cannot register the signal pipe");
                    }
                    signals = Some(s);
                }
            }
        }
        sh.timers_live.store(heap.len(), SeqCst);
        let handle = rt.upgrade().map(|s| Handle { shared: s });
        fire_expired(&mut heap, &mut seq, handle.as_ref());
        let timeout = heap
            .peek()
            .map(|s| s.deadline.saturating_duration_since(Instant::now()));
        let wake_at = heap
            .peek()
            .map_or(u64::MAX, |s| sh.nanos(s.deadline).max(1));
        sh.next_wake.store(wake_at, SeqCst);
        if !sh.ops.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
            continue;
        }
        drop(handle);
        if sh.shutdown.load(SeqCst) {
            break;
        }
        if let Err(e) = poll.poll(&mut events, timeout)
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            log::error!(error:% = e; "reactor: poll failed");
            std::thread::sleep(Duration::from_millis(1));
        }
        if sh.shutdown.load(SeqCst) {
            break;
        }
        let handle = rt.upgrade().map(|s| Handle { shared: s });
        for ev in events.iter() {
            match ev.token() {
                WAKE_TOKEN => {}
                SIGNAL_TOKEN => {
                    if let Some(s) = signals.as_mut() {
                        let n = s.pending().count();
                        for _ in 0..n {
                            sh.signal();
                        }
                    }
                }
                Token(t) => {
                    let entry = sh
                        .io
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&t)
                        .cloned();
                    if let (Some(entry), Some(h)) = (entry, handle.as_ref()) {
                        entry.on_event(Ready::from_event(ev), h);
                    }
                }
            }
        }
    }
    // Pending sleeps complete with "runtime is shut down" via their completers' drop.
    heap.clear();
    sh.io.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

fn fire_expired(heap: &mut BinaryHeap<Scheduled>, seq: &mut u64, rt: Option<&Handle>) {
    let now = Instant::now();
    while heap.peek().is_some_and(|s| s.deadline <= now) {
        let s = heap.pop().expect("peeked");
        let e = &s.entry;
        if e.state.load(SeqCst) != ACTIVE || e.version.load(SeqCst) != s.version {
            continue; // cancelled or superseded by a reset
        }
        let mut action = e.action.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *action {
            TimerAction::Complete(c) => {
                if e.state
                    .compare_exchange(ACTIVE, FIRED, SeqCst, SeqCst)
                    .is_ok()
                    && let Some(c) = c.take()
                {
                    drop(action);
                    c.complete(Ok(Value::Nil));
                }
            }
            TimerAction::Message { from, to, topic } => {
                if e.state
                    .compare_exchange(ACTIVE, FIRED, SeqCst, SeqCst)
                    .is_ok()
                    && let Some(h) = rt
                {
                    let pkg = Package::new(
                        from.clone(),
                        to.clone(),
                        topic.clone(),
                        vec![Value::Float(unix_now())],
                    );
                    drop(action);
                    let _ = h.send(pkg);
                }
            }
            TimerAction::Ticker {
                from,
                to,
                topic,
                period,
            } => {
                let Some(h) = rt else { continue };
                let pkg = Package::new(
                    from.clone(),
                    to.clone(),
                    topic.clone(),
                    vec![Value::Float(unix_now())],
                );
                let next = next_tick(s.deadline, *period, now);
                drop(action);
                match h.send(pkg) {
                    Err(err) if err.kind() == &crate::error::Kind::NOT_FOUND => {
                        e.state.store(FIRED, SeqCst); // target gone: the ticker stops itself
                    }
                    _ => {
                        *seq += 1;
                        heap.push(Scheduled {
                            deadline: next,
                            seq: *seq,
                            version: s.version,
                            entry: s.entry.clone(),
                        });
                    }
                }
            }
        }
    }
}
