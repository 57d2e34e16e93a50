//! The registry: the runtime's single source of truth (spec `runtime-internals.md` §9).
//!
//! Table of contents:
//! * [`entry`] — `Entry {id, kind, meta, data}` and `Id` (`ns:name`);
//! * [`state`] — the ordered store (O(1) lookup, insertion order);
//! * [`changeset`] — create/update/delete operations with originals, reversal;
//! * [`deps`] — dependency extraction patterns (`meta.server`, `data.imports.*`, …);
//! * [`delta`] — delta building and dependency ordering;
//! * [`mod@squash`] — merging changeset sequences;
//! * [`handlers`] — kind listeners / observers / transaction participants;
//! * [`transition`] — applying a change through the handlers, with rollback;
//! * [`events`] — the [`EventSink`] the registry publishes to;
//! * [`history`] — version tree and backends (memory, none, SQLite);
//! * [`finder`] — criteria queries with an LRU result cache;
//! * [`watch`] — per-entry change observation;
//! * [`instance`] — the [`Registry`] object tying it together;
//! * [`open`] — building a registry from the typed configuration.
//!
//! ```
//! use wippy::registry::{ChangeSet, Entry, Registry};
//! let reg = Registry::default();
//! reg.handlers().add_listener_fn("app.**", "demo", |_ev| Ok(()));
//! let v = reg.apply(ChangeSet::new().create(Entry::new("demo:cfg", "app.config"))).unwrap();
//! assert_eq!(v.id, 1);
//! assert!(reg.get(&"demo:cfg".into()).is_some());
//! ```

pub mod changeset;
pub mod delta;
pub mod deps;
pub mod entry;
pub mod events;
pub mod finder;
pub mod handlers;
pub mod history;
pub mod instance;
pub mod open;
pub mod squash;
pub mod state;
pub mod transition;
pub mod watch;

pub use changeset::{ChangeSet, OpKind, Operation};
pub use delta::{build_delta, sort_changeset};
pub use deps::{Dep, DepResolver};
pub use entry::{Entry, Id};
pub use events::{EventSink, NullSink, RecordingSink};
pub use finder::{Finder, Query};
pub use handlers::{
    EntryEvent, HandlerId, Handlers, Listener, Observer, Reply, TxEvent, TxParticipant, TxPhase,
};
pub use history::{History, MemoryHistory, NoHistory, SqliteHistory, VersionTree};
pub use instance::{Registry, RegistryOptions, Snapshot, Version};
pub use open::{open_history, open_registry};
pub use squash::squash;
pub use state::State;
pub use watch::WatchEvent;
