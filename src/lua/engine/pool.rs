//! Function pools: warm Lua states for `function.lua` entries and call dispatch (spec
//! `runtime-internals.md` §11.8).
//!
//! A pool keeps *workers* — Lua states whose entry chunk already ran (so module-level state
//! persists between the calls a worker serves, as upstream) with the method resolved — and a
//! limit on how many calls run at once. Each call runs as a process (a [`LuaProcess`] in
//! function mode) on the pool's own host `<id>#lua.<n>`, so it has a PID, can block, use
//! timers and futures, be monitored and be preempted like any process; its result goes to the
//! caller's reply when it ends, and the worker returns to the pool. A call from a Lua process
//! that ends in its first step never gets further than its spawn (see "Inline first step"
//! below).
//!
//! Pool types and selection (upstream `component/function/pool.go`):
//!
//! | `pool.type` | limit | workers |
//! |---|---|---|
//! | `inline` | 1 (calls serialised) | created on first call |
//! | `static` | `workers` or `size` or 8 | all created when the pool is built |
//! | `lazy` | `max_size` or 16 | created on demand, destroyed after 30 s idle |
//! | `adaptive` | starts at the worker count, scales between 1 and `max_size` (16) | on demand |
//! | none | `workers == 0 && (size == 0 \|\| max_size > 0)` → lazy with `max_size` or 100; `workers > 0` → static; else inline |
//!
//! Calls beyond the limit wait in FIFO order (a caller is a suspended process, so waiting is
//! the original's "block when the queue is full"). The adaptive controller runs every
//! [`EngineConfig::pool_tick`](super::EngineConfig): at full use with waiting calls the limit
//! grows by 25 % (at least one), below half use with no waiting calls it shrinks by one.
//! Unknown types are rejected: `unknown pool type: <t>`.
//!
//! Updating a function builds a new pool (new host generation); the old one is *retired*:
//! queued calls and new calls to it fail with `pool not found: <id>`, running calls finish,
//! and its host is removed when the last one ends. A worker built from code older than the
//! store's current epoch (a library changed) is dropped instead of reused.
//!
//! Cancellation: a Lua caller terminates the callee process when the caller ends first; a
//! queued call whose caller is gone is skipped.
//!
//! # Inline first step (`funcs.call` from a Lua process)
//!
//! A call made by a Lua process's `funcs.call` that gets a worker at once is spawned in
//! *inline* mode (`InlineCall`): after the runtime has registered the call (PID routable,
//! global `on_start` hooks — topology — done), the pool host's own `on_start` hook, which the
//! runtime runs synchronously on the spawning thread inside the caller's step, runs the call's
//! first step. When the function returns without blocking — the common case — the hook
//! records the result and fails on purpose, so the runtime rolls the spawn back: the call is
//! never queued on a worker, never wakes another thread, and the caller's task resumes with
//! the result in the same step. When the function blocks or is preempted, the hook succeeds
//! and the call continues as an ordinary process under the same PID. Operations that need the
//! process context (timers, calls, `exec`, jobs) are deferred from the inline step to the
//! first scheduled step; messages, spawns and channels work as usual (the PID is routable).
//!
//! The result and the caller's reply meet in a `ReplySlot` (whichever arrives second
//! delivers), so the reply is only built when the call outlives its spawn. A rolled-back
//! spawn runs no `on_complete` hooks; `FnPool::inline_exit` does what the system's would
//! (topology completion: EXIT/LINK_DOWN to watchers and links, names dropped; SQL resources
//! released). Messages the inline step sent may sit in the caller's step's write-combining
//! buffer until that step ends, so a call that continues as a process waits for it at its
//! first scheduled step (`InlineCall::step`): nothing it sends later overtakes them.
//!
//! Invariants: the hook runs the inline step holding the call's lock (a killer on another
//! thread waits for the step, as for any running step; a close on the same thread is left to
//! the hook); exactly one of the hook's rollback and the runtime's exit closes the call and
//! delivers its result. A worker keeps its last call's torn-down core and finished main thread
//! for the next call. Decision note 0100.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use mlua::Function;
use wippy_rt::process::{CANCEL, EVENTS_TOPIC, event_kind};
use wippy_rt::{
    Completer, Error, Event, HostConfig, Kind, Pid, Process, ProcessCx, SpawnOptions, Status,
    StepOutput, TimerHandle, Value,
};

