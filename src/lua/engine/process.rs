//! [`LuaProcess`]: a Lua process or function call implementing the executor's process
//! contract (spec `runtime-internals.md` §11.2–§11.3).
//!
//! # Init
//! A *process* acquires a warm state from the factory with the modules of its import plan,
//! runs its libraries (binding their return values under their aliases), runs the entry chunk
//! once and resolves the method (a returned function, or `table[method]`, else
//! `method "<m>" not found in module`). A *function call* gets a pool worker whose chunk already
//! ran. Either way the method becomes the main task, with the input converted to Lua values as
//! its arguments. Top-level code runs on the spawner's thread, as upstream.
//!
//! # Step
//! 1. Completions resume their waiting tasks (values converted per operation); messages are
//!    appended to the mailbox.
//! 2. Rounds until nothing is runnable: flush the mailbox into subscriptions (a LINK_DOWN
//!    without `trap_links` fails the process with "linked process failed"); resume queued
//!    tasks in FIFO order, each until it yields; apply the operation each one asked for
//!    (channel operations were already resolved by their callbacks and only queue tasks;
//!    `coroutine.spawn` queues the new task before the spawner; timers, calls, exec and jobs
//!    register a completion tag). A task preempted by the budget hook goes back to the head of
//!    the queue and the step ends at once (`Continue`), so the worker serves others.
//! 3. The main task returning ends the process: the first value is the result, a second value
//!    that is a string or an error object makes it fail (§3.2); other tasks are dropped. An
//!    uncaught error in any task fails the process, with the Lua traceback as the error stack.
//! 4. Otherwise the status is: `Continue` if tasks are runnable (bare `coroutine.yield()`
//!    tasks run again next step), `Yield` while completions are outstanding, `Idle` while
//!    subscriptions exist or tasks wait on channels, else the deadlock error
//!    `deadlock: all coroutines blocked with no pending operations (threads=N)`.
//!
//! # Close
//! Callees of outstanding calls are terminated (caller cancellation cancels the call), every
//! Lua reference held by the core is dropped, timers are cancelled, and the state returns to
//! the factory (processes) or the pool (function calls, which also receive their reply here).

use std::sync::Arc;

use mlua::{Function, Lua, Value as LuaValue};
use wippy_rt::{Error, Event, Kind, Process, ProcessCx, Status, StepOutput, Value};

use super::code::LuaEntry;
use super::core::{Conv, Core, CoreBox, Enter, Op, Wait};
use super::mailbox;
use super::pool::{self as fnpool, FnPool, ReplySlot, Started, Worker};
use super::preempt::{self, StepClock};
use super::shared::Engine;
use super::task::{self, Outcome};
use crate::lua::convert;
use crate::lua::modules::{self, errors};
use crate::lua::vm::LuaState;
use crate::system::CallRequest;
use crate::system::process_manager::context_of;

/// Preemptions after which a process is reported (warning with PID and traceback) as a likely
/// runaway: ≈ 1 s of CPU at the default 500 µs slice. A single preemption is normal for
/// CPU-heavy work with short slices and is only logged at debug level.
const RUNAWAY_REPORT_AFTER: u32 = 2000;

/// What a [`LuaProcess`] keeps beside its state and core, boxed (see `LuaProcess::mode`).
enum Mode {
    /// A process before its `init`.
    Start(ProcessStart),
    /// A function call.
    Call(FnCall),
}

/// The call of a `mode`, if it is a function call.
fn call_of(mode: &mut Option<Box<Mode>>) -> Option<&mut FnCall> {
    match mode.as_deref_mut() {
        Some(Mode::Call(call)) => Some(call),
        _ => None,
    }
}

/// What a process needs until its `init`.
struct ProcessStart {
    entry_id: String,
    /// Carried over from the process this one upgrades: undelivered mailbox and trap_links.
    inherit: Option<(std::collections::VecDeque<wippy_rt::Package>, bool)>,
}

