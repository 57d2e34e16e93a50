//! Preemption of Lua code that overruns its time slice.
//!
//! A Lua count hook slows the VM down about 2x while it is installed, so it is installed only
//! on a step that has already run longer than its slice ([`PreemptSettings::slice`]):
//!
//! 1. Every worker thread that runs Lua has a [`Slot`] (registered on first use): its kernel
//!    thread id, a step sequence number and the start time of the step in progress (0 = not
//!    running Lua). [`StepClock::begin`] bumps the sequence and records the start; dropping the
//!    clock clears it (also on unwinding).
//! 2. The watchdog thread wakes every [`WATCHDOG_TICK`], and for each slot whose step has run
//!    longer than the slice marks that step as targeted and sends the worker `SIGURG` with
//!    `tgkill` (a signal to a thread of this process only; a stale thread id finds no slot and
//!    does nothing).
//! 3. The signal handler, on the worker thread, checks that the targeted step is still the
//!    running one and installs the count hook on the Lua thread currently executing there
//!    ([`set_running`] tracks it across the engine's resumes and the user's
//!    `coroutine.resume`/`wrap`). Lua documents `lua_sethook` as callable from a signal
//!    handler (`ldebug.c`); the handler touches only atomics and const-initialised
//!    thread-locals, both async-signal-safe.
//! 4. The hook runs on the Lua thread every `slice` instructions. At a yieldable point it sets
//!    the preempted flag and yields the thread with no values: the engine sees the flag, puts
//!    the task back at the head of its queue and ends the step (status `Continue`), so the
//!    worker serves other processes. At a non-yieldable point (inside a C function such as
//!    `table.sort`'s comparator) it lets the code continue for up to `max_blocked_fires`
//!    firings, then raises `instruction budget exceeded`. A hook left on a thread from an
//!    earlier step removes itself the next time it fires. It never yields between a blocking
//!    callback that stored its operation and that callback's marker yield
//!    ([`set_op_pending`]): the operation may already have queued the task with its results.
//!
//! Only `SIGURG` is used (as Go's runtime does): it is ignored by default and no part of wippy
//! uses out-of-band socket data.

use std::cell::Cell;
use std::ffi::c_int;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use mlua::ffi;

use crate::lua::vm::PreemptConfig;

/// How often the watchdog looks at the workers. A step is preempted between `slice` and
/// `slice + WATCHDOG_TICK` after it started.
pub const WATCHDOG_TICK: Duration = Duration::from_millis(2);

/// Preemption parameters.
#[derive(Clone, Copy, Debug)]
pub struct PreemptSettings {
    /// Wall time a step may run before the hook is installed.
    pub slice: Duration,
    /// Hook period and tolerance at non-yieldable points.
    pub budget: PreemptConfig,
}

impl Default for PreemptSettings {
    fn default() -> Self {
        PreemptSettings {
            // 10 ms: far above any normal step (µs), short enough that a runaway process
            // delays the other processes of its worker by at most ~12 ms per slice.
            slice: Duration::from_millis(10),
            budget: PreemptConfig {
                // After arming, yield within ~1000 instructions (a few µs).
                slice: 1_000,
                // 10k firings ≈ 10M instructions (≈ 50–100 ms) inside one C call before the
                // budget error: enough for a legitimately large `table.sort`.
                max_blocked_fires: 10_000,
            },
        }
    }
}

static SETTINGS: OnceLock<PreemptSettings> = OnceLock::new();

fn settings() -> &'static PreemptSettings {
    SETTINGS.get_or_init(PreemptSettings::default)
}

/// Set the process-wide preemption parameters (first call wins; before any Lua runs).
pub fn configure(s: PreemptSettings) {
    let _ = SETTINGS.set(s);
}

/// Per worker thread state shared with the watchdog.
struct Slot {
    tid: AtomicI32,
    seq: AtomicU64,
    /// Nanoseconds since [`base`] at which the running step started; 0 = idle.
    start: AtomicU64,
    /// The step sequence number the watchdog wants preempted.
    target: AtomicU64,
    alive: AtomicBool,
}

static SLOTS: Mutex<Vec<&'static Slot>> = Mutex::new(Vec::new());
static WATCHDOG: Once = Once::new();

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    (base().elapsed().as_nanos() as u64).max(1)
}

