//! Kind handlers: listeners, observers and transaction participants (spec §9.6).
//!
//! Components that own a kind register here *before or after* boot (registration takes a
//! short write lock; a transition snapshots the matching handlers per operation):
//!
//! * a **listener** is keyed by a kind pattern (`http.*`, `function.lua.**`, §8.3 syntax) and
//!   must answer every matching operation through its one-shot [`Reply`]: accept, or reject
//!   with an error. It may answer from another thread (hand the `Reply` to your component's
//!   own loop — [`Handlers::listener_channel`] does exactly that). Dropping the `Reply`
//!   without answering *declines* the operation (the original's "skip" error). If several
//!   listeners match, the first answer wins;
//! * an **observer** sees the same events and never answers;
//! * a **transaction participant** answers `begin` / `commit` / `discard` once per
//!   transition (a registry change), under its unique participant id.
//!
//! The runner waits for an answer with the configured timeout; see
//! [`super::transition`] for what happens when nobody handles a kind.

use std::sync::{Arc, RwLock};

use crossbeam_channel::{Receiver, Sender};
use wippy_rt::Error;
use wippy_rt::wildcard::Pattern;

use super::changeset::OpKind;
use super::entry::Entry;

/// One operation offered to the handlers of its kind.
#[derive(Clone, Debug)]
pub struct EntryEvent {
    /// Transition sequence number (`registry.tx/<tx>`).
    pub tx: u64,
    /// The operation.
    pub op: OpKind,
    /// The new entry (for deletes: the entry being removed).
    pub entry: Arc<Entry>,
    /// The entry being replaced (updates) or removed (deletes).
    pub original: Option<Arc<Entry>>,
}

/// A transaction phase.
#[derive(Clone, Debug)]
pub enum TxPhase {
    /// Before the first operation.
    Begin,
    /// After every operation was accepted.
    Commit,
    /// The transition failed and was rolled back; carries the cause.
    Discard(Error),
}

/// A transaction event offered to participants.
#[derive(Clone, Debug)]
pub struct TxEvent {
    /// Transition sequence number.
    pub tx: u64,
    /// The phase.
    pub phase: TxPhase,
}

/// The one-shot answer channel of an event. Answer at most once; dropping it unanswered
/// declines.
#[derive(Debug)]
pub struct Reply(Sender<Result<(), Error>>);

impl Reply {
    /// A reply and the receiving end (for handler implementations and tests).
    pub fn pair() -> (Reply, Receiver<Result<(), Error>>) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        (Reply(tx), rx)
    }
    pub(crate) fn from_sender(tx: Sender<Result<(), Error>>) -> Reply {
        Reply(tx)
    }
    /// Accept the operation.
    pub fn accept(self) {
        let _ = self.0.try_send(Ok(()));
    }
    /// Reject it with a cause.
    pub fn reject(self, err: Error) {
        let _ = self.0.try_send(Err(err));
    }
    /// Answer with a result.
    pub fn send(self, r: Result<(), Error>) {
        let _ = self.0.try_send(r);
    }
}

/// A kind listener (may reject).
pub trait Listener: Send + Sync + 'static {
    /// Handle one operation; answer through `reply` (now or later, from any thread).
    fn on_entry(&self, event: EntryEvent, reply: Reply);
}

/// A kind observer (never answers).
pub trait Observer: Send + Sync + 'static {
    /// See one operation.
    fn observe(&self, event: &EntryEvent);
}

/// A transaction-aware participant.
pub trait TxParticipant: Send + Sync + 'static {
    /// Handle a phase; answer through `reply` (`Discard` answers are only awaited, errors
    /// there are logged).
    fn on_tx(&self, event: TxEvent, reply: Reply);
}

struct FnListener<F>(F);
impl<F: Fn(&EntryEvent) -> Result<(), Error> + Send + Sync + 'static> Listener for FnListener<F> {
    fn on_entry(&self, event: EntryEvent, reply: Reply) {
        reply.send((self.0)(&event));
    }
}

struct FnObserver<F>(F);
impl<F: Fn(&EntryEvent) + Send + Sync + 'static> Observer for FnObserver<F> {
    fn observe(&self, event: &EntryEvent) {
        (self.0)(event)
    }
}

struct FnParticipant<F>(F);
impl<F: Fn(&TxEvent) -> Result<(), Error> + Send + Sync + 'static> TxParticipant
    for FnParticipant<F>
{
    fn on_tx(&self, event: TxEvent, reply: Reply) {
        reply.send((self.0)(&event));
    }
}

struct ChannelListener(Sender<(EntryEvent, Reply)>);
impl Listener for ChannelListener {
    fn on_entry(&self, event: EntryEvent, reply: Reply) {
        // A closed channel drops the reply: the operation is declined.
        let _ = self.0.send((event, reply));
    }
}

/// Identifies a registration (for [`Handlers::remove`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandlerId(u64);

struct Slot<T: ?Sized> {
    id: HandlerId,
    pattern: Pattern,
    name: String,
    handler: Arc<T>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    listeners: Vec<Slot<dyn Listener>>,
    observers: Vec<Slot<dyn Observer>>,
    participants: Vec<Slot<dyn TxParticipant>>,
}