/// The parts of a function call (see [`Mode::Call`]).
struct FnCall {
    pool: Arc<FnPool>,
    /// Boxed, like `req`: a worker (its Lua state, core and spare thread) is ~200 bytes and
    /// goes back to the pool on its own.
    worker: Option<Box<Worker>>,
    req: Option<Box<CallRequest>>,
    reply: ReplySlot,
    /// `init` ran (a call dropped before it leaves its result to the spawner).
    inited: bool,
    /// The call's result, delivered to the caller on `close`.
    outcome: Option<Result<Value, Error>>,
    /// Operations asked for during the inline first step, which has no [`ProcessCx`] to
    /// start them with: applied at the start of the first scheduled step.
    deferred: Vec<(u32, Op)>,
    /// The main thread after it returned: handed back to the worker for the next call (a
    /// finished Lua thread is reset instead of allocating a new one).
    spare: Option<mlua::Thread>,
}

/// A Lua process or function call (see the module docs).
///
/// Layout: an idle process keeps this box for its life, so everything only a function call
/// or a starting process needs lives behind one optional box, `mode` (the whole struct is
/// 128 bytes, exactly a mimalloc size class; it was 296).
pub struct LuaProcess {
    engine: Arc<Engine>,
    /// `Call` for a function call (for its life); `Start` for a process until its `init`,
    /// then `None` — a running process pays 8 bytes for what it needed only to start.
    mode: Option<Box<Mode>>,
    st: Option<LuaState>,
    core: Option<CoreBox>,
    preemptions: u32,
    closed: bool,
}

impl LuaProcess {
    /// A process running entry `entry_id`.
    pub(crate) fn process(engine: Arc<Engine>, entry_id: &str) -> LuaProcess {
        LuaProcess {
            engine,
            mode: Some(Box::new(Mode::Start(ProcessStart {
                entry_id: entry_id.to_string(),
                inherit: None,
            }))),
            st: None,
            core: None,
            preemptions: 0,
            closed: false,
        }
    }

    /// One call of a pooled function on `worker`.
    pub(crate) fn call(
        engine: Arc<Engine>,
        pool: Arc<FnPool>,
        worker: Worker,
        req: CallRequest,
        reply: ReplySlot,
    ) -> LuaProcess {
        LuaProcess {
            engine,
            mode: Some(Box::new(Mode::Call(FnCall {
                pool,
                worker: Some(Box::new(worker)),
                req: Some(Box::new(req)),
                reply,
                inited: false,
                outcome: None,
                deferred: Vec::new(),
                spare: None,
            }))),
            st: None,
            core: None,
            preemptions: 0,
            closed: false,
        }
    }

    fn init_process(
        &mut self,
        cx: &mut ProcessCx<'_>,
        start: ProcessStart,
        method: &str,
        input: Vec<Value>,
    ) -> Result<(), Error> {
        let entry_id = start.entry_id.as_str();
        let entry = self.engine.code.get(entry_id).ok_or_else(|| {
            Error::new(Kind::NOT_FOUND, format!("factory not found: {entry_id}"))
                .with_detail("id", entry_id)
        })?;
        let plan = self.engine.code.plan(&entry)?;
        let names: Vec<&str> = plan.modules.iter().map(String::as_str).collect();
        let mut st = self.engine.factory.acquire(&names)?;
        let core = CoreBox::new(Core::new(
            st.lua().clone(),
            self.engine.clone(),
            cx.handle().clone(),
            cx.pid().clone(),
            entry.clone(),
            Arc::new(context_of(cx.options())),
        ));
        core.borrow_mut().terminal = super::modules::io::terminal_for(&self.engine, cx);
        if let Some((mailbox, trap)) = start.inherit {
            let mut c = core.borrow_mut();
            c.trap_links = trap;
            mailbox::inherit(&mut c, mailbox);
        }
        let r = prepare_state(&mut st, &core, &entry, &plan, Some(cx.pid().clone())).and_then(
            |module| {
                let func = resolve_method(&module, method)?;
                start_main(st.lua(), &core, func, &input)
            },
        );
        match r {
            Ok(()) => {
                self.st = Some(st);
                self.core = Some(core);
                Ok(())
            }
            Err(e) => {
                core.borrow_mut().teardown();
                drop(core);
                self.engine.factory.release(st);
                Err(e)
            }
        }
    }

