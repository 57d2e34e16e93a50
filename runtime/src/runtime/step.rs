//! Running one step of a process on a worker, dispatching its yields, and the exit path.
//!
//! # `run_task` (spec §2.5, with the fixes noted inline)
//!
//! 1. Record this worker as the process's affinity (before anything, so racing completions
//!    route here), then CAS READY → RUNNING; failure means a stale entry (the process was
//!    killed by someone who seized it): drop it.
//! 2. A kill flag set while it was queued → exit with the kill error.
//! 3. Drain the event queue into the worker's batch buffer, reset the worker's [`StepOutput`],
//!    call `step` inside `catch_unwind` (a panic becomes an `Internal` exit error).
//! 4. Error → exit. Kill flag set during the step (and not Done) → exit with the kill error.
//! 5. Upgrade requested → close the old object, `init` the new one, requeue.
//! 6. Done → exit with the result. Yields → dispatch each through the dispatcher (a handler
//!    panic is logged; the dropped completer reports "command dropped without completion"),
//!    then leave RUNNING for BLOCKED. Continue → READY at the back of the yield queue
//!    ([`requeue_yielded`]: behind every process woken meanwhile).
//!    Idle → IDLE; Yield → BLOCKED. Leaving RUNNING goes through
//!    [`StateWord::finish_step`](crate::process::state::StateWord::finish_step), which requeues
//!    (LIFO slot) when events arrived during the step.
//!
//! # `finish` (exit path; the caller owns the cell)
//!
//! COMPLETE → close the queue (later pushes rejected, pending events discarded) → remove from
//! the table → `on_complete` hooks (global, then host) → `close()` → release the host slot →
//! deliver the result to a joiner → wake a stop waiter.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::dispatch::DispatchCx;
use crate::error::Error;
use crate::exec::Task;
use crate::exec::worker::{CELL_POOL, WorkerCtx, requeue_yielded};
use crate::process::cell::Cell;
use crate::process::state::{BLOCKED, IDLE, READY};
use crate::process::{Command, Completer, ProcessCx, Status, StepOutput, Tag};
use crate::runtime::Handle;
use crate::sync::Ordering::Relaxed;
use crate::value::Value;

/// Run one step of `cell` on the current worker.
pub(crate) fn run_task(handle: &Handle, ctx: &WorkerCtx, cell: Task) {
    cell.last_worker.store(ctx.index as u32, Relaxed);
    if !cell.state.try_acquire() {
        return;
    }
    if let Some(err) = cell.kill_error() {
        finish(handle, &cell, Err(err));
        retire(ctx, cell);
        return;
    }
    let mut events = ctx.events.take();
    cell.queue.drain_into(&mut events);
    let mut out = ctx.out.take().unwrap_or_default();
    out.reset();
    ctx.outbox.borrow_mut().active = true;
    // SAFETY: `try_acquire` succeeded, so this thread owns the cell until it leaves RUNNING
    // (state.rs invariant 1); the closure does not re-enter `with_owned`.
    let r = unsafe {
        cell.with_owned(|o| {
            let p = o
                .process
                .as_mut()
                .expect("wippy-rt: running process without an object");
            let mut cx = ProcessCx {
                cell: &cell,
                handle,
            };
            catch_unwind(AssertUnwindSafe(|| p.step(&mut cx, &mut events, &mut out)))
        })
    };
    // Only the owner writes `steps` (introspection reads it racily): no locked RMW needed.
    cell.steps.store(cell.steps.load(Relaxed) + 1, Relaxed);
    flush_outbox(ctx);
    events.clear();
    ctx.events.set(events);
    let failed = match r {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(p) => Some(panic_error(p)),
    };
    if let Some(e) = failed {
        recycle(ctx, out);
        finish(handle, &cell, Err(e));
        retire(ctx, cell);
        return;
    }
    if out.status() != Status::Done
        && let Some(err) = cell.kill_error()
    {
        recycle(ctx, out);
        finish(handle, &cell, Err(err));
        retire(ctx, cell);
        return;
    }
    if let Some(up) = out.take_upgrade() {
        recycle(ctx, out);
        upgrade(handle, ctx, &cell, up);
        return;
    }
    let status = out.status();
    if status == Status::Done {
        let res = out.take_result();
        recycle(ctx, out);
        finish(handle, &cell, res);
        retire(ctx, cell);
        return;
    }
    if out.has_yields() {
        let dcx = DispatchCx {
            pid: &cell.pid,
            handle,
            options: &cell.options,
        };
        out.take_yields(|tag, cmd| dispatch_one(handle, &dcx, &cell, tag, cmd));
        recycle(ctx, out);
        if cell.state.finish_step(BLOCKED, || cell.queue.has_events()) {
            requeue_lifo(handle, ctx, cell);
        }
        return;
    }
    recycle(ctx, out);
    match status {
        Status::Continue => {
            if cell.state.finish_step(READY, || cell.queue.has_events()) {
                requeue_yielded(&handle.shared.exec, ctx, cell);
            }
        }
        Status::Idle => {
            if cell.state.finish_step(IDLE, || cell.queue.has_events()) {
                requeue_lifo(handle, ctx, cell);
            }
        }
        Status::Yield | Status::Done => {
            if cell.state.finish_step(BLOCKED, || cell.queue.has_events()) {
                requeue_lifo(handle, ctx, cell);
            }
        }
    }
}