/// The handler table shared by the registry and the components.
#[derive(Default)]
pub struct Handlers {
    inner: RwLock<Inner>,
}

/// Handlers matching one kind, snapshotted for one operation.
pub(crate) struct Matching {
    pub listeners: Vec<(String, Arc<dyn Listener>)>,
    pub observers: Vec<Arc<dyn Observer>>,
}

impl Handlers {
    /// An empty table.
    pub fn new() -> Handlers {
        Handlers::default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Register a listener for kinds matching `kind_pattern`.
    pub fn add_listener(
        &self,
        kind_pattern: &str,
        name: &str,
        listener: impl Listener,
    ) -> HandlerId {
        let mut g = self.write();
        g.next += 1;
        let id = HandlerId(g.next);
        g.listeners.push(Slot {
            id,
            pattern: Pattern::new(kind_pattern),
            name: name.into(),
            handler: Arc::new(listener),
        });
        id
    }

    /// Register a synchronous listener closure (runs on the registry's apply thread).
    pub fn add_listener_fn<F>(&self, kind_pattern: &str, name: &str, f: F) -> HandlerId
    where
        F: Fn(&EntryEvent) -> Result<(), Error> + Send + Sync + 'static,
    {
        self.add_listener(kind_pattern, name, FnListener(f))
    }

    /// Register a listener whose events arrive on a channel, to be answered by the caller's
    /// own thread. Dropping the receiver declines all further events.
    pub fn listener_channel(
        &self,
        kind_pattern: &str,
        name: &str,
    ) -> (HandlerId, Receiver<(EntryEvent, Reply)>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (
            self.add_listener(kind_pattern, name, ChannelListener(tx)),
            rx,
        )
    }

    /// Register an observer.
    pub fn add_observer(
        &self,
        kind_pattern: &str,
        name: &str,
        observer: impl Observer,
    ) -> HandlerId {
        let mut g = self.write();
        g.next += 1;
        let id = HandlerId(g.next);
        g.observers.push(Slot {
            id,
            pattern: Pattern::new(kind_pattern),
            name: name.into(),
            handler: Arc::new(observer),
        });
        id
    }

    /// Register an observer closure.
    pub fn add_observer_fn<F: Fn(&EntryEvent) + Send + Sync + 'static>(
        &self,
        kind_pattern: &str,
        name: &str,
        f: F,
    ) -> HandlerId {
        self.add_observer(kind_pattern, name, FnObserver(f))
    }

    /// Register a transaction participant under a unique id.
    pub fn add_participant(
        &self,
        participant_id: &str,
        p: impl TxParticipant,
    ) -> Result<HandlerId, Error> {
        let mut g = self.write();
        if g.participants.iter().any(|s| s.name == participant_id) {
            return Err(Error::new(
                wippy_rt::Kind::ALREADY_EXISTS,
                format!("duplicate transaction participant id: {participant_id}"),
            ));
        }
        g.next += 1;
        let id = HandlerId(g.next);
        g.participants.push(Slot {
            id,
            pattern: Pattern::new("**"),
            name: participant_id.into(),
            handler: Arc::new(p),
        });
        Ok(id)
    }

    /// Register a participant closure.
    pub fn add_participant_fn<F>(&self, participant_id: &str, f: F) -> Result<HandlerId, Error>
    where
        F: Fn(&TxEvent) -> Result<(), Error> + Send + Sync + 'static,
    {
        self.add_participant(participant_id, FnParticipant(f))
    }

    /// Remove a registration. Returns false when unknown.
    pub fn remove(&self, id: HandlerId) -> bool {
        let mut g = self.write();
        let before = g.listeners.len() + g.observers.len() + g.participants.len();
        g.listeners.retain(|s| s.id != id);
        g.observers.retain(|s| s.id != id);
        g.participants.retain(|s| s.id != id);
        before != g.listeners.len() + g.observers.len() + g.participants.len()
    }

    /// True when some listener's pattern matches `kind`.
    pub fn has_listener(&self, kind: &str) -> bool {
        self.read()
            .listeners
            .iter()
            .any(|s| s.pattern.matches(kind))
    }

    pub(crate) fn matching(&self, kind: &str) -> Matching {
        let g = self.read();
        Matching {
            listeners: g
                .listeners
                .iter()
                .filter(|s| s.pattern.matches(kind))
                .map(|s| (s.name.clone(), s.handler.clone()))
                .collect(),
            observers: g
                .observers
                .iter()
                .filter(|s| s.pattern.matches(kind))
                .map(|s| s.handler.clone())
                .collect(),
        }
    }

    /// Participants sorted by id.
    pub(crate) fn participants(&self) -> Vec<(String, Arc<dyn TxParticipant>)> {
        let mut v: Vec<_> = self
            .read()
            .participants
            .iter()
            .map(|s| (s.name.clone(), s.handler.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.read();
        f.debug_struct("Handlers")
            .field(
                "listeners",
                &g.listeners
                    .iter()
                    .map(|s| (s.pattern.as_str(), s.name.as_str()))
                    .collect::<Vec<_>>(),
            )
            .field("observers", &g.observers.len())
            .field(
                "participants",
                &g.participants
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