use super::code::{LuaEntry, LuaKind};
use super::core::{Core, CoreBox};
use super::process::{LuaProcess, prepare_state, resolve_method};
use super::shared::Engine;
use crate::lua::vm::LuaState;
use crate::system::process_manager::ATTR_CONTEXT;
use crate::system::{CallRequest, FunctionHandler};

/// The default `max_size` of an automatically selected lazy pool.
pub const DEFAULT_AUTO_MAX: usize = 100;
/// The default `max_size` of explicit lazy and adaptive pools.
pub const DEFAULT_MAX: usize = 16;
/// The default static pool size.
pub const DEFAULT_STATIC: usize = 8;

thread_local! {
    /// The inline call whose `init` just ran on this thread, for the pool host's `on_start`
    /// hook (which runs next, on the same thread, inside the same spawn).
    static HANDOFF: RefCell<Option<(Pid, Arc<InlineShared>)>> = const { RefCell::new(None) };
    /// The inline call whose first step runs on this thread (see [`InlineCall::close`]).
    static RUNNING: Cell<*const InlineShared> = const { Cell::new(std::ptr::null()) };
    /// The runtime closed the running inline call (killed by its own step).
    static CLOSE_PENDING: Cell<bool> = const { Cell::new(false) };
}

/// How a call started (see [`call_from_step`]).
pub(crate) enum Started {
    /// Running as a process with this PID; the reply gets the result.
    Running(Pid),
    /// Queued, or handled elsewhere; the reply gets the result.
    Waiting,
    /// Finished during the start (inline first step, or failed to start); no reply was built.
    Done(Result<Value, Error>),
}

/// Where a call's result meets its reply (see the module docs): whichever comes second
/// delivers.
pub(crate) enum Rendezvous {
    /// Neither yet (an inline call whose spawn has not returned).
    Empty,
    /// The reply, waiting for the result.
    Reply(Reply),
    /// The result, waiting for the reply (or for the spawner to take it).
    Result(Result<Value, Error>),
    /// Delivered.
    Done,
}

/// The shared rendezvous of one call (the process delivers into it, the pool reads it back
/// when the spawn ends).
pub(crate) type ReplySlot = Arc<Mutex<Rendezvous>>;

fn lock_slot(slot: &ReplySlot) -> std::sync::MutexGuard<'_, Rendezvous> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// The call ended with `r`: send it to the reply, or leave it for the spawner.
pub(crate) fn deliver(slot: &ReplySlot, r: Result<Value, Error>) {
    let mut g = lock_slot(slot);
    match std::mem::replace(&mut *g, Rendezvous::Done) {
        Rendezvous::Reply(reply) => {
            drop(g);
            reply.send(r);
        }
        Rendezvous::Empty => *g = Rendezvous::Result(r),
        // A second result cannot happen (the process delivers once); keep the first.
        other => *g = other,
    }
}

/// The tables the system's exit hooks clean up (see [`FnPool::inline_exit`]).
struct ExitTables {
    topology: Option<Arc<crate::system::topology::Topology>>,
    owners: Option<Arc<crate::services::sql::owners::Owners>>,
}

impl ExitTables {
    fn of(handle: &wippy_rt::Handle) -> ExitTables {
        ExitTables {
            topology: crate::system::topology::Topology::of(handle),
            owners: crate::services::sql::owners::of(handle),
        }
    }
}

/// Where a call's result goes.
pub(crate) enum Reply {
    /// A Lua caller's completion tag.
    Completer(Completer),
    /// A Rust caller.
    Boxed(crate::system::Reply),
}

impl Reply {
    /// Deliver the result.
    pub fn send(self, r: Result<Value, Error>) {
        match self {
            Reply::Completer(c) => {
                c.complete(r);
            }
            Reply::Boxed(f) => f(r),
        }
    }
    /// False when the caller is known to be gone.
    fn is_alive(&self) -> bool {
        match self {
            Reply::Completer(c) => c.is_alive(),
            Reply::Boxed(_) => true,
        }
    }
}

/// A warm state of a function entry.
pub(crate) struct Worker {
    /// The state (entry chunk already ran).
    pub state: LuaState,
    /// The method.
    pub method: Function,
    /// The main thread of the last call, when it returned (reset for the next call).
    pub spare: Option<mlua::Thread>,
    /// The torn-down core of the last call (renewed for the next one).
    pub core: Option<CoreBox>,
    /// Code store epoch it was built at.
    epoch: u64,
    /// Last time it finished a call.
    last_used: Instant,
}