    fn init_function(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), Error> {
        let Some(call) = call_of(&mut self.mode) else {
            unreachable!("init_function on a process");
        };
        let FnCall {
            pool,
            worker,
            req,
            inited,
            outcome,
            ..
        } = call;
        *inited = true;
        let req = req.take().map(|r| *r).unwrap_or_default();
        let w = worker.as_mut().expect("function call without a worker");
        w.state
            .set_process(Some(cx.pid().clone()), Some(pool.entry.id_arc.clone()));
        let mut context = req.context;
        if context.is_empty() {
            context = context_of(cx.options());
        }
        // The core of the worker's previous call, renewed, or a new one.
        let core = match w.core.take() {
            Some(core) => {
                core.borrow_mut().renew(cx.pid().clone(), Arc::new(context));
                core
            }
            None => CoreBox::new(Core::new(
                w.state.lua().clone(),
                self.engine.clone(),
                cx.handle().clone(),
                cx.pid().clone(),
                pool.entry.clone(),
                Arc::new(context),
            )),
        };
        let r = {
            let _e = Enter::new(core.cell());
            let lua = w.state.lua();
            // A finished thread of an earlier call: reset with the method on it.
            let thread = match w.spare.take() {
                Some(t) if t.reset(w.method.clone()).is_ok() => Ok(t),
                _ => lua.create_thread(w.method.clone()).map_err(vm_error),
            };
            thread.and_then(|t| start_task(lua, &core, t, &req.args))
        };
        self.core = Some(core);
        if let Err(e) = &r {
            *outcome = Some(Err(e.clone()));
        }
        r
    }

    /// The pool of a function call.
    pub(crate) fn call_pool(&self) -> Option<&Arc<FnPool>> {
        match self.mode.as_deref() {
            Some(Mode::Call(call)) => Some(&call.pool),
            _ => None,
        }
    }

    /// The inline first step of a function call (see `pool.rs`, "Inline first step"), run
    /// by the pool host's `on_start` hook: the PID is routable, the process not yet queued.
    /// Operations that need a [`ProcessCx`] are deferred to the first scheduled step.
    /// Returns the call's result when it ended (the hook then aborts the spawn).
    pub(crate) fn inline_step(&mut self) -> Option<Result<Value, Error>> {
        let LuaProcess {
            engine,
            mode,
            core,
            preemptions,
            ..
        } = self;
        let FnCall {
            worker,
            outcome,
            deferred,
            spare,
            ..
        } = call_of(mode)?;
        let lua = worker.as_ref()?.state.lua();
        let core = core.as_ref()?;
        let _enter = Enter::new(core.cell());
        let _clock = StepClock::begin();
        let result = match run(engine, lua, core, None, None, preemptions, deferred) {
            Ok(Flow::Preempted | Flow::Status(_)) => return None,
            Ok(Flow::Done(result)) => {
                *spare = main_thread(core);
                result.map_err(|e| errors::normalize_boundary(&e))
            }
            Ok(Flow::Upgrade) => Err(Error::internal("upgrade: only processes can be upgraded")),
            Err(e) => Err(errors::normalize_boundary(&e)),
        };
        *outcome = Some(result.clone());
        Some(result)
    }

    /// Deliver the recorded outcome to a function caller and return the worker.
    fn finish_function(&mut self) {
        let Some(FnCall {
            pool,
            worker,
            reply,
            inited,
            outcome,
            spare,
            ..
        }) = call_of(&mut self.mode)
        else {
            return;
        };
        if !*inited {
            // Dropped before `init` (the spawn failed): the spawner reports its error.
            pool.finish(worker.take().map(|w| *w), true);
            return;
        }
        let outcome = outcome
            .take()
            .unwrap_or_else(|| Err(Error::internal("process terminated")));
        let healthy = !matches!(&outcome, Err(e) if e.message() == "process terminated");
        fnpool::deliver(reply, outcome);
        if let Some(w) = worker.as_mut() {
            w.spare = spare.take();
        }
        pool.finish(worker.take().map(|w| *w), healthy);
    }
}

