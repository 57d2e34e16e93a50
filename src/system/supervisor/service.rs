//! The service contract (spec `runtime-internals.md` §6.2) and the context a running service
//! reports through.
//!
//! Upstream's `Start(ctx) → (status channel, error)` becomes a callback handle: a service's
//! `start` returns once it runs and keeps the [`ServiceCtx`] to report later events —
//! [`ServiceCtx::exited`] (finished on its own: never restarted), [`ServiceCtx::failed`]
//! (crashed: restarted per policy unless the error is terminal), [`ServiceCtx::update`]
//! (status details). No thread or channel per service is needed, which is what lets the
//! supervisor run 10 000 services.
//!
//! Every report carries the incarnation it belongs to, so a late report of a previous run can
//! never disturb the current one.
//!
//! **Terminal errors** ([`is_terminal`]) are never retried: an explicit non-retryable error
//! (`retryable = false`), "service terminated", "service exited", and a cancelled context.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Instant;

use crossbeam_channel::Sender;
use wippy_rt::{Error, Kind};

use super::engine::Op;

/// A supervised service (`process.host`, `process.service`, HTTP servers, …).
pub trait Service: Send + Sync + 'static {
    /// Start the service; return once it runs (or failed to). Called on a supervisor pool
    /// thread; may block, but the supervisor gives up after `start_timeout` (the context is
    /// then cancelled and a late success is stopped again). Keep `ctx` to report the end of
    /// the run.
    ///
    /// # Errors
    /// The start failure; terminal errors ([`is_terminal`]) are not retried.
    fn start(&self, ctx: ServiceCtx) -> Result<(), Error>;

    /// Stop the running incarnation, returning by `deadline` (the supervisor stops waiting
    /// there anyway). Stopping a service that already ended must succeed.
    ///
    /// # Errors
    /// The stop failure (recorded in the status details).
    fn stop(&self, deadline: Instant) -> Result<(), Error>;
}

/// What a service reports about its current run.
#[derive(Clone, Debug)]
pub(crate) enum Report {
    /// Finished on its own (normal): status `exited`, no restart.
    Exited,
    /// Crashed: restart per policy unless terminal.
    Failed(Error),
    /// New status details.
    Details(String),
}

/// The handle a service reports through (cheap to clone).
#[derive(Clone)]
pub struct ServiceCtx {
    pub(crate) id: Arc<str>,
    pub(crate) generation: u64,
    pub(crate) tx: Sender<Op>,
    pub(crate) cancelled: Arc<AtomicBool>,
}

impl std::fmt::Debug for ServiceCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCtx")
            .field("id", &self.id)
            .field("generation", &self.generation)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl ServiceCtx {
    /// The service id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The incarnation number (one per start attempt).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// True once the supervisor abandoned this incarnation (stop requested or start timed
    /// out).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(SeqCst)
    }

    fn report(&self, r: Report) {
        let _ = self.tx.send(Op::Report {
            id: self.id.clone(),
            generation: self.generation,
            report: r,
        });
    }

    /// The run ended normally: `exited`, never restarted.
    pub fn exited(&self) {
        self.report(Report::Exited)
    }

    /// The run crashed with `err`: restarted per policy unless `err` is terminal.
    pub fn failed(&self, err: Error) {
        self.report(Report::Failed(err))
    }

    /// Report the end of the run from a result: `Ok` → [`exited`](Self::exited), `Err` →
    /// [`failed`](Self::failed).
    pub fn finished(&self, r: Result<(), Error>) {
        match r {
            Ok(()) => self.exited(),
            Err(e) => self.failed(e),
        }
    }

    /// Update the status details shown by the CLI and in `service.update` events.
    pub fn update(&self, details: impl Into<String>) {
        self.report(Report::Details(details.into()))
    }
}

/// "service terminated": a terminal error for services killed on purpose.
#[cold]
pub fn terminated_error() -> Error {
    Error::new(Kind::CANCELED, "service terminated").with_retryable(Some(false))
}

/// "service exited": the terminal marker of a normal exit.
#[cold]
pub fn exited_error() -> Error {
    Error::new(Kind::INTERNAL, "service exited").with_retryable(Some(false))
}

/// True when `err` must not be retried (see the module docs).
pub fn is_terminal(err: &Error) -> bool {
    err.retryable() == Some(false)
        || matches!(err.message(), "service terminated" | "service exited")
        || (err.kind() == &Kind::CANCELED && err.message() == "context canceled")
}
