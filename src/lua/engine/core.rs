//! The per-process run state ([`Core`]) and how Lua callbacks reach it.
//!
//! A Lua process (or one function call) owns exactly one [`Core`]: its tasks, run queue,
//! outstanding waits, channels bookkeeping, subscriptions, mailbox and result. The core lives
//! in a heap cell owned by the process object; Rust callbacks invoked by Lua code (`ch:send`,
//! `process.inbox`, `time.sleep`, …) reach it through a thread-local pointer that is set only
//! while that process's Lua code runs on this thread ([`Enter`]).
//!
//! # Invariants
//!
//! 1. **Scoped pointer.** The thread-local [`CURRENT`] is non-null only inside an [`Enter`]
//!    guard, which borrows the `RefCell<Core>` for its whole lifetime, so the pointee is alive
//!    whenever the pointer is visible. Guards nest (a spawn runs the child's `init`, and with it
//!    the child's Lua code, inside the parent's callback) and restore the previous pointer on
//!    drop, including during unwinding.
//! 2. **No aliasing.** All access goes through `RefCell::try_borrow_mut`; the engine's own step
//!    code borrows only between Lua calls. A callback that runs while the core is already
//!    borrowed (a Lua `__gc` finalizer triggered by an allocation inside an engine operation)
//!    gets [`CoreError::Busy`] and raises instead of aliasing.
//! 3. **One pending operation.** A callback that must suspend its task stores exactly one
//!    [`Op`] in [`Core::pending`] and returns the yield marker; the engine takes it right after
//!    the task's `lua_resume` returns. The slot is cleared before every resume, so an operation
//!    stranded by a failed yield (non-yieldable context) can never be applied to another task.
//! 4. **One thread per state.** A process's Lua state, and every handle into it (the core's
//!    `Lua` clone, tasks' threads, subscription channels, [`super::channel::ChanRef`] block
//!    pointers, registry references), is owned by the process object (or, between function
//!    calls, by its pool worker, which moves with exclusive ownership). Engine code never
//!    stores such a handle where another thread can reach it: messages, job closures and
//!    completions carry runtime [`Value`]s, never Lua values. The executor steps a process on
//!    one worker at a time through `&mut` access. So only the thread stepping (or creating,
//!    or dropping) a process ever touches its state; the engine's per-step hot paths rely on
//!    this to skip mlua's state lock ([`exec_unlocked`]).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::ptr;
use std::sync::Arc;
use std::time::Instant;

use fnv::FnvHashMap;
use mlua::{AnyUserData, Function, Lua, Thread, Value as LuaValue};
use wippy_rt::{Command, Error, Handle, Pid, TimerHandle, Value};

use super::code::LuaEntry;
use super::shared::Engine;
use crate::system::CallRequest;

/// Index of a task in [`Core::tasks`].
pub(crate) type TaskId = u32;

/// One task: the main function or a `coroutine.spawn` coroutine, as a Lua thread.
pub(crate) struct Task {
    /// The Lua thread (kept referenced so the coroutine is not collected).
    pub thread: Thread,
    /// Values passed to the next resume (pushed by the engine before resuming).
    pub args: Vec<LuaValue>,
    /// Values already on the thread's stack for the next resume (pushed there by channel
    /// operations, see [`super::channel`]); passed before [`args`](Self::args).
    pub nargs: std::ffi::c_int,
    /// A channel closed while this task was blocked sending on it: resume with
    /// `nil, "send on closed channel"`.
    pub send_closed: bool,
    /// A message handed to this task's blocked receive, to be built when it resumes
    /// ([`super::message::build_lazy`]); its resume values hold the lazy mark meanwhile. The
    /// box is allocated on the first such message and kept for the next ones (a task that
    /// never receives one pays 8 bytes, not the data's 64).
    pub lazy: Option<Box<Option<super::message::MessageData>>>,
}