/// Resume tasks until nothing is runnable; see the module docs.
fn run(
    engine: &Arc<Engine>,
    lua: &Lua,
    core: &CoreBox,
    mut cx: Option<&mut ProcessCx<'_>>,
    out: Option<&mut StepOutput>,
    preemptions: &mut u32,
    deferred: &mut Vec<(u32, Op)>,
) -> Result<Flow, Error> {
    let cell = core.cell();
    loop {
        {
            let mut c = cell.borrow_mut();
            // SAFETY: the step loop: `lua` is this process's state and `c` its core.
            unsafe { mailbox::flush(lua, &mut c) }.map_err(vm_error)?;
            if c.link_down {
                return Err(Error::internal("linked process failed"));
            }
        }
        loop {
            let next = {
                let mut c = cell.borrow_mut();
                let mut next = None;
                while let Some(t) = c.queue.pop_front() {
                    if c.tasks.get(t).is_none() {
                        continue;
                    }
                    c.current = t;
                    c.pending = None;
                    let task = c.tasks.get_mut(t).expect("checked above");
                    if task.send_closed {
                        task.send_closed = false;
                        let e = errors::error_value(
                            lua,
                            Error::new(Kind::UNKNOWN, "send on closed channel"),
                        )
                        .map_err(vm_error)?;
                        task.args.clear();
                        task.args.push(LuaValue::Nil);
                        task.args.push(e);
                    }
                    let th = task.thread.state();
                    let raw_n = std::mem::take(&mut task.nargs);
                    // SAFETY: `th` is the task's thread, kept alive by the task table; this
                    // is the step loop inside the process's `Enter` guard, so the core current
                    // on this thread is this process's and `lua` is its state (the unlocked
                    // access of `core.rs` invariant 4).
                    let n = raw_n
                        + unsafe { task::push_args(lua, th, &mut task.args) }.map_err(vm_error)?;
                    next = Some((t, th, n));
                    break;
                }
                next
            };
            let Some((tid, th, n)) = next else {
                break;
            };
            // SAFETY: the task stays in the core's table while it runs (tasks are removed only
            // after they return, or at teardown after the step), so `th` is alive; as for
            // `push_args` above, `lua` is the state of the process stepped on this thread.
            match unsafe { task::resume(lua, th, n) }.map_err(vm_error)? {
                Outcome::Op(n) => {
                    let op = cell.borrow_mut().pending.take();
                    if n > 0 {
                        if let Some(Op::Requeued) = op {
                            if let Some(t) = cell.borrow_mut().tasks.get_mut(tid) {
                                t.nargs += n;
                            }
                        } else {
                            // SAFETY: `th` is alive (see above); drop unexpected values.
                            unsafe { mlua::ffi::lua_pop(th, n) };
                        }
                    }
                    match cx.as_deref_mut() {
                        Some(cx) => apply_op(engine, lua, cx, core, tid, op)?,
                        None => defer_op(lua, core, tid, op, deferred)?,
                    }
                    if cell.borrow().upgrade.is_some() {
                        return Ok(Flow::Upgrade);
                    }
                }
                Outcome::Bare => cell.borrow_mut().bare.push(tid),
                Outcome::Preempted => {
                    cell.borrow_mut().queue.push_front(tid);
                    *preemptions += 1;
                    if *preemptions == 1 {
                        let c = cell.borrow();
                        log::debug!(
                            pid:% = c.pid, entry = c.entry.id.as_str();
                            "lua process preempted at the end of its time slice"
                        );
                    }
                    if *preemptions == RUNAWAY_REPORT_AFTER {
                        let thread = cell.borrow().tasks.get(tid).map(|t| t.thread.clone());
                        let tb = thread
                            .map(|t| task::suspended_traceback(lua, &t))
                            .unwrap_or_default();
                        let c = cell.borrow();
                        log::warn!(
                            pid:% = c.pid, entry = c.entry.id.as_str(), traceback = tb.as_str();
                            "lua process has run for many time slices without blocking (runaway?); preempted"
                        );
                    }
                    return Ok(Flow::Preempted);
                }
                Outcome::Returned(vals) => {
                    let is_main = cell.borrow().main == tid;
                    if is_main {
                        return Ok(Flow::Done(main_result(lua, &vals)));
                    }
                    cell.borrow_mut().tasks.remove(tid);
                }
                Outcome::Failed { value, traceback } => {
                    let mut e = errors::raised_value_to_rt(lua, &value);
                    if e.stack().is_none() && !traceback.is_empty() {
                        e = e.with_stack(traceback);
                    }
                    return Err(e);
                }
            }
        }
        let again = {
            let mut c = cell.borrow_mut();
            if !c.mailbox.pending() {
                false
            } else {
                // SAFETY: as above.
                unsafe { mailbox::flush(lua, &mut c) }.map_err(vm_error)?;
                if c.link_down {
                    return Err(Error::internal("linked process failed"));
                }
                !c.queue.is_empty()
            }
        };
        if !again {
            break;
        }
    }
    let mut c = cell.borrow_mut();
    let bare = std::mem::take(&mut c.bare);
    c.queue.extend(bare);
    // Without an output (an inline first step) the commands wait for the first real step.
    if let Some(out) = out {
        for (tag, cmd) in c.commands.drain(..) {
            out.yield_command(tag, cmd);
        }
    }
    if !c.queue.is_empty() {
        return Ok(Flow::Status(Status::Continue));
    }
    if !c.waits.is_empty() || !deferred.is_empty() {
        return Ok(Flow::Status(Status::Yield));
    }
    if !c.subs.is_empty() || c.parked > 0 {
        return Ok(Flow::Status(Status::Idle));
    }
    Err(Error::internal(format!(
        "deadlock: all coroutines blocked with no pending operations (threads={})",
        c.tasks.len()
    )))
}

