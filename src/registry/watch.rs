//! Observation of single entries: `watch(id)` returns a channel that receives one
//! [`WatchEvent`] per committed change of that id (applies, version jumps, boot loads).
//! Receivers that were dropped are pruned on the next notification.

use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};
use fnv::FnvHashMap;

use super::changeset::{OpKind, Operation};
use super::entry::{Entry, Id};

/// A committed change of a watched entry.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    /// The registry version after the change.
    pub version: u64,
    /// What happened.
    pub op: OpKind,
    /// The entry after the change (for deletes: the removed entry).
    pub entry: Arc<Entry>,
}

/// Watchers keyed by entry id.
#[derive(Debug, Default)]
pub struct Watchers {
    map: Mutex<FnvHashMap<Id, Vec<Sender<WatchEvent>>>>,
}

impl Watchers {
    /// Subscribe to changes of `id`.
    pub fn watch(&self, id: Id) -> Receiver<WatchEvent> {
        let (tx, rx) = crossbeam_channel::unbounded();
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_default()
            .push(tx);
        rx
    }

    /// Deliver the applied operations of a new version.
    pub fn notify(&self, version: u64, ops: &[Operation]) {
        let mut g = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_empty() {
            return;
        }
        for op in ops {
            if let Some(list) = g.get_mut(&op.entry.id) {
                list.retain(|tx| {
                    tx.send(WatchEvent {
                        version,
                        op: op.kind,
                        entry: op.entry.clone(),
                    })
                    .is_ok()
                });
                if list.is_empty() {
                    g.remove(&op.entry.id);
                }
            }
        }
    }
}
