//! Completion handles.
//!
//! A [`Completer`] is the write end of one yielded command: it carries the target cell, the
//! cell's generation at creation time and the correlation tag. Completing pushes
//! `Event::Complete { tag, result }` into the process's queue *only if* the cell is still in the
//! same incarnation and open; otherwise the result is silently dropped (the process is gone or
//! the slot was reused). A completer dropped without completing delivers an `Internal` error
//! "command dropped without completion", so a buggy handler can never leave a process blocked
//! forever.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::pid::Pid;
use crate::process::cell::Cell;
use crate::process::{Event, Tag};
use crate::value::Value;

/// See the module docs. `Send + 'static`: complete from any thread.
pub struct Completer {
    cell: Option<Arc<Cell>>,
    epoch: u32,
    tag: Tag,
}

impl Completer {
    pub(crate) fn new(cell: Arc<Cell>, tag: Tag) -> Completer {
        let epoch = cell.queue.generation();
        Completer {
            cell: Some(cell),
            epoch,
            tag,
        }
    }

    /// The correlation tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The PID of the process waiting for this completion.
    pub fn pid(&self) -> &Pid {
        // `cell` is only taken by `complete`/drop, which consume self.
        &self
            .cell
            .as_ref()
            .expect("completer used after completion")
            .pid
    }

    /// True while the target incarnation is alive (a hint: it may exit right after).
    pub fn is_alive(&self) -> bool {
        self.cell
            .as_ref()
            .is_some_and(|c| !c.state.is_complete() && c.queue.generation() == self.epoch)
    }

    /// Deliver the result. Returns false when it was dropped because the process exited or the
    /// slot was reused.
    pub fn complete(mut self, result: Result<Value, Error>) -> bool {
        let cell = self.cell.take().expect("completer used after completion");
        deliver(&cell, self.epoch, self.tag, result)
    }
}

fn deliver(cell: &Arc<Cell>, epoch: u32, tag: Tag, result: Result<Value, Error>) -> bool {
    match cell
        .queue
        .push_completion(epoch, Event::Complete { tag, result })
    {
        Ok(()) => {
            crate::runtime::wake(cell);
            true
        }
        Err(_) => false,
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            deliver(&cell, self.epoch, self.tag, Err(dropped_error()));
        }
    }
}

#[cold]
fn dropped_error() -> Error {
    Error::internal("command dropped without completion")
}

impl fmt::Debug for Completer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Completer");
        if let Some(c) = &self.cell {
            d.field("pid", &c.pid);
        }
        d.field("tag", &self.tag)
            .field("generation", &self.epoch)
            .finish()
    }
}