impl Worker {
    /// The state, the worker's other Lua references dropped first (the state may go to
    /// another thread once released).
    fn into_state(self) -> LuaState {
        let Worker {
            state,
            method,
            spare,
            core,
            ..
        } = self;
        drop((core, spare, method));
        state
    }
}

/// Pool flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// One call at a time.
    Inline,
    /// Fixed size, created eagerly.
    Static,
    /// On demand, reaped when idle.
    Lazy,
    /// On demand, limit adjusted by throughput.
    Adaptive,
}

/// A pool's configuration after the selection rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    /// The flavour.
    pub kind: PoolKind,
    /// Maximum concurrent calls (workers).
    pub max: usize,
}

fn int_field(pool: &Value, key: &str) -> Result<usize, Error> {
    match pool.get(key) {
        None | Some(Value::Nil) => Ok(0),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 0 => Ok(n as usize),
            _ => Err(Error::invalid(format!(
                "pool.{key} must be a non-negative integer"
            ))),
        },
    }
}

/// Apply the selection rules to an entry's `pool:` map.
pub fn pool_spec(pool: &Value) -> Result<PoolSpec, Error> {
    if !pool.is_nil() && pool.as_map().is_none() {
        return Err(Error::invalid("pool must be a map"));
    }
    let workers = int_field(pool, "workers")?;
    let size = int_field(pool, "size")?;
    let max_size = int_field(pool, "max_size")?;
    let ty = match pool.get("type") {
        None | Some(Value::Nil) => None,
        Some(Value::Str(s)) if s.is_empty() => None,
        Some(Value::Str(s)) => Some(s.to_string_lossy().into_owned()),
        Some(_) => return Err(Error::invalid("pool.type must be a string")),
    };
    let spec = match ty.as_deref() {
        Some("inline") => PoolSpec {
            kind: PoolKind::Inline,
            max: 1,
        },
        Some("lazy") => PoolSpec {
            kind: PoolKind::Lazy,
            max: if max_size == 0 { DEFAULT_MAX } else { max_size },
        },
        Some("static") => PoolSpec {
            kind: PoolKind::Static,
            max: [workers, size, DEFAULT_STATIC]
                .into_iter()
                .find(|n| *n > 0)
                .unwrap_or(DEFAULT_STATIC),
        },
        Some("adaptive") => PoolSpec {
            kind: PoolKind::Adaptive,
            max: if max_size == 0 { DEFAULT_MAX } else { max_size },
        },
        Some(other) => return Err(Error::invalid(format!("unknown pool type: {other}"))),
        None if workers == 0 && (size == 0 || max_size > 0) => PoolSpec {
            kind: PoolKind::Lazy,
            max: if max_size == 0 {
                DEFAULT_AUTO_MAX
            } else {
                max_size
            },
        },
        None if workers > 0 => PoolSpec {
            kind: PoolKind::Static,
            max: workers,
        },
        None => PoolSpec {
            kind: PoolKind::Inline,
            max: 1,
        },
    };
    Ok(spec)
}

struct Queued {
    req: CallRequest,
    reply: Reply,
}

struct State {
    idle: Vec<Worker>,
    /// Workers in existence (idle + busy + being created).
    live: usize,
    /// Calls running.
    busy: usize,
    queue: VecDeque<Queued>,
    retired: bool,
    /// Current concurrency limit (adaptive pools move it; others keep `spec.max`).
    limit: usize,
}

/// A function entry's pool (see the module docs).
pub struct FnPool {
    engine: Weak<Engine>,
    /// The function entry.
    pub entry: Arc<LuaEntry>,
    /// The host its calls run on.
    pub host: String,
    spec: PoolSpec,
    st: Mutex<State>,
    /// Cached once the application context is sealed (nothing can be installed later).
    exits: OnceLock<ExitTables>,
}

