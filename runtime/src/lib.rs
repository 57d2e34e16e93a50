//! `wippy-rt` — the execution core of wippy.
//!
//! Everything below the application layer that must be fast and correct under concurrency
//! lives here: PIDs, the transferable [`Value`](value::Value) and structured
//! [`Error`](error::Error) types, the pinned work-stealing executor and its process cells,
//! the reactor (I/O, timers, signals), the dispatcher table, the relay (node, router, mailbox),
//! the event bus and the sealed application context. No Lua, SQLite or YAML code is compiled
//! into this crate, so loom models run on it cheaply.

pub mod error;
pub mod pid;
pub mod value;
pub mod wildcard;

pub use error::{Error, Kind, Result};
pub use pid::{Pid, PidGen};
pub use value::{Bytes, Value};
