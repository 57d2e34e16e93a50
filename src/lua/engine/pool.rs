//! Function pools: warm Lua states for `function.lua` entries and call dispatch (spec
//! `runtime-internals.md` §11.8).
//!
//! A pool keeps *workers* — Lua states whose entry chunk already ran (so module-level state
//! persists between the calls a worker serves, as upstream) with the method resolved — and a
//! limit on how many calls run at once. Each call runs as a process (a [`LuaProcess`] in
//! function mode) on the pool's own host `<id>#lua.<n>`, so it has a PID, can block, use
//! timers and futures, be monitored and be preempted like any process; its result goes to the
//! caller's reply when it ends, and the worker returns to the pool.
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

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use mlua::Function;
use wippy_rt::process::{CANCEL, EVENTS_TOPIC, event_kind};
use wippy_rt::{
    Completer, Error, Event, HostConfig, Kind, Pid, Process, ProcessCx, SpawnOptions, Status,
    StepOutput, TimerHandle, Value,
};

use super::code::{LuaEntry, LuaKind};
use super::core::{Core, CoreBox};
use super::process::{LuaProcess, ReplySlot, prepare_state, resolve_method};
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
    /// Code store epoch it was built at.
    epoch: u64,
    /// Last time it finished a call.
    last_used: Instant,
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
        engine.sys.handle.add_host(&host, HostConfig::default())?;
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
        let Some(engine) = self.engine.upgrade() else {
            reply.send(Err(super::shared::no_engine()));
            return None;
        };
        let mut g = self.lock();
        if g.retired {
            drop(g);
            reply.send(Err(self.pool_gone()));
            return None;
        }
        let current = engine.code.epoch();
        while let Some(w) = g.idle.pop() {
            if w.epoch == current || self.entry_unchanged(&engine) {
                g.busy += 1;
                drop(g);
                return self.run(&engine, w, req, reply);
            }
            g.live -= 1;
            engine.factory.release(w.state);
        }
        if g.live < g.limit {
            g.live += 1;
            g.busy += 1;
            drop(g);
            return match self.create_worker(&engine) {
                Ok(w) => self.run(&engine, w, req, reply),
                Err(e) => {
                    let mut g = self.lock();
                    g.live -= 1;
                    g.busy -= 1;
                    drop(g);
                    reply.send(Err(e));
                    None
                }
            };
        }
        g.queue.push_back(Queued { req, reply });
        None
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

    #[cold]
    fn pool_gone(&self) -> Error {
        Error::new(
            Kind::NOT_FOUND,
            format!("pool not found: {}", self.entry.id),
        )
        .with_detail("target", self.entry.id.as_str())
    }

    /// Spawn the call process for `worker`.
    fn run(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        worker: Worker,
        req: CallRequest,
        reply: Reply,
    ) -> Option<Pid> {
        let slot: ReplySlot = Arc::new(Mutex::new(Some(reply)));
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
        match engine.sys.handle.spawn(
            &self.host,
            Box::new(p),
            &self.entry.method,
            Vec::new(),
            opts,
        ) {
            Ok(pid) => Some(pid),
            Err(e) => {
                let r = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(r) = r {
                    r.send(Err(e));
                }
                None
            }
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
                    engine.factory.release(w.state);
                } else {
                    engine.factory.release_poisoned(w.state);
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
                    self.run(&engine, w, q.req, q.reply);
                    return;
                }
                None if g.live < g.limit => {
                    g.live += 1;
                    g.busy += 1;
                    drop(g);
                    match self.create_worker(&engine) {
                        Ok(w) => {
                            self.run(&engine, w, q.req, q.reply);
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
            engine.factory.release(w.state);
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
            engine.factory.release(w.state);
        }
    }
}

/// Route a call: a Lua function pool of the engine, else any handler registered in the
/// system's function registry. Returns the callee PID when a pool started it at once.
pub(crate) fn call(engine: &Arc<Engine>, req: CallRequest, reply: Reply) -> Option<Pid> {
    if let Some(pool) = engine.pool(&req.target) {
        return pool.call(req, reply);
    }
    let f: crate::system::Reply = match reply {
        Reply::Completer(c) => Box::new(move |r| {
            c.complete(r);
        }),
        Reply::Boxed(f) => f,
    };
    engine.sys.functions.call(req, f);
    None
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