impl std::fmt::Debug for FnPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnPool")
            .field("entry", &self.entry.id)
            .field("host", &self.host)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl FnPool {
    /// Build the pool of `entry` and register its host. Static pools create their workers now
    /// (a worker that fails to build is logged and retried on demand).
    pub(crate) fn new(engine: &Arc<Engine>, entry: Arc<LuaEntry>) -> Result<Arc<FnPool>, Error> {
        debug_assert_eq!(entry.kind, LuaKind::Function);
        let spec = pool_spec(&entry.pool).map_err(|e| {
            Error::invalid(format!("{}: {}", entry.id, e.message()))
                .with_detail("entry", entry.id.as_str())
        })?;
        let n = engine.host_seq.fetch_add(1, Ordering::SeqCst) + 1;
        let host = format!("{}#lua.{n}", entry.id);
        engine.sys.handle.add_host(
            &host,
            HostConfig {
                lifecycle: Some(Arc::new(InlineHook)),
                ..HostConfig::default()
            },
        )?;
        let limit = match spec.kind {
            PoolKind::Adaptive => engine.sys.handle.workers().clamp(1, spec.max),
            _ => spec.max,
        };
        let pool = Arc::new(FnPool {
            engine: Arc::downgrade(engine),
            entry,
            host,
            spec,
            st: Mutex::new(State {
                idle: Vec::new(),
                live: 0,
                busy: 0,
                queue: VecDeque::new(),
                retired: false,
                limit,
            }),
            exits: OnceLock::new(),
        });
        if spec.kind == PoolKind::Static {
            for _ in 0..spec.max {
                match pool.create_worker(engine) {
                    Ok(w) => {
                        let mut g = pool.lock();
                        g.live += 1;
                        g.idle.push(w);
                    }
                    Err(e) => {
                        log::error!(entry = pool.entry.id.as_str(), error:% = e; "function worker failed to start");
                        break;
                    }
                }
            }
        }
        Ok(pool)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pool's configuration.
    pub fn spec(&self) -> PoolSpec {
        self.spec
    }

    /// `(live workers, running calls, queued calls, current limit)`.
    pub fn stats(&self) -> (usize, usize, usize, usize) {
        let g = self.lock();
        (g.live, g.busy, g.queue.len(), g.limit)
    }

    /// Build a worker: a state with the entry's plan applied and its chunk run once.
    fn create_worker(&self, engine: &Arc<Engine>) -> Result<Worker, Error> {
        let epoch = engine.code.epoch();
        let plan = engine.code.plan(&self.entry)?;
        let names: Vec<&str> = plan.modules.iter().map(String::as_str).collect();
        let mut st = engine.factory.acquire(&names)?;
        let core = CoreBox::new(Core::new(
            st.lua().clone(),
            engine.clone(),
            engine.sys.handle.clone(),
            Pid::zero(),
            self.entry.clone(),
            Arc::new(Vec::new()),
        ));
        let r = prepare_state(&mut st, &core, &self.entry, &plan, None)
            .and_then(|module| resolve_method(&module, &self.entry.method));
        core.borrow_mut().teardown();
        drop(core);
        match r {
            Ok(method) => Ok(Worker {
                state: st,
                method,
                spare: None,
                core: None,
                epoch,
                last_used: Instant::now(),
            }),
            Err(e) => {
                engine.factory.release(st);
                Err(e)
            }
        }
    }

    /// Start a call; returns the callee PID when it started at once.
    pub(crate) fn call(self: &Arc<Self>, req: CallRequest, reply: Reply) -> Option<Pid> {
        match self.start(req, move || reply, false) {
            Started::Running(pid) => Some(pid),
            Started::Waiting => None,
            // Not inline: results and start failures went to the reply.
            Started::Done(_) => None,
        }
    }

    /// Start a call. `inline` asks for the inline first step (module docs); `reply` is only
    /// built when the call does not end during its start (a non-inline start always builds
    /// it, and then never returns [`Started::Done`]).
    pub(crate) fn start(
        self: &Arc<Self>,
        req: CallRequest,
        reply: impl FnOnce() -> Reply,
        inline: bool,
    ) -> Started {
        let Some(engine) = self.engine.upgrade() else {
            return fail(inline, reply, super::shared::no_engine());
        };
        let mut g = self.lock();
        if g.retired {
            drop(g);
            return fail(inline, reply, self.pool_gone());
        }
        let current = engine.code.epoch();
        while let Some(w) = g.idle.pop() {
            if w.epoch == current || self.entry_unchanged(&engine) {
                g.busy += 1;
                drop(g);
                return self.run(&engine, w, req, reply, inline);
            }
            g.live -= 1;
            engine.factory.release(w.into_state());
        }
        if g.live < g.limit {
            g.live += 1;
            g.busy += 1;
            drop(g);
            return match self.create_worker(&engine) {
                Ok(w) => self.run(&engine, w, req, reply, inline),
                Err(e) => {
                    let mut g = self.lock();
                    g.live -= 1;
                    g.busy -= 1;
                    drop(g);
                    fail(inline, reply, e)
                }
            };
        }
        g.queue.push_back(Queued {
            req,
            reply: reply(),
        });
        Started::Waiting
    }

    /// True when nothing in the store affects this pool's code since its workers were built
    /// (the store epoch moves on any change; the pool is rebuilt when its own entry changes,
    /// so only its libraries matter).
    fn entry_unchanged(&self, engine: &Engine) -> bool {
        match engine.code.plan(&self.entry) {
            Ok(plan) => plan.libraries.is_empty(),
            Err(_) => false,
        }
    }

    /// What the exit hooks would do for an inline execution that ended during its spawn
    /// (rolled back, so they do not run): complete its PID in the topology (EXIT to monitors,
    /// LINK_DOWN to links on failure, edges dropped), drop its names, release the SQL
    /// resources it owned. Each is an atomic load when its table holds nothing.
    pub(crate) fn inline_exit(&self, pid: &Pid, result: &Result<Value, Error>) {
        let fresh;
        let t = match self.exits.get() {
            Some(t) => t,
            None => {
                let Some(engine) = self.engine.upgrade() else {
                    return;
                };
                let h = &engine.sys.handle;
                fresh = ExitTables::of(h);
                if h.app_context().is_sealed() {
                    self.exits.get_or_init(|| ExitTables::of(h))
                } else {
                    &fresh
                }
            }
        };
        if let Some(topo) = &t.topology {
            topo.names().remove(pid);
            topo.graph().complete(pid, result);
        }
        if let Some(o) = &t.owners {
            o.release_all(pid);
        }
    }

    #[cold]
    fn pool_gone(&self) -> Error {
        Error::new(
            Kind::NOT_FOUND,
            format!("pool not found: {}", self.entry.id),
        )
        .with_detail("target", self.entry.id.as_str())
    }

    /// Spawn the call process for `worker` (inline: also run its first step, module docs).
    fn run(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        worker: Worker,
        req: CallRequest,
        reply: impl FnOnce() -> Reply,
        inline: bool,
    ) -> Started {
        let mut reply = Some(reply);
        let slot: ReplySlot = Arc::new(Mutex::new(if inline {
            Rendezvous::Empty
        } else {
            Rendezvous::Reply((reply.take().expect("reply builder"))())
        }));
        let mut attrs = Vec::new();
        if !req.context.is_empty() {
            attrs.push((
                ATTR_CONTEXT.to_string(),
                Value::Map(
                    req.context
                        .iter()
                        .map(|(k, v)| (Value::str(k), v.clone()))
                        .collect(),
                ),
            ));
        }
        let opts = SpawnOptions {
            parent: req.caller.clone(),
            source: Some(self.entry.id.clone()),
            attrs,
            ..SpawnOptions::default()
        };
        let p = LuaProcess::call(engine.clone(), self.clone(), worker, req, slot.clone());
        let p: Box<dyn Process> = if inline {
            Box::new(InlineCall {
                shared: Arc::new(InlineShared {
                    call: Mutex::new(p),
                    gate: Mutex::new(None),
                }),
                stash: Vec::new(),
            })
        } else {
            Box::new(p)
        };
        let spawned = engine
            .sys
            .handle
            .spawn(&self.host, p, &self.entry.method, Vec::new(), opts);
        if inline {
            // Not taken when the spawn failed between `init` and the hook.
            HANDOFF.with(|h| h.borrow_mut().take());
        }
        let mut g = lock_slot(&slot);
        let state = std::mem::replace(&mut *g, Rendezvous::Done);
        match (spawned, state) {
            // Ended in its first step (or `init` failed): the result is the call's.
            (Err(_), Rendezvous::Result(r)) => Started::Done(r),
            // The spawn itself failed.
            (Err(e), Rendezvous::Empty) => Started::Done(Err(e)),
            (Err(e), Rendezvous::Reply(r)) => {
                drop(g);
                r.send(Err(e));
                Started::Waiting
            }
            (Ok(pid), Rendezvous::Empty) => {
                *g = Rendezvous::Reply((reply.take().expect("reply builder"))());
                Started::Running(pid)
            }
            // Already finished on another worker.
            (Ok(pid), Rendezvous::Result(r)) => {
                drop(g);
                (reply.take().expect("reply builder"))().send(r);
                Started::Running(pid)
            }
            (Ok(pid), other) => {
                *g = other;
                Started::Running(pid)
            }
            (Err(_), Rendezvous::Done) => Started::Waiting,
        }
    }

    /// A call ended: take the worker back and start the next queued call.
    pub(crate) fn finish(self: &Arc<Self>, worker: Option<Worker>, healthy: bool) {
        let Some(engine) = self.engine.upgrade() else {
            return;
        };
        let mut g = self.lock();
        g.busy = g.busy.saturating_sub(1);
        let mut worker = match worker {
            Some(w) if healthy && !g.retired => Some(w),
            Some(w) => {
                g.live = g.live.saturating_sub(1);
                drop(g);
                if healthy {
                    engine.factory.release(w.into_state());
                } else {
                    engine.factory.release_poisoned(w.into_state());
                }
                g = self.lock();
                None
            }
            None => {
                g.live = g.live.saturating_sub(1);
                None
            }
        };
        if g.retired {
            let queued: Vec<Queued> = g.queue.drain(..).collect();
            let done = g.busy == 0;
            drop(g);
            for q in queued {
                q.reply.send(Err(self.pool_gone()));
            }
            if done {
                let _ = engine.sys.handle.remove_host(&self.host);
            }
            return;
        }
        loop {
            let Some(q) = g.queue.pop_front() else {
                break;
            };
            if !q.reply.is_alive() {
                continue;
            }
            match worker.take() {
                Some(w) => {
                    g.busy += 1;
                    drop(g);
                    self.run(&engine, w, q.req, move || q.reply, false);
                    return;
                }
                None if g.live < g.limit => {
                    g.live += 1;
                    g.busy += 1;
                    drop(g);
                    match self.create_worker(&engine) {
                        Ok(w) => {
                            self.run(&engine, w, q.req, move || q.reply, false);
                        }
                        Err(e) => {
                            let mut g2 = self.lock();
                            g2.live -= 1;
                            g2.busy -= 1;
                            drop(g2);
                            q.reply.send(Err(e));
                        }
                    }
                    return;
                }
                None => {
                    g.queue.push_front(q);
                    break;
                }
            }
        }
        if let Some(mut w) = worker {
            w.last_used = Instant::now();
            g.idle.push(w);
        }
    }

    /// Retire the pool (entry updated or deleted); see the module docs.
    pub(crate) fn retire(&self) {
        let Some(engine) = self.engine.upgrade() else {
            return;
        };
        let mut g = self.lock();
        g.retired = true;
        let idle: Vec<Worker> = g.idle.drain(..).collect();
        g.live -= idle.len();
        let queued: Vec<Queued> = g.queue.drain(..).collect();
        let done = g.busy == 0;
        drop(g);
        for w in idle {
            engine.factory.release(w.into_state());
        }
        for q in queued {
            q.reply.send(Err(self.pool_gone()));
        }
        if done {
            let _ = engine.sys.handle.remove_host(&self.host);
        }
    }

    /// Periodic maintenance: reap idle workers, adjust the adaptive limit.
    pub(crate) fn maintain(&self, now: Instant, idle_timeout: Duration) {
        let Some(engine) = self.engine.upgrade() else {
            return;
        };
        let mut g = self.lock();
        if g.retired {
            return;
        }
        let mut reaped = Vec::new();
        if matches!(self.spec.kind, PoolKind::Lazy | PoolKind::Adaptive) {
            let mut i = 0;
            while i < g.idle.len() {
                if now.duration_since(g.idle[i].last_used) >= idle_timeout {
                    reaped.push(g.idle.swap_remove(i));
                    g.live -= 1;
                } else {
                    i += 1;
                }
            }
        }
        if self.spec.kind == PoolKind::Adaptive {
            if g.busy >= g.limit && !g.queue.is_empty() {
                let grow = (g.limit / 4).max(1);
                g.limit = (g.limit + grow).min(self.spec.max);
            } else if g.busy * 2 < g.limit && g.queue.is_empty() && g.limit > 1 {
                g.limit -= 1;
            }
        }
        drop(g);
        for w in reaped {
            engine.factory.release(w.into_state());
        }
    }
}

/// What an inline call shares with the pool host's `on_start` hook (module docs).
struct InlineShared {
    /// The call. A killer that closes it while the hook's step runs waits for the step to
    /// end, as it would for any running step.
    call: Mutex<LuaProcess>,
    /// Set when the inline step did not end: the caller and its completed steps before the
    /// step that ran the inline step (see [`InlineCall::step`]).
    gate: Mutex<Option<(Pid, u64)>>,
}

/// The process object of an inline call (module docs).
struct InlineCall {
    shared: Arc<InlineShared>,
    /// Events that arrived while the first scheduled step waited at the gate.
    stash: Vec<Event>,
}

impl InlineCall {
    fn lock(&self) -> std::sync::MutexGuard<'_, LuaProcess> {
        self.shared.call.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn lock_gate(s: &InlineShared) -> std::sync::MutexGuard<'_, Option<(Pid, u64)>> {
    s.gate.lock().unwrap_or_else(|e| e.into_inner())
}

/// True once the caller's step that ran an inline step has ended and flushed the messages
/// it buffered (the runtime counts a step before flushing, and leaves RUNNING after).
fn caller_flushed(handle: &wippy_rt::Handle, caller: &Pid, steps_before: u64) -> bool {
    match handle.process_info(caller) {
        None => true,
        Some(i) => {
            i.steps > steps_before + 1
                || (i.steps == steps_before + 1 && i.state != wippy_rt::ProcessState::Running)
        }
    }
}

impl Process for InlineCall {
    fn init(
        &mut self,
        cx: &mut ProcessCx<'_>,
        method: &str,
        input: Vec<Value>,
    ) -> Result<(), Error> {
        self.lock().init(cx, method, input)?;
        let pid = cx.pid().clone();
        HANDOFF.with(|h| *h.borrow_mut() = Some((pid, self.shared.clone())));
        Ok(())
    }

    /// Messages the inline step sent went through the *caller's* step, which may buffer
    /// them until it ends (the runtime's write-combining). A call that did not end inline
    /// therefore waits (requeued behind other work) until that step has flushed, so that
    /// nothing it sends later overtakes them; then it runs as any process.
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        events: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        let gate = lock_gate(&self.shared).take();
        if let Some((caller, before)) = gate
            && !caller_flushed(cx.handle(), &caller, before)
        {
            self.stash.append(events);
            *lock_gate(&self.shared) = Some((caller, before));
            out.set_status(Status::Continue);
            return Ok(());
        }
        if !self.stash.is_empty() {
            self.stash.append(events);
            std::mem::swap(&mut self.stash, events);
        }
        self.lock().step(cx, events, out)
    }

    fn close(&mut self) {
        if std::ptr::eq(RUNNING.with(Cell::get), Arc::as_ptr(&self.shared)) {
            // The hook holds the call's lock on this thread: it closes the call itself.
            CLOSE_PENDING.with(|c| c.set(true));
            return;
        }
        self.lock().close();
    }
}