/// What a suspended task is waiting for, after its callback returned the yield marker.
pub(crate) enum Op {
    /// The callback already placed the task in the run queue (a channel operation that
    /// completed, `close` that woke others, `time.sleep(0)`): nothing to do.
    Queued,
    /// Parked on channels; whoever completes the operation queues it.
    Park,
    /// A channel operation completed at once: the callback queued the task and left its
    /// results (after the marker) on its stack as its next resume arguments.
    Requeued,
    /// `coroutine.spawn(f)`: start a task for `f`, run it first, resume the caller with its
    /// thread.
    Spawn(Function),
    /// Resume with no values at the deadline.
    Sleep(Instant),
    /// A function call; resume with `result, nil` or `nil, err`.
    Call(Box<CallRequest>),
    /// `process.exec`: spawn the request and resume with the child's result or error.
    Exec(Box<crate::system::process_manager::StartRequest>),
    /// A dispatcher command; the completion is converted by `conv`. The extension point for
    /// modules whose work is done by a command handler (no module of this crate needs one
    /// yet: timers, calls and exec hand completions to the runtime directly).
    #[allow(dead_code)]
    Command(Box<dyn Command>, Conv),
    /// A blocking job run on a helper thread (terminal reads); converted by `conv`.
    Job(Box<dyn FnOnce() -> Result<Value, Error> + Send>, Conv),
    /// `process.upgrade(source?, ...)`: replace the running code after this step, keeping
    /// the PID, the mailbox and the links (see `process::upgraded`).
    Upgrade(Option<String>, Vec<Value>),
}

/// How a completion becomes the resumed task's values.
pub(crate) enum Conv {
    /// No values (`time.sleep`).
    Nothing,
    /// `value, nil` on success, `nil, err` on failure.
    ValueOrError,
    /// A custom conversion.
    Custom(CustomConv),
}

/// A completion's custom conversion into the values the task resumes with.
pub(crate) type CustomConv =
    Box<dyn FnOnce(&Lua, Result<Value, Error>) -> mlua::Result<Vec<LuaValue>> + Send>;

/// A task waiting for a completion tag.
pub(crate) struct Wait {
    pub task: TaskId,
    pub conv: Conv,
}

/// A subscription: messages on `topic` go to `chan`.
pub(crate) struct Sub {
    /// The channel userdata (see [`super::channel`]).
    pub chan: AnyUserData,
    /// Its block, for the delivery fast path.
    pub raw: super::channel::ChanRef,
    /// How a message becomes the delivered Lua value.
    pub mode: SubMode,
}

/// Delivery mode of a subscription.
#[derive(Clone)]
pub(crate) enum SubMode {
    /// `process.inbox()` and `listen{message=true}`: Message objects.
    Messages,
    /// `process.events()`: event tables.
    Events,
    /// `process.listen(topic)`: the raw payload value(s).
    Raw,
    /// A one-shot timer (`time.after`, `time.timer`): one Time value, then closed.
    TimerOnce,
    /// A ticker: Time values; ticks that find the buffer full are dropped.
    Ticker,
    /// A `funcs.async` future: one result, then closed; the future object is updated.
    Future(AnyUserData),
}

/// The variant of a [`SubMode`] (copyable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModeKind {
    Messages,
    Events,
    Raw,
    TimerOnce,
    Ticker,
    Future,
}

impl SubMode {
    /// The variant.
    pub fn kind(&self) -> ModeKind {
        match self {
            SubMode::Messages => ModeKind::Messages,
            SubMode::Events => ModeKind::Events,
            SubMode::Raw => ModeKind::Raw,
            SubMode::TimerOnce => ModeKind::TimerOnce,
            SubMode::Ticker => ModeKind::Ticker,
            SubMode::Future(_) => ModeKind::Future,
        }
    }
}

/// A `channel.select` waiting on several channels.
pub(crate) struct SelectOp {
    /// The waiting task.
    pub task: TaskId,
    /// Registry reference to the array of its case objects.
    pub cases_ref: std::ffi::c_int,
    /// Number of cases.
    pub n: u32,
}