enum Flow {
    Done(Result<Value, Error>),
    Preempted,
    Status(Status),
    Upgrade,
}

/// Bind modules and libraries into the state, then run the entry chunk and return its value.
pub(crate) fn prepare_state(
    st: &mut LuaState,
    core: &CoreBox,
    entry: &LuaEntry,
    plan: &super::code::Plan,
    pid: Option<wippy_rt::Pid>,
) -> Result<LuaValue, Error> {
    let lua = st.lua().clone();
    if plan.needs_type_runtime {
        install_type_runtime(&lua)?;
    }
    st.set_process(pid, Some(entry.id_arc.clone()));
    for (alias, m) in &plan.module_aliases {
        let v = modules::module_value(&lua, m)
            .map_err(vm_error)?
            .unwrap_or(LuaValue::Nil);
        st.bind_global(alias, v)?;
    }
    let _e = Enter::new(core.cell());
    let _clock = StepClock::begin();
    let main = lua.exec_raw_lua(|raw| raw.state());
    let prev = preempt::set_running(main);
    let r = (|| {
        for (lib, aliases) in &plan.libraries {
            let f = st.load_shared_chunk(&lib.id_arc, &lib.code)?;
            let v = call_protected(&lua, &f)?;
            if !v.is_nil() {
                for a in aliases {
                    st.bind_global(a, v.clone())?;
                }
            }
        }
        let chunk = st.load_shared_chunk(&entry.id_arc, &entry.code)?;
        call_protected(&lua, &chunk)
    })();
    preempt::restore_running(prev);
    r
}

/// Install the typed-Lua type runtime into a state (once; it lives in the state's base).
fn install_type_runtime(lua: &Lua) -> Result<(), Error> {
    let present: bool = lua
        .globals()
        .raw_get::<LuaValue>(crate::lua::frontend::TYPES_ENTRY_GLOBAL)
        .map(|v| !v.is_nil())
        .unwrap_or(false);
    if present {
        return Ok(());
    }
    crate::lua::frontend::install_type_runtime(lua).map_err(vm_error)
}

/// Call `f` with no arguments in protected mode; its first result, or the raised error.
///
/// A direct `lua_pcall` (not a Lua `pcall` wrapper closure, not mlua's `Function::call`, which
/// keeps only the string form of a raised non-mlua value): raised values such as error objects
/// reach [`errors::raised_value_to_rt`] intact, and nothing is allocated per call.
fn call_protected(lua: &Lua, f: &Function) -> Result<LuaValue, Error> {
    // SAFETY: `exec_raw` pushes `f` and runs the closure in protected mode. `lua_pcall`
    // replaces `f` by exactly one value (its first result, or the error value) and never
    // longjmps past this frame; the boolean is pushed and moved below it, leaving two results
    // (`ok, value`). LUA_MINSTACK free slots cover the one extra push.
    let r: (bool, LuaValue) = unsafe {
        lua.exec_raw(f, |state| {
            let status = mlua::ffi::lua_pcall(state, 0, 1, 0);
            mlua::ffi::lua_pushboolean(state, (status == mlua::ffi::LUA_OK) as std::ffi::c_int);
            mlua::ffi::lua_insert(state, -2);
        })
    }
    .map_err(|e| errors::lua_error_to_rt(&e))?;
    match r {
        (true, v) => Ok(v),
        (false, v) => Err(errors::raised_value_to_rt(lua, &v)),
    }
}

