//! Where the registry publishes its events (spec §8.5, system `registry`).
//!
//! The registry does not depend on the event bus: boot plugs the bus in through
//! [`EventSink`]. Published events (all with system `registry`):
//!
//! | kind | path | data |
//! |---|---|---|
//! | `entry.create` / `entry.update` / `entry.delete` | entry id | the entry `{id, kind, meta, data}` |
//! | `registry.begin` / `registry.commit` | `registry.tx/<n>` | nil |
//! | `registry.discard` | `registry.tx/<n>` | the error |
//! | `registry.version` | version id as text | `{version, previous}` |
//!
//! Entry events are informational (bus subscribers such as Lua `events` listeners see them);
//! acceptance goes through [`super::handlers`]. Entries of internal kinds publish nothing.

use std::sync::Mutex;

use wippy_rt::Value;

/// The registry's event system name.
pub const SYSTEM: &str = "registry";

/// A publisher of registry events.
pub trait EventSink: Send + Sync {
    /// Publish one event. Must not block for long (called on the apply path).
    fn publish(&self, system: &str, kind: &str, path: &str, data: Value);

    /// Whether anybody listens for `system:kind`; lets the registry skip building payloads.
    fn interested(&self, _system: &str, _kind: &str) -> bool {
        true
    }
}

/// Drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn publish(&self, _: &str, _: &str, _: &str, _: Value) {}
    fn interested(&self, _: &str, _: &str) -> bool {
        false
    }
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    /// System.
    pub system: String,
    /// Kind.
    pub kind: String,
    /// Path.
    pub path: String,
    /// Payload.
    pub data: Value,
}

/// Records every event in memory (tests, diagnostics).
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: Mutex<Vec<RecordedEvent>>,
}

impl RecordingSink {
    /// An empty recorder.
    pub fn new() -> RecordingSink {
        RecordingSink::default()
    }
    /// Take the recorded events.
    pub fn take(&self) -> Vec<RecordedEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
    /// `kind path` of each recorded event (compact form for assertions).
    pub fn kinds(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|e| format!("{} {}", e.kind, e.path))
            .collect()
    }
}

impl EventSink for RecordingSink {
    fn publish(&self, system: &str, kind: &str, path: &str, data: Value) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(RecordedEvent {
                system: system.into(),
                kind: kind.into(),
                path: path.into(),
                data,
            });
    }
}
