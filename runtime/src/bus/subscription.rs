//! Subscription handles: the receiving end of a bus subscription; dropping one unsubscribes.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::bus::pool::CallbackSub;
use crate::bus::{BusEvent, BusInner};

/// A live subscription. Channel subscriptions receive through [`Subscription::recv`] and
/// friends; callback subscriptions only hold the registration alive.
pub struct Subscription {
    id: u64,
    bus: Weak<BusInner>,
    rx: Option<Receiver<Arc<BusEvent>>>,
    cb: Option<Arc<CallbackSub>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id())
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(
        id: u64,
        bus: Weak<BusInner>,
        rx: Option<Receiver<Arc<BusEvent>>>,
        cb: Option<Arc<CallbackSub>>,
    ) -> Self {
        Subscription { id, bus, rx, cb }
    }

    /// The subscriber id in the original's form, `"sub.<n>"`.
    pub fn id(&self) -> String {
        format!("sub.{}", self.id)
    }

    /// The channel (None for callback subscriptions); usable with `crossbeam_channel::select!`.
    pub fn receiver(&self) -> Option<&Receiver<Arc<BusEvent>>> {
        self.rx.as_ref()
    }

    /// Block for the next event; None when the bus closed (or for a callback subscription).
    pub fn recv(&self) -> Option<Arc<BusEvent>> {
        self.rx.as_ref()?.recv().ok()
    }

    /// Wait up to `d` for the next event.
    pub fn recv_timeout(&self, d: Duration) -> Option<Arc<BusEvent>> {
        self.rx.as_ref()?.recv_timeout(d).ok()
    }

    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<Arc<BusEvent>> {
        self.rx.as_ref()?.try_recv().ok()
    }

    /// Unsubscribe now (same as dropping).
    pub fn unsubscribe(self) {}
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(cb) = &self.cb {
            cb.deactivate();
        }
        if let Some(bus) = self.bus.upgrade() {
            bus.remove(self.id);
        }
    }
}
