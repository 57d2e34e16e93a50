//! The transition runner: applying a change through the kind handlers (spec §9.6).
//!
//! Protocol for one transition (a registry change), strictly sequential, one op in flight:
//!
//! 1. `tx = n`, path `registry.tx/N`. Every transaction participant (sorted by id) gets
//!    `Begin` and must accept ("transaction rejected for ID: …" /
//!    "transaction handler timeout after …").
//! 2. For each operation: validate against the working state (§9.3 texts); a delete with an
//!    empty kind takes the kind of the current entry. Internal kinds (`registry.entry`,
//!    `ns.*`, configurable) are applied directly, without events. Otherwise observers see the
//!    event, the matching listeners are offered it, and the runner waits up to
//!    `event_wait_timeout` for the first answer:
//!    * accept → applied to the working state;
//!    * reject → "operation rejected for entry ID: CAUSE";
//!    * no answer in time → "event handler timeout after D for entry ID (kind K)";
//!    * **no listener matches, or every matching listener declined** (dropped its reply):
//!      the entry is accepted as plain data and a warning is logged once per kind. The
//!      original waited 30 s and failed; see `docs/decisions/0021-unhandled-kinds.md`.
//! 3. A rejection of kind `NotFound` is deferred to the next pass ("self-healing order");
//!    passes repeat while they make progress; no progress → "unresolved dependencies after
//!    retry: \[ids\]: LAST CAUSE".
//! 4. Any other failure rolls back: the delta from the working state back to the original is
//!    pushed through the same event path (errors logged), participants get `Discard`, the
//!    sink gets `registry.discard`, and the error is returned. All-or-nothing.
//! 5. Success: participants get `Commit` (a rejection here also rolls back), the sink gets
//!    `registry.commit`.
//!
//! The result is the new state and the operations as applied (in application order, with
//! originals filled in) — exactly what history records.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;
use wippy_rt::{Error, Kind, Value};

use super::changeset::{OpKind, Operation};
use super::delta::build_delta;
use super::deps::DepResolver;
use super::events::{EventSink, SYSTEM};
use super::handlers::{EntryEvent, Handlers, Reply, TxEvent, TxPhase};
use super::state::State;
use crate::config::duration::format_duration;

/// Kinds applied without events by default.
pub const DEFAULT_INTERNAL_KINDS: &[&str] = &[
    "registry.entry",
    "ns.dependency",
    "ns.requirement",
    "ns.definition",
];

/// Everything a transition needs, borrowed from the registry.
pub(crate) struct Runner<'a> {
    pub handlers: &'a Handlers,
    pub sink: &'a dyn EventSink,
    pub resolver: &'a DepResolver,
    pub internal_kinds: &'a [String],
    pub timeout: Duration,
    pub tx_seq: &'a AtomicU64,
    pub warned_kinds: &'a std::sync::Mutex<HashSet<String>>,
}

enum OpError {
    /// A listener rejected (deferrable when the cause is NotFound).
    Rejected(Error),
    /// Anything else.
    Fatal(Error),
}

/// A successful transition.
pub(crate) struct Outcome {
    pub state: State,
    pub applied: Vec<Operation>,
}