/// Slab with free list for small engine records.
pub(crate) struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    pub fn insert(&mut self, v: T) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.items[i as usize] = Some(v);
                i
            }
            None => {
                // Most processes run one task: the first slot is allocated exactly (a Vec's
                // first growth would reserve four).
                if self.items.capacity() == 0 {
                    self.items.reserve_exact(1);
                }
                self.items.push(Some(v));
                (self.items.len() - 1) as u32
            }
        }
    }
    pub fn get(&self, i: u32) -> Option<&T> {
        self.items.get(i as usize).and_then(Option::as_ref)
    }
    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.items.get_mut(i as usize).and_then(Option::as_mut)
    }
    pub fn remove(&mut self, i: u32) -> Option<T> {
        let v = self.items.get_mut(i as usize).and_then(Option::take);
        if v.is_some() {
            self.free.push(i);
        }
        v
    }
    pub fn len(&self) -> usize {
        self.items.len() - self.free.len()
    }
    pub fn clear(&mut self) {
        self.items.clear();
        self.free.clear();
    }
}

/// Source of unique core epochs (channel waiters of a finished incarnation are ignored).
static EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The run state of one Lua process or function call. See the module docs.
pub(crate) struct Core {
    /// The process's Lua state (for raw C functions that need mlua on a cold path).
    pub lua: Lua,
    /// The engine (code store, factories, pools).
    pub engine: Arc<Engine>,
    /// The runtime.
    pub handle: Handle,
    /// This process's PID.
    pub pid: Pid,
    /// The entry being run (`process.id()`).
    pub entry: Arc<LuaEntry>,
    /// Context values (`ctx` module), inherited by calls.
    pub context: Arc<Vec<(String, Value)>>,
    /// Unique incarnation number (stale channel waiters carry an older one).
    pub epoch: u64,

    /// Tasks; the main task is [`Core::main`].
    pub tasks: Slab<Task>,
    /// The main task.
    pub main: TaskId,
    /// Run queue (FIFO).
    pub queue: VecDeque<TaskId>,
    /// The task being resumed right now.
    pub current: TaskId,
    /// The operation the current task's callback asked for (see the module docs).
    pub pending: Option<Op>,
    /// Tasks that yielded without an operation (`coroutine.yield()` in a task): run again in
    /// the next step.
    pub bare: Vec<TaskId>,

    /// Next completion tag.
    pub next_tag: u64,
    /// Tasks waiting for a completion.
    pub waits: FnvHashMap<u64, Wait>,
    /// Commands to hand to the step output.
    pub commands: Vec<(u64, Box<dyn Command>)>,
    /// Outstanding function calls and exec children: tag → callee PID (terminated if this
    /// process ends first).
    pub callees: FnvHashMap<u64, Pid>,

    /// Selects in progress.
    pub selects: Slab<SelectOp>,
    /// Tasks parked on channel operations (deadlock detection).
    pub parked: usize,

    /// Subscriptions by topic.
    pub subs: super::submap::SubMap,
    /// Undelivered messages (see [`super::mailbox`]).
    pub mailbox: super::mailbox::Mailbox,
    /// `process.set_options{trap_links = …}`.
    pub trap_links: bool,
    /// A LINK_DOWN was consumed without `trap_links`.
    pub link_down: bool,
    /// Next private topic number (timers, futures).
    pub next_topic: u64,
    /// Live timers and tickers (cancelled when the process ends).
    pub timers: FnvHashMap<String, TimerHandle>,

    /// Terminal context, for processes on a terminal host.
    pub terminal: Option<Arc<super::modules::io::TerminalCtx>>,
    /// A requested upgrade: new source (None = same entry) and input.
    pub upgrade: Option<(Option<String>, Vec<Value>)>,
    /// Recently parsed destination PIDs (`process.send` in a loop parses once).
    pid_cache: [Option<(Pid,)>; PID_CACHE],
    pid_cache_next: usize,
}

/// Destinations remembered by [`Core::pid_of`] (a process usually talks to a few peers).
const PID_CACHE: usize = 4;