/// The pool host's lifecycle hook: runs an inline call's first step (module docs).
struct InlineHook;

/// The `on_start` error that rolls back the spawn of an inline call that ended in its first
/// step (never shown: the spawner reads the result from the reply slot).
#[cold]
fn ended_inline() -> Error {
    Error::internal("function call ended in its first step")
}

impl wippy_rt::Lifecycle for InlineHook {
    fn on_start(&self, pid: &Pid, opts: &SpawnOptions) -> Result<(), Error> {
        let Some((p, call)) = HANDOFF.with(|h| h.borrow_mut().take()) else {
            return Ok(());
        };
        if p != *pid {
            return Ok(());
        }
        let mut g = call.call.lock().unwrap_or_else(|e| e.into_inner());
        // While this thread holds the lock, a close of this call by the runtime on this
        // thread (its own step killed it; or closing it retires the last call of a retired
        // pool, whose host removal kills what is left on the host) is left to us.
        let prev = RUNNING.with(|r| r.replace(Arc::as_ptr(&call)));
        let prev_pending = CLOSE_PENDING.with(|c| c.replace(false));
        let ended = g.inline_step();
        let killed = CLOSE_PENDING.with(Cell::get);
        let r = match &ended {
            Some(result) => {
                if let Some(pool) = g.call_pool() {
                    pool.inline_exit(pid, result);
                }
                // The runtime's close (abort or kill) finds it closed.
                g.close();
                Err(ended_inline())
            }
            None if killed => {
                g.close();
                Err(ended_inline())
            }
            None => {
                // Continues as a process: its first scheduled step waits for the caller's
                // step to flush (see `InlineCall::step`).
                if let Some(caller) = &opts.parent
                    && let Some(g) = g.call_pool()
                    && let Some(engine) = g.engine.upgrade()
                    && let Some(info) = engine.sys.handle.process_info(caller)
                {
                    *lock_gate(&call) = Some((caller.clone(), info.steps));
                }
                Ok(())
            }
        };
        drop(g);
        RUNNING.with(|r| r.set(prev));
        CLOSE_PENDING.with(|c| c.set(prev_pending));
        r
    }
}

