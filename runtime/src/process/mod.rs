//! Processes: the contract engines implement, and the cell the runtime keeps for each one.
//!
//! * [`api`] — [`Process`], [`Event`], [`Status`], [`StepOutput`], [`Command`], [`ProcessCx`].
//! * [`state`] — the packed atomic state word and its transition table.
//! * `queue` — the per-process MPSC event queue with generation and close.
//! * `cell` — the process cell (state word + queue + owner-only process object).
//! * [`completer`] — completion handles bound to a cell incarnation.
//! * `table` — the sharded PID → cell map.
//! * [`events`] — CANCEL / EXIT / LINK_DOWN payloads.

pub mod api;
pub(crate) mod cell;
pub mod completer;
pub mod events;
pub(crate) mod queue;
pub mod state;
pub(crate) mod table;

pub use api::{Command, CommandId, Event, Process, ProcessCx, Status, StepOutput, Tag, Upgrade};
pub use completer::Completer;
pub use events::{
    CANCEL, EVENTS_TOPIC, EXIT, INBOX_TOPIC, LINK_DOWN, SHUTDOWN_REASON, cancel_event,
    cancel_package, event_kind, exit_event, exit_package, link_down_event, link_down_package,
    result_value, system_pid, unix_now,
};
pub use state::ProcessState;