impl Core {
    /// A fresh core for `pid` running `entry`.
    pub fn new(
        lua: Lua,
        engine: Arc<Engine>,
        handle: Handle,
        pid: Pid,
        entry: Arc<LuaEntry>,
        context: Arc<Vec<(String, Value)>>,
    ) -> Core {
        Core {
            lua,
            engine,
            handle,
            pid,
            entry,
            context,
            epoch: EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            tasks: Slab::default(),
            main: 0,
            queue: VecDeque::new(),
            current: 0,
            pending: None,
            bare: Vec::new(),
            next_tag: 1,
            waits: FnvHashMap::default(),
            commands: Vec::new(),
            callees: FnvHashMap::default(),
            selects: Slab::default(),
            parked: 0,
            subs: Default::default(),
            mailbox: Default::default(),
            trap_links: false,
            link_down: false,
            next_topic: 0,
            timers: FnvHashMap::default(),
            terminal: None,
            upgrade: None,
            pid_cache: Default::default(),
            pid_cache_next: 0,
        }
    }

    /// Add a task for `thread` at the back of the run queue.
    pub fn add_task(&mut self, thread: Thread, args: Vec<LuaValue>) -> TaskId {
        let id = self.tasks.insert(Task {
            thread,
            args,
            nargs: 0,
            send_closed: false,
            lazy: None,
        });
        self.queue.push_back(id);
        id
    }

    /// Give `task` its resume values and put it at the back of the run queue.
    pub fn wake(&mut self, task: TaskId, args: Vec<LuaValue>) {
        if let Some(t) = self.tasks.get_mut(task) {
            t.args = args;
            self.queue.push_back(task);
        }
    }

    /// The parsed PID for `text`, from a small cache of recently used destinations.
    pub fn pid_of(&mut self, text: &[u8]) -> Result<Pid, Error> {
        for slot in self.pid_cache.iter().flatten() {
            if slot.0.as_str().as_bytes() == text {
                return Ok(slot.0.clone());
            }
        }
        let s = std::str::from_utf8(text).map_err(|_| Error::invalid("invalid pid"))?;
        let p = match Pid::parse(s) {
            Ok(p) => p,
            // Not a PID: a registered name of the topology (never cached: names move).
            Err(e) => {
                return crate::system::topology::Topology::of(&self.handle)
                    .and_then(|t| t.names().get(s))
                    .ok_or(e);
            }
        };
        let i = self.pid_cache_next % PID_CACHE;
        self.pid_cache[i] = Some((p.clone(),));
        self.pid_cache_next = self.pid_cache_next.wrapping_add(1);
        Ok(p)
    }

    /// A fresh completion tag.
    pub fn tag(&mut self) -> u64 {
        let t = self.next_tag;
        self.next_tag += 1;
        t
    }

    /// A fresh private topic `@wippy/<kind>/<n>` (never falls back to the inbox; dropped when
    /// nobody subscribes).
    pub fn private_topic(&mut self, kind: &str) -> String {
        self.next_topic += 1;
        format!("{PRIVATE_PREFIX}{kind}/{}", self.next_topic)
    }

    /// Drop every Lua reference and cancel producers (the process ended).
    pub fn teardown(&mut self) {
        for (_, t) in self.timers.drain() {
            t.cancel();
        }
        self.subs.clear();
        self.selects.clear();
        self.tasks.clear();
        self.queue.clear();
        self.pending = None;
        self.waits.clear();
        self.commands.clear();
        self.mailbox.clear();
        self.bare.clear();
    }

    /// Make this torn-down core (see [`Core::teardown`]) the core of a new incarnation on
    /// the same state — the next call served by a function pool worker — with a fresh epoch
    /// (stale channel waiters of the previous call stay stale). Collections keep their
    /// capacity.
    pub fn renew(&mut self, pid: Pid, context: Arc<Vec<(String, Value)>>) {
        self.teardown();
        self.callees.clear();
        self.pid = pid;
        self.context = context;
        self.epoch = EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.main = 0;
        self.current = 0;
        self.next_tag = 1;
        self.parked = 0;
        self.mailbox = Default::default();
        self.trap_links = false;
        self.link_down = false;
        self.next_topic = 0;
        self.terminal = None;
        self.upgrade = None;
    }
}