/// The entry point: a returned function, or `module[method]`.
pub(crate) fn resolve_method(module: &LuaValue, method: &str) -> Result<Function, Error> {
    match module {
        LuaValue::Function(f) => Ok(f.clone()),
        LuaValue::Table(t) => match t.raw_get::<LuaValue>(method) {
            Ok(LuaValue::Function(f)) => Ok(f),
            _ => Err(method_not_found(method)),
        },
        _ => Err(method_not_found(method)),
    }
}

#[cold]
fn method_not_found(method: &str) -> Error {
    Error::new(
        Kind::NOT_FOUND,
        format!("method \"{method}\" not found in module"),
    )
}

/// Create the main task for `func` with `input` as its arguments.
fn start_main(lua: &Lua, core: &CoreBox, func: Function, input: &[Value]) -> Result<(), Error> {
    let thread = lua.create_thread(func).map_err(vm_error)?;
    start_task(lua, core, thread, input)
}

/// Make `thread` (with its function pushed) the main task, with `input` as its arguments.
fn start_task(
    lua: &Lua,
    core: &CoreBox,
    thread: mlua::Thread,
    input: &[Value],
) -> Result<(), Error> {
    let args: Vec<LuaValue> = input
        .iter()
        .map(|v| convert::to_lua(lua, v))
        .collect::<mlua::Result<_>>()
        .map_err(vm_error)?;
    let mut c = core.borrow_mut();
    let id = c.add_task(thread, args);
    c.main = id;
    Ok(())
}

/// The main task's thread (it just returned: reusable for the next call of a function).
fn main_thread(core: &CoreBox) -> Option<mlua::Thread> {
    let c = core.cell().borrow();
    c.tasks.get(c.main).map(|t| t.thread.clone())
}

/// §3.2: the first value is the result; a second value that is a string or error fails.
fn main_result(lua: &Lua, vals: &[LuaValue]) -> Result<Value, Error> {
    let _ = lua;
    if let Some(second) = vals.get(1)
        && let Some(e) = errors::returned_error_to_rt(second)
    {
        return Err(e);
    }
    match vals.first() {
        None => Ok(Value::Nil),
        Some(v) => convert::from_lua(v),
    }
}

/// An inline first step (no [`ProcessCx`]): apply what needs none now, keep the rest (its
/// task stays waiting) for the first scheduled step.
fn defer_op(
    lua: &Lua,
    core: &CoreBox,
    tid: u32,
    op: Option<Op>,
    deferred: &mut Vec<(u32, Op)>,
) -> Result<(), Error> {
    match op {
        Some(op @ (Op::Sleep(_) | Op::Call(_) | Op::Exec(_) | Op::Job(..))) => {
            deferred.push((tid, op));
            Ok(())
        }
        op => apply_nocx(lua, core, tid, op),
    }
}

/// The operations that need no [`ProcessCx`].
fn apply_nocx(lua: &Lua, core: &CoreBox, tid: u32, op: Option<Op>) -> Result<(), Error> {
    let Some(op) = op else {
        // The marker without an operation cannot happen; treat it as a bare yield.
        core.borrow_mut().bare.push(tid);
        return Ok(());
    };
    match op {
        Op::Queued | Op::Requeued | Op::Park => {}
        Op::Upgrade(source, input) => core.borrow_mut().upgrade = Some((source, input)),
        Op::Spawn(f) => {
            let th = lua.create_thread(f).map_err(vm_error)?;
            let mut c = core.borrow_mut();
            c.add_task(th.clone(), Vec::new());
            c.wake(tid, vec![LuaValue::Thread(th)]);
        }
        Op::Command(cmd, conv) => {
            let mut c = core.borrow_mut();
            let tag = c.tag();
            c.waits.insert(tag, Wait { task: tid, conv });
            c.commands.push((tag, cmd));
        }
        Op::Sleep(_) | Op::Call(_) | Op::Exec(_) | Op::Job(..) => {
            unreachable!("operations needing a process context are deferred")
        }
    }
    Ok(())
}

