//! The event bus (spec §8): `{system, kind, path, data}` events, pattern subscriptions,
//! fire-and-forget publish.
//!
//! # Delivery (what differs from the original, and why)
//!
//! The original delivers every event from one dispatcher goroutine and *blocks* on each
//! subscriber's channel, so one slow subscriber stalls the whole bus (spec §8.2 ⚠). Here:
//!
//! 1. [`Bus::publish`] walks a copy-on-write snapshot of the subscriber list on the
//!    publisher's thread and pushes the event (an `Arc`, shared by all subscribers) onto each
//!    matching subscriber's **own unbounded queue**. It never blocks and never drops while the
//!    bus is open.
//! 2. Channel subscriptions ([`Bus::subscribe`]) read that queue directly. Callback
//!    subscriptions ([`Bus::subscribe_fn`]) are drained by an elastic pool of bus threads, one
//!    subscriber at a time per thread, so callbacks of one subscription run sequentially and a
//!    slow callback only holds its own thread: when every pool thread is busy a new one is
//!    started (up to [`MAX_POOL_THREADS`]; extra threads exit after [`POOL_IDLE_EXIT`] idle).
//! 3. **Order.** Each subscriber sees events in publish order for events published from one
//!    thread (the push happens in the publisher's program order onto a FIFO queue); there is
//!    no order across subscribers. The supervisor's "registrations published before the commit
//!    event arrive before it" therefore holds.
//! 4. A subscription ends with its handle: dropping a [`Subscription`] unsubscribes; after the
//!    drop returns no new callback invocation starts (one already running finishes).
//!
//! Patterns use [`wildcard::Pattern`](crate::wildcard::Pattern) on `.`-separated segments. An
//! empty system pattern matches every system; an empty or `*` kind pattern matches every kind,
//! dotted ones included (the original's Subscriber special case).

mod pool;
mod subscription;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::error::{Error, Kind};
use crate::value::Value;
use crate::wildcard::Pattern;

pub use pool::{MAX_POOL_THREADS, POOL_IDLE_EXIT};
pub use subscription::Subscription;

use pool::{CallbackSub, Pool};

/// Maximum number of live subscriptions (the original's cap; observed peak ≈600).
pub const MAX_SUBSCRIBERS: usize = 4096;

/// A bus event.
#[derive(Clone, Debug, PartialEq)]
pub struct BusEvent {
    /// The system, e.g. `registry`, `supervisor`, `relay`.
    pub system: String,
    /// The kind, e.g. `entry.create`, `service.register`.
    pub kind: String,
    /// The entity path (registry ID, service id, transaction path…).
    pub path: String,
    /// The payload (native objects travel as [`Value::Opaque`]).
    pub data: Value,
}

impl BusEvent {
    /// An event.
    pub fn new(
        system: impl Into<String>,
        kind: impl Into<String>,
        path: impl Into<String>,
        data: Value,
    ) -> BusEvent {
        BusEvent {
            system: system.into(),
            kind: kind.into(),
            path: path.into(),
            data,
        }
    }
}

/// A subscriber's filter.
#[derive(Debug)]
struct Filter {
    system: Option<Pattern>,
    kind: Option<Pattern>,
}

impl Filter {
    fn new(system: &str, kind: &str) -> Filter {
        Filter {
            system: (!system.is_empty()).then(|| Pattern::new(system)),
            kind: (!kind.is_empty() && kind != "*").then(|| Pattern::new(kind)),
        }
    }
    fn matches(&self, ev: &BusEvent) -> bool {
        self.system.as_ref().is_none_or(|p| p.matches(&ev.system))
            && self.kind.as_ref().is_none_or(|p| p.matches(&ev.kind))
    }
}

enum Sink {
    Channel(crossbeam_channel::Sender<Arc<BusEvent>>),
    Callback(Arc<CallbackSub>),
}

struct Entry {
    id: u64,
    filter: Filter,
    sink: Sink,
}

pub(crate) struct BusInner {
    subs: RwLock<Arc<Vec<Arc<Entry>>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    published: AtomicU64,
    pool: Pool,
}

/// The event bus. Cheap to clone (shared).
#[derive(Clone)]
pub struct Bus {
    inner: Arc<BusInner>,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("subscribers", &self.subscriber_count())
            .finish()
    }
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