impl Runner<'_> {
    /// Run a transition from `state` through `ops`.
    pub fn transition(&self, state: &State, ops: Vec<Operation>) -> Result<Outcome, Error> {
        let tx = self.tx_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let path = format!("registry.tx/{tx}");
        let participants = self.handlers.participants();

        self.publish("registry.begin", &path, || Value::Nil);
        let mut begun = Vec::new();
        for (pid, p) in &participants {
            let (reply, rx) = Reply::pair();
            p.on_tx(
                TxEvent {
                    tx,
                    phase: TxPhase::Begin,
                },
                reply,
            );
            match self.wait(&rx) {
                Some(Ok(())) => begun.push((pid.clone(), p.clone())),
                Some(Err(e)) => {
                    let err = e.wrap(format!("transaction rejected for {pid}"));
                    self.discard(tx, &path, &begun, &err);
                    return Err(err);
                }
                None => {
                    let err = Error::new(
                        Kind::TIMEOUT,
                        format!(
                            "transaction handler timeout after {} for {pid}",
                            format_duration(self.timeout)
                        ),
                    );
                    self.discard(tx, &path, &begun, &err);
                    return Err(err);
                }
            }
        }

        let mut working = state.clone();
        let mut applied = Vec::with_capacity(ops.len());
        let mut pending = ops;
        loop {
            let mut deferred: Vec<(Operation, Error)> = Vec::new();
            let before = applied.len();
            for op in pending {
                match self.apply_one(tx, &mut working, &op) {
                    Ok(done) => applied.push(done),
                    Err(OpError::Rejected(e)) if e.kind() == &Kind::NOT_FOUND => {
                        deferred.push((op, e))
                    }
                    Err(OpError::Rejected(e) | OpError::Fatal(e)) => {
                        self.rollback(tx, &working, state);
                        self.discard(tx, &path, &begun, &e);
                        return Err(e);
                    }
                }
            }
            if deferred.is_empty() {
                break;
            }
            if applied.len() == before {
                let ids: Vec<String> = deferred
                    .iter()
                    .map(|(o, _)| o.entry.id.to_string())
                    .collect();
                let last = &deferred.last().expect("non-empty").1;
                let err = Error::new(
                    Kind::NOT_FOUND,
                    format!(
                        "unresolved dependencies after retry: [{}]: {}",
                        ids.join(", "),
                        last
                    ),
                );
                self.rollback(tx, &working, state);
                self.discard(tx, &path, &begun, &err);
                return Err(err);
            }
            pending = deferred.into_iter().map(|(o, _)| o).collect();
        }

        for (pid, p) in &begun {
            let (reply, rx) = Reply::pair();
            p.on_tx(
                TxEvent {
                    tx,
                    phase: TxPhase::Commit,
                },
                reply,
            );
            let failure = match self.wait(&rx) {
                Some(Ok(())) => None,
                Some(Err(e)) => Some(e.wrap(format!("transaction rejected for {pid}"))),
                None => Some(Error::new(
                    Kind::TIMEOUT,
                    format!(
                        "transaction handler timeout after {} for {pid}",
                        format_duration(self.timeout)
                    ),
                )),
            };
            if let Some(err) = failure {
                self.rollback(tx, &working, state);
                self.discard(tx, &path, &begun, &err);
                return Err(err);
            }
        }
        self.publish("registry.commit", &path, || Value::Nil);
        Ok(Outcome {
            state: working,
            applied,
        })
    }

    fn wait(
        &self,
        rx: &crossbeam_channel::Receiver<Result<(), Error>>,
    ) -> Option<Result<(), Error>> {
        match rx.recv_timeout(self.timeout) {
            Ok(r) => Some(r),
            // The participant dropped its reply: treat as accepted (nothing to object to).
            Err(RecvTimeoutError::Disconnected) => Some(Ok(())),
            Err(RecvTimeoutError::Timeout) => None,
        }
    }

    fn publish(&self, kind: &str, path: &str, data: impl FnOnce() -> Value) {
        if self.sink.interested(SYSTEM, kind) {
            self.sink.publish(SYSTEM, kind, path, data());
        }
    }

    fn is_internal(&self, kind: &str) -> bool {
        self.internal_kinds.iter().any(|k| k == kind)
    }

    fn apply_one(
        &self,
        tx: u64,
        working: &mut State,
        op: &Operation,
    ) -> Result<Operation, OpError> {
        let current = working.get(&op.entry.id).cloned();
        let mut op = op.clone();
        if op.kind == OpKind::Delete
            && let Some(cur) = &current
            && (op.entry.kind.is_empty() || op.entry.kind == cur.kind)
        {
            op.entry = cur.clone();
        }
        working.validate(&op).map_err(OpError::Fatal)?;
        op.original = if op.kind == OpKind::Create {
            None
        } else {
            current
        };
        if !self.is_internal(&op.entry.kind) {
            self.dispatch(tx, &op)?;
        }
        working.apply_op(&op);
        Ok(op)
    }

    fn dispatch(&self, tx: u64, op: &Operation) -> Result<(), OpError> {
        let kind = op.entry.kind.as_str();
        let id = &op.entry.id;
        let event = EntryEvent {
            tx,
            op: op.kind,
            entry: op.entry.clone(),
            original: op.original.clone(),
        };
        self.publish(op.kind.as_str(), &id.to_string(), || op.entry.to_value());
        let matching = self.handlers.matching(kind);
        for o in &matching.observers {
            o.observe(&event);
        }
        if matching.listeners.is_empty() {
            self.warn_unhandled(kind, "no listener is registered for it");
            return Ok(());
        }
        let (tx_reply, rx) = crossbeam_channel::bounded(matching.listeners.len());
        for (_, l) in &matching.listeners {
            l.on_entry(event.clone(), Reply::from_sender(tx_reply.clone()));
        }
        drop(tx_reply);
        match rx.recv_timeout(self.timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(cause)) => Err(OpError::Rejected(
                cause.wrap(format!("operation rejected for entry {id}")),
            )),
            Err(RecvTimeoutError::Disconnected) => {
                self.warn_unhandled(kind, "every listener declined it");
                Ok(())
            }
            Err(RecvTimeoutError::Timeout) => Err(OpError::Fatal(Error::new(
                Kind::TIMEOUT,
                format!(
                    "event handler timeout after {} for entry {id} (kind {kind}; listeners: {})",
                    format_duration(self.timeout),
                    matching
                        .listeners
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))),
        }
    }

    #[cold]
    fn warn_unhandled(&self, kind: &str, why: &str) {
        let mut w = self.warned_kinds.lock().unwrap_or_else(|e| e.into_inner());
        if w.insert(kind.to_string()) {
            log::warn!(target: "wippy::registry", "entries of kind {kind:?} are kept as plain data: {why}");
        }
    }

    /// Push the inverse delta through the handlers; failures are logged, not returned.
    #[cold]
    fn rollback(&self, tx: u64, working: &State, original: &State) {
        let delta = build_delta(working, original, self.resolver);
        let mut w = working.clone();
        for op in delta.ops {
            match self.apply_one(tx, &mut w, &op) {
                Ok(_) => {}
                Err(OpError::Rejected(e) | OpError::Fatal(e)) => {
                    log::error!(target: "wippy::registry", "rollback of {} {} failed: {e}", op.kind, op.entry.id)
                }
            }
        }
    }

    #[cold]
    fn discard(
        &self,
        tx: u64,
        path: &str,
        begun: &[(String, Arc<dyn super::handlers::TxParticipant>)],
        err: &Error,
    ) {
        for (pid, p) in begun {
            let (reply, rx) = Reply::pair();
            p.on_tx(
                TxEvent {
                    tx,
                    phase: TxPhase::Discard(err.clone()),
                },
                reply,
            );
            if let Some(Err(e)) = self.wait(&rx) {
                log::warn!(target: "wippy::registry", "participant {pid} failed to discard: {e}");
            }
        }
        self.publish("registry.discard", path, || Value::from(err.clone()));
    }
}