thread_local! {
    /// This thread's slot (leaked: slots live as long as the process).
    static SLOT: Cell<*const Slot> = const { Cell::new(ptr::null()) };
    /// The Lua thread currently executing on this OS thread (null = none).
    static RUNNING: Cell<*mut ffi::lua_State> = const { Cell::new(ptr::null_mut()) };
    /// Step sequence number at which the hook was installed.
    static ARMED_SEQ: Cell<u64> = const { Cell::new(0) };
    /// Set by the hook when it yielded a thread.
    static PREEMPTED: Cell<bool> = const { Cell::new(false) };
    /// Consecutive firings at non-yieldable points.
    static BLOCKED: Cell<u32> = const { Cell::new(0) };
    /// A callback stored an operation and its trampoline is about to yield the marker: the
    /// hook must not yield in between (the operation may already have queued the task).
    static OP_PENDING: Cell<bool> = const { Cell::new(false) };
    /// Marks the slot dead when the thread exits.
    static SLOT_OWNER: SlotOwner = const { SlotOwner };
}

struct SlotOwner;
impl Drop for SlotOwner {
    fn drop(&mut self) {
        let s = SLOT.with(Cell::get);
        if !s.is_null() {
            // SAFETY: slots are leaked `&'static Slot`s, never freed.
            unsafe { &*s }.alive.store(false, SeqCst);
        }
    }
}

fn slot() -> &'static Slot {
    let s = SLOT.with(Cell::get);
    if !s.is_null() {
        // SAFETY: slots are leaked `&'static Slot`s, never freed.
        return unsafe { &*s };
    }
    start_watchdog();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let slot: &'static Slot = Box::leak(Box::new(Slot {
        tid: AtomicI32::new(tid),
        seq: AtomicU64::new(0),
        start: AtomicU64::new(0),
        target: AtomicU64::new(0),
        alive: AtomicBool::new(true),
    }));
    SLOTS.lock().unwrap_or_else(|e| e.into_inner()).push(slot);
    SLOT.with(|c| c.set(slot));
    SLOT_OWNER.with(|_| {});
    slot
}

/// Marks a step of Lua execution on this thread for the watchdog.
pub(crate) struct StepClock {
    slot: &'static Slot,
    outer: bool,
}

impl StepClock {
    /// Start timing a step (nested clocks keep the outer step's start).
    pub fn begin() -> StepClock {
        let slot = slot();
        let outer = slot.start.load(Relaxed) == 0;
        if outer {
            slot.seq.fetch_add(1, SeqCst);
            slot.start.store(now_ns(), SeqCst);
            BLOCKED.with(|b| b.set(0));
        }
        StepClock { slot, outer }
    }
}

impl Drop for StepClock {
    fn drop(&mut self) {
        if self.outer {
            self.slot.start.store(0, SeqCst);
        }
    }
}

/// Record `l` as the Lua thread now executing on this OS thread; returns the previous one.
#[inline]
pub(crate) fn set_running(l: *mut ffi::lua_State) -> *mut ffi::lua_State {
    RUNNING.with(|c| c.replace(l))
}

/// True (and cleared) if the hook preempted a thread since the last call.
#[inline]
pub(crate) fn take_preempted() -> bool {
    PREEMPTED.with(|c| c.replace(false))
}

/// Mark that an operation is pending until the task's marker yield reaches the engine.
#[inline]
pub(crate) fn set_op_pending(on: bool) {
    OP_PENDING.with(|c| c.set(on));
}

/// True if the hook preempted a thread and nobody took the flag yet.
#[inline]
pub(crate) fn preempt_pending() -> bool {
    PREEMPTED.with(Cell::get)
}

fn start_watchdog() {
    WATCHDOG.call_once(|| {
        install_signal_handler();
        let _ = base();
        std::thread::Builder::new()
            .name("wippy-lua-watchdog".into())
            .spawn(watchdog_loop)
            .expect("spawn lua watchdog thread");
    });
}

