//! `wippy-rt` — the execution core of wippy.
//!
//! Everything below the application layer that must be fast and correct under concurrency
//! lives here: PIDs, the transferable [`Value`] and structured [`Error`] types, the pinned
//! work-stealing executor and its process cells, the reactor (I/O, timers, signals), the
//! dispatcher table, the relay (node, router, mailbox), the event bus and the sealed
//! application context. No Lua, SQLite or YAML code is compiled into this crate, so loom
//! models run on it cheaply. There is no async runtime: processes are explicit state machines
//! stepped by the workers.
//!
//! # Map
//!
//! | module | what |
//! |---|---|
//! | [`runtime`] | [`Builder`], [`Runtime`], [`Handle`], hosts, lifecycle hooks, stop, stats |
//! | [`process`] | the [`Process`] contract, [`StepOutput`], [`Completer`], state word, event payloads |
//! | `exec` | workers, run queues, parking (see `docs/scheduler.md`) |
//! | [`dispatch`] | command id → [`Handler`] table |
//! | [`reactor`] | mio poll thread: timers, I/O readiness, SIGINT/SIGTERM |
//! | [`relay`] | [`Package`], [`Node`], [`Router`], [`Mailbox`] |
//! | [`bus`] | the event bus |
//! | [`app_context`] | typed write-once service slots |
//! | [`pid`], [`value`], [`error`], [`wildcard`] | shared types |
//!
//! # Example: a native process, a command and a message
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use wippy_rt::*;
//!
//! // A command with id 300 and a handler that doubles its argument (completing inline).
//! struct Double(i64);
//! impl Command for Double {
//!     fn id(&self) -> CommandId { 300 }
//!     fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> { self }
//! }
//! struct DoubleHandler;
//! impl Handler for DoubleHandler {
//!     fn handle(&self, _cx: &DispatchCx<'_>, cmd: Box<dyn Command>, done: Completer) {
//!         let Double(n) = *cmd.into_any().downcast::<Double>().unwrap();
//!         done.complete(Ok(Value::Int(n * 2)));
//!     }
//! }
//!
//! // A process: waits for one message, yields Double(n), finishes with the result.
//! struct Doubler;
//! impl Process for Doubler {
//!     fn init(&mut self, _cx: &mut ProcessCx<'_>, _m: &str, _in: Vec<Value>) -> Result<(), Error> {
//!         Ok(())
//!     }
//!     fn step(&mut self, _cx: &mut ProcessCx<'_>, events: &mut Vec<Event>, out: &mut StepOutput) -> Result<(), Error> {
//!         for ev in events.drain(..) {
//!             match ev {
//!                 Event::Message(pkg) => {
//!                     let n = pkg.payloads[0].as_i64().unwrap_or(0);
//!                     out.yield_command(1, Box::new(Double(n)));
//!                     return Ok(());
//!                 }
//!                 Event::Complete { tag: 1, result } => {
//!                     out.finish(result);
//!                     return Ok(());
//!                 }
//!                 _ => {}
//!             }
//!         }
//!         out.set_status(Status::Idle);
//!         Ok(())
//!     }
//! }
//!
//! let rt = Builder::new().workers(2).pin(false).build().unwrap();
//! let h = rt.handle();
//! h.dispatcher().register(300, "example", Arc::new(DoubleHandler));
//! h.dispatcher().freeze();
//! h.add_host("app:processes", HostConfig::default()).unwrap();
//! let (pid, exit) = h
//!     .spawn_watched("app:processes", Box::new(Doubler), "main", vec![], SpawnOptions::default())
//!     .unwrap();
//! assert_eq!(pid.as_str(), "{app:processes|0x00001}");
//! h.send(Package::new(Pid::zero(), pid, "@pid/inbox", vec![Value::Int(21)])).unwrap();
//! assert_eq!(exit.wait().unwrap(), Value::Int(42));
//! rt.shutdown(Duration::from_secs(1));
//! ```

pub mod app_context;
pub mod bus;
pub mod dispatch;
pub mod error;
pub(crate) mod exec;
pub mod pid;
pub mod process;
pub mod reactor;
pub mod relay;
pub mod runtime;
pub(crate) mod sync;
pub(crate) mod sys;
pub mod value;
pub mod wildcard;

#[cfg(all(test, loom))]
mod tests;

pub use app_context::{AppContext, Key};
pub use bus::{Bus, BusEvent, Subscription};
pub use dispatch::{DispatchCx, Dispatcher, Handler};
pub use error::{Error, Kind, Result};
pub use pid::{Pid, PidGen};
pub use process::{
    Command, CommandId, Completer, Event, Process, ProcessCx, ProcessState, Status, StepOutput, Tag,
};
pub use reactor::{IoHandle, Ready, ReadyEvent, TimerHandle};
pub use relay::{Attach, Mailbox, MailboxConfig, Node, Package, Receiver, Router};
pub use runtime::{
    Builder, ExitWatch, Handle, HostConfig, Lifecycle, ProcessInfo, Runtime, RuntimeStats,
    SpawnOptions, StopReport, WorkerStats,
};
pub use value::{Bytes, Value};