/// A start that could not begin: the error is the result.
#[cold]
fn fail(inline: bool, reply: impl FnOnce() -> Reply, e: Error) -> Started {
    if inline {
        Started::Done(Err(e))
    } else {
        reply().send(Err(e));
        Started::Waiting
    }
}

/// Route a call: a Lua function pool of the engine, else any handler registered in the
/// system's function registry. Returns the callee PID when a pool started it at once.
pub(crate) fn call(engine: &Arc<Engine>, req: CallRequest, reply: Reply) -> Option<Pid> {
    if let Some(pool) = engine.pool(&req.target) {
        return pool.call(req, reply);
    }
    to_registry(engine, req, reply);
    None
}

/// Route a call made by a running Lua process's step (`funcs.call`): a pool call gets the
/// inline first step (module docs). `reply` is built only when the call outlives its start.
pub(crate) fn call_from_step(
    engine: &Arc<Engine>,
    req: CallRequest,
    reply: impl FnOnce() -> Reply,
) -> Started {
    if let Some(pool) = engine.pool(&req.target) {
        return pool.start(req, reply, true);
    }
    to_registry(engine, req, reply());
    Started::Waiting
}

fn to_registry(engine: &Arc<Engine>, req: CallRequest, reply: Reply) {
    let f: crate::system::Reply = match reply {
        Reply::Completer(c) => Box::new(move |r| {
            c.complete(r);
        }),
        Reply::Boxed(f) => f,
    };
    engine.sys.functions.call(req, f);
}