/// Apply the operation a task asked for (see [`Op`]).
fn apply_op(
    engine: &Arc<Engine>,
    lua: &Lua,
    cx: &mut ProcessCx<'_>,
    core: &CoreBox,
    tid: u32,
    op: Option<Op>,
) -> Result<(), Error> {
    let op = match op {
        Some(op @ (Op::Sleep(_) | Op::Call(_) | Op::Exec(_) | Op::Job(..))) => op,
        op => return apply_nocx(lua, core, tid, op),
    };
    match op {
        Op::Sleep(deadline) => {
            let mut c = core.borrow_mut();
            let tag = c.tag();
            c.waits.insert(
                tag,
                Wait {
                    task: tid,
                    conv: Conv::Nothing,
                },
            );
            drop(c);
            cx.handle().sleep(deadline, cx.completer(tag));
        }
        Op::Call(req) => {
            let tag = {
                let mut c = core.borrow_mut();
                let tag = c.tag();
                c.waits.insert(
                    tag,
                    Wait {
                        task: tid,
                        conv: Conv::ValueOrError,
                    },
                );
                tag
            };
            // A call that ends during its start (pool.rs, "Inline first step") resumes the
            // task in this step; otherwise its completion arrives as an event.
            match fnpool::call_from_step(engine, *req, || {
                fnpool::Reply::Completer(cx.completer(tag))
            }) {
                Started::Done(r) => complete(lua, &mut core.borrow_mut(), tag, r)?,
                Started::Running(pid) => {
                    core.borrow_mut().callees.insert(tag, pid);
                }
                Started::Waiting => {}
            }
        }
        Op::Exec(req) => {
            let tag = core.borrow_mut().tag();
            core.borrow_mut().waits.insert(
                tag,
                Wait {
                    task: tid,
                    conv: Conv::ValueOrError,
                },
            );
            if let Err(e) = engine.pm.exec(*req, cx.completer(tag)) {
                let mut c = core.borrow_mut();
                c.waits.remove(&tag);
                let ev = errors::error_value(lua, e).map_err(vm_error)?;
                c.wake(tid, vec![LuaValue::Nil, ev]);
            }
        }
        Op::Job(job, conv) => {
            let mut c = core.borrow_mut();
            let tag = c.tag();
            c.waits.insert(tag, Wait { task: tid, conv });
            drop(c);
            let done = cx.completer(tag);
            super::jobs::submit(Box::new(move || {
                done.complete(job());
            }))?;
        }
        _ => unreachable!("filtered above"),
    }
    Ok(())
}

/// Resume the task waiting for `tag` with the converted `result`.
fn complete(lua: &Lua, c: &mut Core, tag: u64, result: Result<Value, Error>) -> Result<(), Error> {
    let Some(w) = c.waits.remove(&tag) else {
        return Ok(());
    };
    c.callees.remove(&tag);
    let args = match w.conv {
        Conv::Nothing => Vec::new(),
        Conv::ValueOrError => match result {
            Ok(v) => vec![convert::to_lua(lua, &v).map_err(vm_error)?, LuaValue::Nil],
            Err(e) => vec![
                LuaValue::Nil,
                errors::error_value(lua, e).map_err(vm_error)?,
            ],
        },
        Conv::Custom(f) => f(lua, result).map_err(vm_error)?,
    };
    c.wake(w.task, args);
    Ok(())
}

/// The process replacing this one after `process.upgrade`: same PID (the runtime keeps the
/// cell and its event queue), the undelivered mailbox and `trap_links` carried over; links,
/// monitors and names live in the topology under the PID and stay. Subscriptions, channels
/// and coroutines of the old code end with it.
fn upgraded(
    engine: &Arc<Engine>,
    is_call: bool,
    core: &CoreBox,
) -> Result<(LuaProcess, String, Vec<Value>), Error> {
    if is_call {
        return Err(Error::internal("upgrade: only processes can be upgraded"));
    }
    let mut c = core.borrow_mut();
    let (source, input) = c.upgrade.take().unwrap_or((None, Vec::new()));
    let source = source
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| c.entry.id.clone());
    let entry = engine
        .code
        .get(&source)
        .filter(|e| e.kind == super::code::LuaKind::Process)
        .ok_or_else(|| Error::internal(format!("upgrade: no factory: {source}")))?;
    let mut next = LuaProcess::process(engine.clone(), &source);
    if let Some(Mode::Start(start)) = next.mode.as_deref_mut() {
        start.inherit = Some((mailbox::take_all(&mut c), c.trap_links));
    }
    Ok((next, entry.method.clone(), input))
}