impl Bus {
    /// A new, open bus.
    pub fn new() -> Bus {
        Bus {
            inner: Arc::new(BusInner {
                subs: RwLock::new(Arc::new(Vec::new())),
                next_id: AtomicU64::new(1),
                closed: AtomicBool::new(false),
                published: AtomicU64::new(0),
                pool: Pool::new(),
            }),
        }
    }

    /// Publish; never blocks. Dropped silently once the bus is closed.
    pub fn publish(&self, ev: BusEvent) {
        if self.inner.closed.load(Ordering::Acquire) {
            return;
        }
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        let subs = self
            .inner
            .subs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut shared: Option<Arc<BusEvent>> = None;
        let mut ev = Some(ev);
        for e in subs.iter() {
            let probe = shared.as_deref().or(ev.as_ref()).expect("event");
            if !e.filter.matches(probe) {
                continue;
            }
            let arc = shared
                .get_or_insert_with(|| Arc::new(ev.take().expect("event")))
                .clone();
            match &e.sink {
                Sink::Channel(tx) => {
                    let _ = tx.send(arc);
                }
                Sink::Callback(cb) => cb.push(arc, &self.inner.pool),
            }
        }
    }

    /// Subscribe with a channel; read events from the returned [`Subscription`].
    ///
    /// # Errors
    /// `Unavailable` "bus is closed"; `LimitExceeded` "eventbus subscribers cap reached".
    pub fn subscribe(&self, system: &str, kind: &str) -> Result<Subscription, Error> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let id = self.add(Filter::new(system, kind), Sink::Channel(tx))?;
        Ok(Subscription::new(
            id,
            Arc::downgrade(&self.inner),
            Some(rx),
            None,
        ))
    }

    /// Subscribe with a callback, run sequentially on a bus pool thread (never on the
    /// publisher's thread). A panicking callback is logged and the subscription continues.
    ///
    /// # Errors
    /// As [`Bus::subscribe`].
    pub fn subscribe_fn(
        &self,
        system: &str,
        kind: &str,
        f: impl Fn(&BusEvent) + Send + Sync + 'static,
    ) -> Result<Subscription, Error> {
        let cb = Arc::new(CallbackSub::new(Box::new(f)));
        let id = self.add(Filter::new(system, kind), Sink::Callback(cb.clone()))?;
        Ok(Subscription::new(
            id,
            Arc::downgrade(&self.inner),
            None,
            Some(cb),
        ))
    }

    fn add(&self, filter: Filter, sink: Sink) -> Result<u64, Error> {
        let mut g = self.inner.subs.write().unwrap_or_else(|p| p.into_inner());
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::new(Kind::UNAVAILABLE, "bus is closed"));
        }
        if g.len() >= MAX_SUBSCRIBERS {
            return Err(Error::new(
                Kind::LIMIT_EXCEEDED,
                "eventbus subscribers cap reached",
            ));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut v = Vec::with_capacity(g.len() + 1);
        v.extend(g.iter().cloned());
        v.push(Arc::new(Entry { id, filter, sink }));
        *g = Arc::new(v);
        Ok(id)
    }

    /// Number of live subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.inner
            .subs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Number of events published so far.
    pub fn published(&self) -> u64 {
        self.inner.published.load(Ordering::Relaxed)
    }

    /// Close: drop all subscriptions (their channels disconnect) and ignore later publishes.
    pub fn close(&self) {
        let mut g = self.inner.subs.write().unwrap_or_else(|p| p.into_inner());
        self.inner.closed.store(true, Ordering::Release);
        for e in g.iter() {
            if let Sink::Callback(cb) = &e.sink {
                cb.deactivate();
            }
        }
        *g = Arc::new(Vec::new());
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

impl BusInner {
    pub(crate) fn remove(&self, id: u64) {
        let mut g = self.subs.write().unwrap_or_else(|p| p.into_inner());
        if g.iter().any(|e| e.id == id) {
            let v: Vec<Arc<Entry>> = g.iter().filter(|e| e.id != id).cloned().collect();
            *g = Arc::new(v);
        }
    }
}

#[cfg(test)]
mod tests;
