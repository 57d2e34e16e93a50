//! The registry's [`EventSink`] on the runtime [`Bus`] (system `registry`).
//!
//! The registry publishes every event from the thread that applies the change, one after the
//! other; [`Bus::publish`] pushes onto each subscriber's FIFO queue in the publisher's program
//! order and never blocks. So every subscriber sees one transition's events in order —
//! `registry.begin`, the `entry.*` events, `registry.commit` (or `registry.discard`), then
//! `registry.version` — and events that a kind listener publishes while handling an entry
//! (before it answers) arrive before that transition's commit, because the runner waits for
//! the answer before it goes on.

use wippy_rt::{Bus, BusEvent, Value};

use crate::registry::EventSink;

/// Publishes registry events on a bus.
#[derive(Clone, Debug)]
pub struct BusSink {
    bus: Bus,
}

impl BusSink {
    /// A sink publishing on `bus`.
    pub fn new(bus: Bus) -> BusSink {
        BusSink { bus }
    }
}

impl EventSink for BusSink {
    fn publish(&self, system: &str, kind: &str, path: &str, data: Value) {
        self.bus.publish(BusEvent::new(system, kind, path, data));
    }

    fn interested(&self, _system: &str, _kind: &str) -> bool {
        // The supervisor always subscribes to `registry`; skip payload building only when the
        // bus has nobody at all (closed or early in boot).
        !self.bus.is_closed() && self.bus.subscriber_count() > 0
    }
}