#[cold]
pub(crate) fn vm_error(e: mlua::Error) -> Error {
    errors::lua_error_to_rt(&e)
}

impl Process for LuaProcess {
    fn init(
        &mut self,
        cx: &mut ProcessCx<'_>,
        method: &str,
        input: Vec<Value>,
    ) -> Result<(), Error> {
        match self.mode.take().map(|m| *m) {
            Some(Mode::Start(start)) => self.init_process(cx, start, method, input),
            Some(call @ Mode::Call(_)) => {
                self.mode = Some(Box::new(call));
                self.init_function(cx)
            }
            None => Err(Error::internal("init ran twice")),
        }
    }

    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        events: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        let LuaProcess {
            engine,
            mode,
            st,
            core,
            preemptions,
            ..
        } = self;
        // A process never defers (it always has a context); an empty `Vec` allocates nothing.
        let mut no_deferred = Vec::new();
        let mut call = call_of(mode);
        let is_call = call.is_some();
        let (state, deferred) = match &mut call {
            None => (
                st.as_ref().expect("process state after init"),
                &mut no_deferred,
            ),
            Some(FnCall {
                worker, deferred, ..
            }) => (&worker.as_ref().expect("worker after init").state, deferred),
        };
        let lua = state.lua();
        let core = core.as_ref().expect("core after init");
        let _enter = Enter::new(core.cell());
        let _clock = StepClock::begin();
        {
            let mut c = core.borrow_mut();
            for ev in events.drain(..) {
                match ev {
                    Event::Complete { tag, result } => complete(lua, &mut c, tag, result)?,
                    Event::Message(pkg) => mailbox::enqueue(&mut c, pkg),
                }
            }
        }
        if !deferred.is_empty() {
            // Operations from an inline first step (function calls only).
            for (tid, op) in std::mem::take(deferred) {
                apply_op(engine, lua, cx, core, tid, Some(op))?;
            }
        }
        match run(
            engine,
            lua,
            core,
            Some(cx),
            Some(out),
            preemptions,
            deferred,
        ) {
            Ok(Flow::Done(result)) => {
                let result = result.map_err(|e| errors::normalize_boundary(&e));
                if let Some(call) = call {
                    call.spare = main_thread(core);
                    call.outcome = Some(result.clone());
                }
                out.finish(result);
                Ok(())
            }
            Ok(Flow::Preempted) => {
                out.set_status(Status::Continue);
                Ok(())
            }
            Ok(Flow::Upgrade) => {
                let (next, method, input) = upgraded(engine, is_call, core)?;
                out.upgrade(Box::new(next), method, input);
                Ok(())
            }
            Ok(Flow::Status(s)) => {
                if out.yield_count() == 0 {
                    out.set_status(s);
                }
                Ok(())
            }
            Err(e) => {
                let e = errors::normalize_boundary(&e);
                if let Some(call) = call {
                    call.outcome = Some(Err(e.clone()));
                }
                Err(e)
            }
        }
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Some(core) = self.core.take() {
            if let Some(call) = call_of(&mut self.mode)
                && let Some(w) = &mut call.worker
            {
                // Torn down in place and kept by the worker for its next call.
                {
                    let mut c = core.borrow_mut();
                    for (_, pid) in c.callees.drain() {
                        self.engine.terminate(&pid);
                    }
                    c.teardown();
                }
                w.core = Some(core);
            } else {
                let mut c = core.into_inner();
                for (_, pid) in c.callees.drain() {
                    self.engine.terminate(&pid);
                }
                c.teardown();
            }
        }
        if call_of(&mut self.mode).is_some() {
            self.finish_function();
        } else if let Some(st) = self.st.take() {
            self.engine.factory.release(st);
        }
    }
}

impl Drop for LuaProcess {
    fn drop(&mut self) {
        // A process whose spawn failed before `init` is dropped without `close`: give the
        // worker back to its pool (the pool reports the spawn error to the caller).
        if !self.closed {
            self.close();
        }
    }
}

// An idle process keeps its `LuaProcess` for life: keep it within mimalloc's 128-byte class.
const _: () = assert!(std::mem::size_of::<LuaProcess>() <= 128);
