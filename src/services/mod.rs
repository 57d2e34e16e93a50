//! Services layer: kind managers that turn registry entries into running services.
//!
//! * [`host`] — `process.host` entries (process hosts on the shared executor);
//! * [`terminal`] — `terminal.host` entries and running CLI commands on them;
//! * [`sql`] — `db.sql.*` databases, plus the plumbing shared by the data services.
//!
//! Every service module exposes `install(&Arc<System>)`, called by boot during the load phase
//! (before the dispatcher is frozen and before registry entries are loaded).

pub mod host;
pub mod service;
pub mod sql;
pub mod terminal;