/// The system function handler of one `function.lua` entry: finds the current pool at call
/// time (so updates take effect for new calls).
pub(crate) struct FnHandler {
    pub engine: Weak<Engine>,
    pub id: String,
}

impl FunctionHandler for FnHandler {
    fn call(&self, req: CallRequest, reply: crate::system::Reply) {
        let Some(engine) = self.engine.upgrade() else {
            reply(Err(super::shared::no_engine()));
            return;
        };
        match engine.pool(&self.id) {
            Some(pool) => {
                pool.call(req, Reply::Boxed(reply));
            }
            None => reply(Err(Error::new(
                Kind::NOT_FOUND,
                format!("pool not found: {}", self.id),
            )
            .with_detail("target", self.id.as_str()))),
        }
    }
}

/// The native process that drives pool maintenance from a runtime ticker; it ends on CANCEL
/// (runtime or host stop).
pub(crate) struct Maintenance {
    pub engine: Weak<Engine>,
    pub ticker: Option<TimerHandle>,
}

const TICK_TOPIC: &str = "@wippy/pool.tick";

impl Process for Maintenance {
    fn init(&mut self, cx: &mut ProcessCx<'_>, _m: &str, _in: Vec<Value>) -> Result<(), Error> {
        let tick = self
            .engine
            .upgrade()
            .map(|e| e.config.pool_tick)
            .unwrap_or(Duration::from_millis(500));
        self.ticker = Some(cx.handle().ticker(tick, cx.pid(), TICK_TOPIC));
        Ok(())
    }

    fn step(
        &mut self,
        _cx: &mut ProcessCx<'_>,
        events: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        for ev in events.drain(..) {
            if let Event::Message(pkg) = ev {
                if pkg.topic == EVENTS_TOPIC
                    && pkg.payloads.first().and_then(event_kind) == Some(CANCEL)
                {
                    out.finish(Ok(Value::Nil));
                    return Ok(());
                }
                if pkg.topic == TICK_TOPIC
                    && let Some(engine) = self.engine.upgrade()
                {
                    let pools: Vec<Arc<FnPool>> = engine
                        .pools
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .values()
                        .cloned()
                        .collect();
                    let now = Instant::now();
                    for p in pools {
                        p.maintain(now, engine.config.pool_idle_timeout);
                    }
                }
            }
        }
        out.set_status(Status::Idle);
        Ok(())
    }

    fn close(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.cancel();
        }
    }
}