/// Keep an exited cell for reuse if nothing else refers to it (no completer, timer, send
/// cache or introspection snapshot holds it).
#[inline]
fn retire(ctx: &WorkerCtx, mut cell: Task) {
    if ctx.pool.borrow().len() >= CELL_POOL {
        return;
    }
    if let Some(c) = Arc::get_mut(&mut cell) {
        // Drop the old spawn options before touching the pool: their values' destructors are
        // user code and may spawn (which borrows the pool).
        c.retire();
        ctx.pool.borrow_mut().push(cell);
    }
}

/// Push the step's batched messages, one run at a time, in send order.
#[inline]
fn flush_outbox(ctx: &WorkerCtx) {
    let mut runs = ctx.outbox.borrow_mut().take_runs();
    for (cell, batch) in runs.iter_mut() {
        if cell.queue.push_batch(batch) {
            crate::runtime::wake(cell);
        }
    }
    ctx.outbox.borrow_mut().recycle(runs);
}

#[inline]
fn recycle(ctx: &WorkerCtx, mut out: Box<StepOutput>) {
    out.reset();
    ctx.out.set(Some(out));
}

#[inline]
fn requeue_lifo(handle: &Handle, ctx: &WorkerCtx, cell: Task) {
    if let Some(prev) = ctx.lifo.replace(Some(cell)) {
        ctx.local.push(prev);
        handle.shared.exec.notify_work();
    }
}

#[inline]
fn dispatch_one(
    handle: &Handle,
    dcx: &DispatchCx<'_>,
    cell: &Arc<Cell>,
    tag: Tag,
    cmd: Box<dyn Command>,
) {
    let done = Completer::new(cell.clone(), tag);
    let id = cmd.id();
    if catch_unwind(AssertUnwindSafe(|| {
        handle.shared.dispatcher.dispatch(dcx, cmd, done)
    }))
    .is_err()
    {
        log::error!(pid:% = cell.pid, command_id = id; "command handler panicked");
    }
}

fn upgrade(handle: &Handle, ctx: &WorkerCtx, cell: &Arc<Cell>, up: crate::process::Upgrade) {
    let crate::process::Upgrade {
        process: mut newp,
        method,
        input,
    } = up;
    // SAFETY: still RUNNING and owned by this thread (see `run_task`); no re-entry.
    let r = unsafe {
        cell.with_owned(|o| {
            if let Some(mut old) = o.process.take()
                && catch_unwind(AssertUnwindSafe(|| old.close())).is_err()
            {
                log::error!(pid:% = cell.pid; "process close panicked during upgrade");
            }
            let mut cx = ProcessCx { cell, handle };
            let r = catch_unwind(AssertUnwindSafe(|| newp.init(&mut cx, &method, input)));
            o.process = Some(newp);
            r
        })
    };
    match r {
        Ok(Ok(())) => {
            if cell.state.finish_step(READY, || cell.queue.has_events()) {
                ctx.local.push(cell.clone());
                handle.shared.exec.notify_work();
            }
        }
        Ok(Err(e)) => finish(
            handle,
            cell,
            Err(Error::internal(format!("upgrade: init failed: {e}"))),
        ),
        Err(p) => finish(handle, cell, Err(panic_error(p))),
    }
}

/// The exit path. The caller owns the cell (it is RUNNING by this thread).
pub(crate) fn finish(handle: &Handle, cell: &Arc<Cell>, result: Result<Value, Error>) {
    let rt = &handle.shared;
    cell.state.complete();
    let discarded = cell.queue.close();
    if let Some(k) = cell.pid.uniq_num() {
        rt.table.remove(k, cell);
    }
    rt.run_on_complete(cell, &result);
    // SAFETY: COMPLETE can only be left by nobody (no CAS accepts it), so this thread still
    // owns the cell exclusively; no re-entry.
    let (process, exit_tx) = unsafe { cell.with_owned(|o| (o.process.take(), o.exit_tx.take())) };
    if let Some(mut p) = process {
        let pid = &cell.pid;
        if catch_unwind(AssertUnwindSafe(|| {
            p.close();
            drop(p);
        }))
        .is_err()
        {
            log::error!(pid:% = pid; "process close panicked");
        }
    }
    drop(discarded);
    rt.count(false);
    cell.host.release();
    if let Some(tx) = exit_tx {
        let _ = tx.send(result);
    }
    rt.notify_exit(cell);
}

/// Turn a caught panic into the process's exit error.
#[cold]
pub(crate) fn panic_error(p: Box<dyn Any + Send>) -> Error {
    let msg = if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    };
    Error::internal(format!("process panicked: {msg}"))
}