fn watchdog_loop() {
    let slice = settings().slice.as_nanos() as u64;
    loop {
        std::thread::sleep(WATCHDOG_TICK);
        let now = now_ns();
        let slots: Vec<&'static Slot> = SLOTS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for s in slots {
            if !s.alive.load(SeqCst) {
                continue;
            }
            let seq = s.seq.load(SeqCst);
            let start = s.start.load(SeqCst);
            if start == 0 || s.seq.load(SeqCst) != seq || now.saturating_sub(start) < slice {
                continue;
            }
            if s.target.swap(seq, SeqCst) == seq {
                continue; // already signalled for this step
            }
            // SAFETY: tgkill with our own pid only reaches threads of this process; a thread id
            // that was reused by a new thread of ours reaches a handler that finds no matching
            // step and does nothing.
            unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    libc::getpid(),
                    s.tid.load(SeqCst),
                    libc::SIGURG,
                );
            }
        }
    }
}

fn install_signal_handler() {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; we set a handler
    // that only performs async-signal-safe work (see `on_signal`), with SA_RESTART so that
    // interrupted system calls resume transparently.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGURG, &sa, ptr::null_mut()) != 0 {
            log::warn!("could not install the Lua preemption signal handler");
        }
    }
}

extern "C" fn on_signal(_sig: c_int) {
    // SAFETY: `__errno_location` returns this thread's errno slot; we restore it so the
    // interrupted code never sees a changed errno.
    let errno = unsafe { *libc::__errno_location() };
    let s = SLOT.with(Cell::get);
    if !s.is_null() {
        // SAFETY: slots are leaked and never freed.
        let slot = unsafe { &*s };
        let seq = slot.seq.load(SeqCst);
        let l = RUNNING.with(Cell::get);
        if slot.target.load(SeqCst) == seq && slot.start.load(SeqCst) != 0 && !l.is_null() {
            ARMED_SEQ.with(|c| c.set(seq));
            // SAFETY: `l` is the Lua thread executing on this OS thread right now (or one
            // suspended by it), alive for the duration of its resume; Lua documents
            // `lua_sethook` as safe to call from a signal handler interrupting that thread.
            unsafe {
                ffi::lua_sethook(
                    l,
                    Some(hook),
                    ffi::LUA_MASKCOUNT,
                    settings().budget.slice.max(1) as c_int,
                )
            };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

unsafe extern "C-unwind" fn hook(l: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    let s = SLOT.with(Cell::get);
    // SAFETY: slots are leaked and never freed.
    let current = if s.is_null() {
        0
    } else {
        unsafe { &*s }.seq.load(Relaxed)
    };
    if ARMED_SEQ.with(Cell::get) != current {
        // Left over from an earlier step (or inherited by a coroutine created while armed).
        // SAFETY: `l` is the running thread that invoked this hook.
        unsafe { ffi::lua_sethook(l, None, 0, 0) };
        return;
    }
    if OP_PENDING.with(Cell::get) {
        // Between a callback that stored its operation and the marker yield (a few
        // instructions): let the marker yield happen instead. If it does not come within a
        // firing (the yield failed: a non-yieldable context), stop waiting for it.
        OP_PENDING.with(|c| c.set(false));
        return;
    }
    // SAFETY: `l` is the running thread; `lua_isyieldable` only reads it.
    if unsafe { ffi::lua_isyieldable(l) } != 0 {
        PREEMPTED.with(|c| c.set(true));
        BLOCKED.with(|b| b.set(0));
        // SAFETY: yielding from a count hook with no values is allowed by Lua 5.4; this frame
        // holds no values with destructors.
        unsafe { ffi::lua_yield(l, 0) };
        return;
    }
    let n = BLOCKED.with(|b| {
        let n = b.get() + 1;
        b.set(n);
        n
    });
    let budget = settings().budget;
    if n > budget.max_blocked_fires {
        BLOCKED.with(|b| b.set(0));
        let msg = format!(
            "instruction budget exceeded: {} instructions without a yield point",
            n as u64 * budget.slice as u64
        );
        // SAFETY: `l` is the running thread; pushing a string and raising from a hook is
        // allowed; `msg` is dropped before `lua_error` longjmps (the pushed copy is Lua's).
        unsafe {
            ffi::lua_sethook(l, None, 0, 0);
            ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
            drop(msg);
            ffi::lua_error(l);
        }
    }
}

/// Count a preemption that could not be passed outward (the resumer is not yieldable).
pub(crate) fn swallow_preemption() {
    PREEMPTED.with(|c| c.set(false));
}