/// Prefix of engine-private topics (timers, futures).
pub(crate) const PRIVATE_PREFIX: &str = "@wippy/";

/// Why a callback could not reach its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CoreError {
    /// No process is running on this thread (module used outside a process).
    NoProcess,
    /// The core is borrowed (a finalizer ran inside an engine operation).
    Busy,
}

impl CoreError {
    /// The message raised to Lua.
    pub fn message(self) -> &'static str {
        match self {
            CoreError::NoProcess => "process context not available",
            CoreError::Busy => "engine operation not allowed here (finalizer)",
        }
    }
}

thread_local! {
    /// The core of the process whose Lua code runs on this thread (see the module docs).
    static CURRENT: Cell<*const RefCell<Core>> = const { Cell::new(ptr::null()) };
}

/// Makes a core current for the guard's lifetime (nestable).
pub(crate) struct Enter<'a> {
    prev: *const RefCell<Core>,
    _core: PhantomData<&'a RefCell<Core>>,
}

impl<'a> Enter<'a> {
    /// Make `core` current until the guard drops.
    pub fn new(core: &'a RefCell<Core>) -> Enter<'a> {
        let prev = CURRENT.with(|c| c.replace(core as *const _));
        Enter {
            prev,
            _core: PhantomData,
        }
    }
}

impl Drop for Enter<'_> {
    fn drop(&mut self) {
        let prev = self.prev;
        CURRENT.with(|c| c.set(prev));
    }
}

/// `lua.exec_raw_lua(f)` without mlua's state lock: for the engine's per-step hot paths (a
/// task's resume, a delivery), where the lock's two atomic read-modify-writes per call were a
/// measurable part of a message round trip (decision 0125). Outside any [`Enter`] guard it
/// takes the lock as usual.
///
/// # Safety
/// If a core is current on this thread ([`Enter`]), `lua` is that process's state.
#[inline(always)]
pub(crate) unsafe fn exec_unlocked<R>(lua: &Lua, f: impl FnOnce(&mlua::state::RawLua) -> R) -> R {
    if CURRENT.with(Cell::get).is_null() {
        return lua.exec_raw_lua(f);
    }
    // SAFETY: a core is current, so a step (or `init`, or an inline first step) of its
    // process runs on this thread, and by the caller's contract `lua` is that process's
    // state. By invariant 4 (module docs) only the thread stepping a process reaches its
    // state or any handle into it: no other thread can lock or touch the state during `f`,
    // which is `exec_raw_lua_unlocked`'s contract. Callbacks run by `f` may still lock
    // (uncontended) as usual.
    unsafe { lua.exec_raw_lua_unlocked(f) }
}

/// Run `f` with the current process's core.
pub(crate) fn with_core<R>(f: impl FnOnce(&mut Core) -> R) -> Result<R, CoreError> {
    let p = CURRENT.with(Cell::get);
    if p.is_null() {
        return Err(CoreError::NoProcess);
    }
    // SAFETY: `CURRENT` is non-null only while an `Enter<'a>` guard is alive on this thread,
    // and the guard holds a shared borrow (`&'a RefCell<Core>`) of the pointee, so the cell is
    // alive here; it is only dereferenced on this thread (thread-local). Mutable access goes
    // through the RefCell, so no two `&mut Core` can coexist (invariant 2).
    let cell = unsafe { &*p };
    let mut c = cell.try_borrow_mut().map_err(|_| CoreError::Busy)?;
    Ok(f(&mut c))
}

/// The heap cell holding a process's core, owned like a `Box` by the process object.
pub(crate) struct CoreBox(Box<RefCell<Core>>);

impl CoreBox {
    pub fn new(core: Core) -> CoreBox {
        CoreBox(Box::new(RefCell::new(core)))
    }
    pub fn cell(&self) -> &RefCell<Core> {
        &self.0
    }
    pub fn borrow_mut(&self) -> std::cell::RefMut<'_, Core> {
        self.0.borrow_mut()
    }
    pub fn into_inner(self) -> Core {
        self.0.into_inner()
    }
}
