//! Preemption of Lua code that overruns its time slice.
//!
//! A Lua count hook slows the VM down about 2x while it is installed, so it is installed only
//! on a step that has already run longer than its slice ([`PreemptSettings::slice`], default
//! [`DEFAULT_SLICE`]):
//!
//! 1. Every worker thread that runs Lua has a [`Slot`] (registered on first use): its kernel
//!    thread id, a step sequence number and the start stamp of the step in progress (0 = not
//!    running Lua). [`StepClock::begin`] bumps the sequence and records the start; dropping the
//!    clock clears it (also on unwinding). The stamp comes from the cheapest clock that the
//!    kernel's own monotonic clock is built on (see "Step stamps" below).
//! 2. The watchdog thread sleeps until the earliest deadline (`start + slice`) of the steps it
//!    saw running — or one slice when none runs — and for each slot whose step has run longer
//!    than the slice marks that step as targeted and sends the worker `SIGURG` with `tgkill`
//!    (a signal to a thread of this process only; a stale thread id finds no slot and does
//!    nothing). A step is thus preempted at `slice` plus the timer's wake-up latency (tens of
//!    µs; the watchdog asks for [`WATCHDOG_TIMER_SLACK`]), not at a coarse tick. A step still
//!    running [`RESIGNAL_AFTER`] after its signal is signalled again.
//! 3. The signal handler, on the worker thread, checks that the targeted step is still the
//!    running one and installs the count hook on the Lua thread currently executing there
//!    ([`set_running`] tracks it across the engine's resumes and the user's
//!    `coroutine.resume`/`wrap`). Lua documents `lua_sethook` as callable from a signal
//!    handler (`ldebug.c`); the handler touches only atomics and const-initialised
//!    thread-locals, both async-signal-safe.
//! 4. The hook runs on the Lua thread every `budget.slice` instructions. At a yieldable point
//!    it sets the preempted flag and yields the thread with no values: the engine sees the
//!    flag and ends the step with status `Continue`; the executor puts the process at the back
//!    of the yield queue, behind every process woken meanwhile (`docs/scheduler.md` §2), so
//!    the worker serves the others first. At a non-yieldable point (inside a C function such
//!    as `table.sort`'s comparator) it lets the code continue for up to `max_blocked_fires`
//!    firings, then raises `instruction budget exceeded`. A hook left on a thread from an
//!    earlier step removes itself the next time it fires (a removal re-checks the armed step
//!    afterwards: the signal may have installed the hook in the middle of it). A Lua thread
//!    that regains control in an armed step after a nested one ran ([`restore_running`]: a
//!    user coroutine, a child's `init`) gets the hook set to fire at its next instruction, so
//!    switches cannot keep restarting the countdown. It never yields between a blocking
//!    callback that stored its operation and that callback's marker yield
//!    ([`set_op_pending`]): the operation may already have queued the task with its results.
//!
//! # Idle watchdog
//!
//! When no step has begun or run for [`WATCHDOG_IDLE_AFTER`], the watchdog parks instead of
//! ticking (an idle server wakes nobody). Parking is a store-buffering pair: the watchdog sets
//! `PARKED` then re-reads every slot's start; [`StepClock::begin`] stores its start then reads
//! `PARKED` (all `SeqCst`), so either the watchdog sees the step or the step sees the flag and
//! unparks it.
//!
//! # Step stamps
//!
//! A step's start is stamped on every step (two per message round trip), so the stamp must be
//! cheap. When the kernel's clock source is the TSC (x86_64, `current_clocksource` = `tsc`: the
//! kernel has checked that the counter is invariant and synchronised across CPUs, and
//! `CLOCK_MONOTONIC` is itself computed from it), a stamp is a bare `rdtsc` (~9 ns here,
//! against ~23 ns for `clock_gettime` through the vDSO). Otherwise it is nanoseconds since a
//! process-wide base `Instant`, as before. Only the watchdog converts stamps to time: it
//! samples the counter and `Instant` at its start and at every look, and scales a step's
//! elapsed ticks by the ratio of the two spans since its start (the error of that ratio is the
//! two samples' skew, tens of ns, over the span: negligible from the first look on, which is
//! at least [`TSC_CALIBRATION`] later). A counter read on another CPU may lag the
//! watchdog's by the (tiny) residual skew: elapsed time saturates at zero. (A coarse clock was
//! considered: `CLOCK_MONOTONIC_COARSE` ticks every 4 ms here, far above the 500 µs slice.)
//!
//! The step's start store is the store half of the parking pair and stays `SeqCst`; the
//! sequence bump (only the owning thread writes it; ordered before the start by that store's
//! release) and the clear at the end (a stale non-zero start can only make the watchdog
//! signal a finished step, which the handler already ignores) are plain stores: one
//! read-modify-write per step instead of three.
//!
//! # Slice length
//!
//! The slice bounds how long a CPU-bound process delays a freshly woken one on the same worker
//! (Erlang's equivalent: ~2000 reductions, well under a millisecond). It is chosen by
//! measurement (`docs/decisions/0085-lua-time-slice.md`): shorter slices cost a watchdog
//! wake-up and a signal per slice per busy worker. `WIPPY_LUA_TIMESLICE` (a Go duration,
//! e.g. `250us`, `2ms`) overrides the default for the whole process.
//!
//! Only `SIGURG` is used (as Go's runtime does): it is ignored by default and no part of wippy
//! uses out-of-band socket data.

use std::cell::Cell;
use std::ffi::c_int;
use std::ptr;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed, Ordering::Release, Ordering::SeqCst,
    compiler_fence,
};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use mlua::ffi;

use crate::lua::vm::PreemptConfig;

/// Default time slice: a step that runs longer is preempted at its next yieldable point.
/// 500 µs: keeps the p99 delivery latency of a message to a process sharing its worker with
/// CPU-bound ones under 1 ms, for a measured ~1–2% cost to the CPU-bound processes
/// (decision 0085).
pub const DEFAULT_SLICE: Duration = Duration::from_micros(500);

/// Shortest slice accepted from `WIPPY_LUA_TIMESLICE`: below it the watchdog's own wake-ups
/// and the signals would dominate.
pub const MIN_SLICE: Duration = Duration::from_micros(50);

/// Shortest sleep of the watchdog between two looks (it never spins).
pub const WATCHDOG_MIN_SLEEP: Duration = Duration::from_micros(20);

/// Timer slack the watchdog asks for (the Linux default, 50 µs, would make every preemption
/// up to that late).
pub const WATCHDOG_TIMER_SLACK: Duration = Duration::from_micros(10);

/// No step for this long → the watchdog parks until the next step begins.
pub const WATCHDOG_IDLE_AFTER: Duration = Duration::from_millis(50);

/// Wait of the watchdog between its first counter sample and its first look, when steps are
/// stamped with the TSC: the tick-to-nanosecond ratio is measured over at least this span
/// (error ≈ 40 ns / 1 ms = 0.004 %). Delays only the preemption of a step running when the
/// watchdog starts, once, by at most this.
pub const TSC_CALIBRATION: Duration = Duration::from_millis(1);

/// A step still running this long after its preemption signal is signalled again. The hook
/// yields within microseconds of a signal the worker receives, so a step gets here when the
/// OS kept its worker off the CPU (common on a loaded machine: a few per `wippy bench latency`
/// run), in a long non-yieldable C call (the hook keeps counting its budget), or when a
/// preemption was lost on the worker. The last happened: before the repeat, about 1 run in 20
/// of `wippy bench latency` left CPU-bound processes running for ever (decision 0110, stop 12
/// update; cause not found). The repeat bounds any of these to a delay.
pub const RESIGNAL_AFTER: Duration = Duration::from_millis(10);

static RESIGNAL_REPORTED: AtomicBool = AtomicBool::new(false);

/// Re-signals by what the first signal's handler did: not armed / armed with no Lua thread
/// running / armed with the hook installed.
static RESIGNAL_KINDS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Number of repeated preemption signals sent since the process started (diagnostics; see
/// [`RESIGNAL_AFTER`]).
pub fn resignals() -> u64 {
    resignal_kinds().iter().sum()
}

/// [`resignals`] split by what the handler of the step's earlier signal did: `[not armed,
/// armed while no Lua thread ran, armed with the hook installed]` (diagnostics).
pub fn resignal_kinds() -> [u64; 3] {
    [0, 1, 2].map(|i| RESIGNAL_KINDS[i].load(Relaxed))
}

/// Environment variable overriding [`DEFAULT_SLICE`].
pub const SLICE_ENV: &str = "WIPPY_LUA_TIMESLICE";

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
            slice: slice_from_env().unwrap_or(DEFAULT_SLICE),
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

/// The slice from [`SLICE_ENV`], if set and valid (an invalid value is reported and ignored).
fn slice_from_env() -> Option<Duration> {
    let v = std::env::var(SLICE_ENV).ok()?;
    match parse_slice(&v) {
        Ok(d) => Some(d),
        Err(e) => {
            log::warn!("{SLICE_ENV}: {e}; using the default {DEFAULT_SLICE:?}");
            None
        }
    }
}

/// Parse a time slice (a Go duration of at least [`MIN_SLICE`]).
///
/// # Errors
/// Not a Go duration, or shorter than [`MIN_SLICE`].
pub fn parse_slice(v: &str) -> Result<Duration, String> {
    let d = crate::config::duration::parse_duration(v).map_err(|e| e.to_string())?;
    if d < MIN_SLICE {
        return Err(format!(
            "time slice {v:?} is shorter than the minimum {MIN_SLICE:?}"
        ));
    }
    Ok(d)
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
    /// [`stamp`] at which the running step started; 0 = idle.
    start: AtomicU64,
    /// The step sequence number the watchdog wants preempted.
    target: AtomicU64,
    /// Diagnostics for re-signals: the step the signal handler last armed, and whether a Lua
    /// thread was running there at the time (the hook went on it) or not (left to the next
    /// `set_running`).
    armed: AtomicU64,
    armed_running: AtomicBool,
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

/// Step stamps are TSC ticks (decided once, before any slot exists; see the module docs).
static USE_TSC: AtomicBool = AtomicBool::new(false);

/// Whether the TSC can stamp steps: x86_64 and the kernel's clock source is the TSC.
fn tsc_usable() -> bool {
    cfg!(target_arch = "x86_64")
        && std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .is_ok_and(|s| s.trim() == "tsc")
}

/// The TSC (x86_64 only; never called elsewhere).
#[inline(always)]
fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` has no preconditions; it is only used once the kernel reported the
        // TSC as its clock source (so the instruction is available and not trapped).
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

/// A step start stamp: TSC ticks or nanoseconds since [`base`] (see the module docs); never 0.
#[inline]
fn stamp() -> u64 {
    if USE_TSC.load(Relaxed) {
        tsc().max(1)
    } else {
        now_ns()
    }
}

/// The watchdog's conversion of stamps to nanoseconds.
struct Clock {
    tsc: bool,
    /// Counter and `Instant` sampled at the watchdog's start.
    c0: u64,
    t0: u64,
    /// Latest samples (taken by [`Clock::sample`]).
    c: u64,
    t: u64,
}

impl Clock {
    fn new(tsc: bool) -> Clock {
        let (c0, t0) = (if tsc { self::tsc() } else { 0 }, now_ns());
        if tsc {
            // The first look's ratio spans at least this (see `TSC_CALIBRATION`).
            std::thread::sleep(TSC_CALIBRATION);
        }
        Clock {
            tsc,
            c0,
            t0,
            c: c0,
            t: t0,
        }
    }

    /// Sample the clocks; returns now in nanoseconds since [`base`].
    fn sample(&mut self) -> u64 {
        if self.tsc {
            self.c = tsc();
        }
        self.t = now_ns();
        self.t
    }

    /// Nanoseconds from `start` (a [`stamp`]) to the latest sample.
    fn elapsed(&self, start: u64) -> u64 {
        if !self.tsc {
            return self.t.saturating_sub(start);
        }
        let ticks = self.c.saturating_sub(start);
        let (dc, dt) = (
            self.c.saturating_sub(self.c0),
            self.t.saturating_sub(self.t0),
        );
        if dc == 0 {
            return 0;
        }
        ((ticks as u128 * dt as u128) / dc as u128) as u64
    }
}

thread_local! {
    /// This thread's slot (leaked: slots live as long as the process).
    static SLOT: Cell<*const Slot> = const { Cell::new(ptr::null()) };
    /// The Lua thread currently executing on this OS thread (null = none).
    static RUNNING: Cell<*mut ffi::lua_State> = const { Cell::new(ptr::null_mut()) };
    /// Sequence number of the step the watchdog asked to preempt (0 = none since this step
    /// began). While it equals the running step's, every Lua thread this OS thread resumes
    /// gets the hook ([`set_running`]).
    static ARMED_SEQ: Cell<u64> = const { Cell::new(0) };
    /// Set by the hook when it yielded a thread.
    static PREEMPTED: Cell<bool> = const { Cell::new(false) };
    /// Consecutive firings at non-yieldable points.
    static BLOCKED: Cell<u32> = const { Cell::new(0) };
    /// The hook was installed to fire at once ([`restore_running`]); its first firing at a
    /// non-yieldable point is not a budget period and is not counted in [`BLOCKED`].
    static EARLY: Cell<bool> = const { Cell::new(false) };
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
        armed: AtomicU64::new(0),
        armed_running: AtomicBool::new(false),
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
            // Only this thread writes `seq`; the `SeqCst` start store below releases it.
            slot.seq
                .store(slot.seq.load(Relaxed).wrapping_add(1), Relaxed);
            slot.start.store(stamp(), SeqCst);
            BLOCKED.with(|b| b.set(0));
            EARLY.with(|c| c.set(false));
            ARMED_SEQ.with(|c| c.set(0));
            // Store-buffering pair with the watchdog's `PARKED = true; re-read starts`.
            if WATCHDOG_PARKED.load(SeqCst) {
                wake_watchdog();
            }
        }
        StepClock { slot, outer }
    }
}

impl Drop for StepClock {
    fn drop(&mut self) {
        if self.outer {
            // A plain store: see "Step stamps" in the module docs.
            self.slot.start.store(0, Release);
        }
    }
}

/// Record `l` as the Lua thread about to start (or resume) executing on this OS thread;
/// returns the previous one, to be restored with [`restore_running`] when `l` gives control
/// back.
///
/// If the running step was already asked to yield (the signal came while no Lua thread ran,
/// or while another one did), `l` gets the hook too: a preemption is never lost because the
/// signal landed in Rust code or the step switched to another coroutine.
#[inline]
pub(crate) fn set_running(l: *mut ffi::lua_State) -> *mut ffi::lua_State {
    let prev = RUNNING.with(|c| c.replace(l));
    if !l.is_null() && ARMED_SEQ.with(Cell::get) != 0 {
        arm_if_current(l, settings().budget.slice);
    }
    prev
}

/// Record `prev` (a value returned by [`set_running`]) as executing again: the Lua thread that
/// started a nested one (a user coroutine, a child's `init`) continues.
///
/// If the step was armed meanwhile, `prev` gets a hook that fires at its next instruction
/// ([`SWITCH_BACK_COUNT`]): the step is already past its slice, and `lua_sethook` restarts a
/// thread's countdown, so re-installing the full period on every switch back would let a loop
/// that keeps starting nested Lua (`while true do process.spawn(...) end`: the child's `init`
/// runs on this OS thread) run for ever without reaching it (decision 0110).
#[inline]
pub(crate) fn restore_running(prev: *mut ffi::lua_State) {
    RUNNING.with(|c| c.set(prev));
    if !prev.is_null() && ARMED_SEQ.with(Cell::get) != 0 && arm_if_current(prev, SWITCH_BACK_COUNT)
    {
        EARLY.with(|c| c.set(true));
    }
}

/// Hook period installed on a thread that regains control in an armed step: fire at the next
/// instruction. Where the hook cannot yield there it re-installs the normal period.
const SWITCH_BACK_COUNT: u32 = 1;

/// Install the hook with period `count` on `l` if the armed step is the one running; true if
/// it did.
#[cold]
fn arm_if_current(l: *mut ffi::lua_State, count: u32) -> bool {
    let s = SLOT.with(Cell::get);
    if s.is_null() {
        return false;
    }
    // SAFETY: slots are leaked and never freed.
    let slot = unsafe { &*s };
    if ARMED_SEQ.with(Cell::get) == slot.seq.load(Relaxed) && slot.start.load(Relaxed) != 0 {
        // SAFETY: `l` is a live Lua thread about to run (or to continue running) on this OS
        // thread; installing a hook on a thread that is not executing is always allowed.
        unsafe { install_hook(l, count) };
        return true;
    }
    false
}

/// Install the count hook on `l`, firing every `count` instructions.
///
/// # Safety
/// `l` is a live Lua thread of a state owned by this OS thread right now.
unsafe fn install_hook(l: *mut ffi::lua_State, count: u32) {
    // SAFETY: per the function's contract; `lua_sethook` is async-signal-safe (see the
    // module docs).
    unsafe { ffi::lua_sethook(l, Some(hook), ffi::LUA_MASKCOUNT, count.max(1) as c_int) };
}

/// Remove the hook from `l` (outside the signal handler).
///
/// The signal handler may interrupt `lua_sethook` halfway and install the hook; the rest of
/// the removal would then clear the mask again and the armed step would never yield (the
/// watchdog signals a step once). So the removal re-reads [`ARMED_SEQ`] afterwards and
/// re-installs the hook if the running step was armed meanwhile.
///
/// # Safety
/// `l` is the Lua thread running on this OS thread.
unsafe fn remove_hook(l: *mut ffi::lua_State, current: u64) {
    // SAFETY: per the function's contract.
    unsafe { ffi::lua_sethook(l, None, 0, 0) };
    // The handler runs on this thread: a compiler fence orders our reads after its writes.
    compiler_fence(SeqCst);
    if current != 0 && ARMED_SEQ.with(Cell::get) == current {
        // SAFETY: as above.
        unsafe { install_hook(l, settings().budget.slice) };
    }
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

/// The watchdog is parked (idle) and wants an unpark when a step begins.
static WATCHDOG_PARKED: AtomicBool = AtomicBool::new(false);
/// The watchdog thread, for unparking.
static WATCHDOG_THREAD: OnceLock<std::thread::Thread> = OnceLock::new();

#[cold]
fn wake_watchdog() {
    if WATCHDOG_PARKED.swap(false, SeqCst)
        && let Some(t) = WATCHDOG_THREAD.get()
    {
        t.unpark();
    }
}

fn start_watchdog() {
    WATCHDOG.call_once(|| {
        install_signal_handler();
        let _ = base();
        // Before any slot exists: every stamp of the process uses the same clock.
        USE_TSC.store(tsc_usable(), Relaxed);
        let t = std::thread::Builder::new()
            .name("wippy-lua-watchdog".into())
            .spawn(watchdog_loop)
            .expect("spawn lua watchdog thread");
        let _ = WATCHDOG_THREAD.set(t.thread().clone());
    });
}

/// What one look at the slots found.
struct Scan {
    /// Earliest deadline (ns) of a running step not yet past its slice.
    next: Option<u64>,
    /// Sum of the slots' step sequence numbers (changes whenever any step begins).
    seqs: u64,
    /// Some slot is running a step.
    running: bool,
}

/// Signal every step past its slice; report the next deadline (nanoseconds since [`base`]).
fn scan(slots: &[&'static Slot], slice: u64, clock: &mut Clock, sent: &mut Vec<u64>) -> Scan {
    let now = clock.sample();
    sent.resize(slots.len(), 0);
    let mut out = Scan {
        next: None,
        seqs: 0,
        running: false,
    };
    for (i, s) in slots.iter().enumerate() {
        if !s.alive.load(SeqCst) {
            continue;
        }
        let seq = s.seq.load(SeqCst);
        out.seqs = out.seqs.wrapping_add(seq);
        let start = s.start.load(SeqCst);
        if start == 0 || s.seq.load(SeqCst) != seq {
            continue;
        }
        out.running = true;
        let ran = clock.elapsed(start);
        if ran < slice {
            let deadline = now + (slice - ran);
            out.next = Some(out.next.map_or(deadline, |n| n.min(deadline)));
            continue;
        }
        if s.target.swap(seq, SeqCst) == seq {
            // Already signalled for this step. Normally it yields within microseconds; one
            // still running long after (a non-yieldable C call, or a preemption lost on the
            // worker) is signalled again, so no step can keep a worker for ever.
            if now.saturating_sub(sent[i]) < RESIGNAL_AFTER.as_nanos() as u64 {
                continue;
            }
            if !RESIGNAL_REPORTED.swap(true, Relaxed) {
                // Debug only: a worker the OS kept off its CPU for that long gets here too.
                log::debug!(
                    target: "wippy::lua",
                    "a Lua step on thread {} still runs {:?} after its preemption signal (a long \
                     non-yieldable C call, or a lost preemption); signalling again (reported once)",
                    s.tid.load(Relaxed),
                    RESIGNAL_AFTER
                );
            }
            let kind = if s.armed.load(Relaxed) != seq {
                0 // the handler has not armed this step (signal not yet run, or a mismatch)
            } else if s.armed_running.load(Relaxed) {
                2 // armed with the hook installed on the running Lua thread
            } else {
                1 // armed while no Lua thread ran (the hook left to `set_running`)
            };
            RESIGNAL_KINDS[kind].fetch_add(1, Relaxed);
        }
        sent[i] = now;
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
    out
}

fn watchdog_loop() {
    set_timer_slack(WATCHDOG_TIMER_SLACK);
    let mut sent = Vec::new();
    let slice = settings().slice.as_nanos() as u64;
    let idle_after = WATCHDOG_IDLE_AFTER.as_nanos() as u64;
    let min_sleep = WATCHDOG_MIN_SLEEP.as_nanos() as u64;
    let mut clock = Clock::new(USE_TSC.load(Relaxed));
    let (mut last_seqs, mut quiet_since) = (0u64, now_ns());
    loop {
        let slots: Vec<&'static Slot> = SLOTS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let sc = scan(&slots, slice, &mut clock, &mut sent);
        let now = now_ns();
        if sc.running || sc.seqs != last_seqs {
            last_seqs = sc.seqs;
            quiet_since = now;
        } else if now.saturating_sub(quiet_since) >= idle_after {
            // Idle: park until a step begins (see the module docs for the flag protocol).
            WATCHDOG_PARKED.store(true, SeqCst);
            let busy = slots
                .iter()
                .any(|s| s.alive.load(SeqCst) && s.start.load(SeqCst) != 0);
            if !busy {
                while WATCHDOG_PARKED.load(SeqCst) {
                    std::thread::park();
                }
            }
            WATCHDOG_PARKED.store(false, SeqCst);
            quiet_since = now_ns();
            continue;
        }
        let wake = sc.next.unwrap_or(now + slice).max(now + min_sleep);
        std::thread::sleep(Duration::from_nanos(wake - now));
    }
}

/// Ask for `slack` timer slack on this thread. Best effort.
fn set_timer_slack(slack: Duration) {
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long by value and only changes the calling
    // thread's timer slack; no pointer is passed and no memory is touched.
    unsafe {
        libc::prctl(
            libc::PR_SET_TIMERSLACK,
            slack.as_nanos() as libc::c_ulong,
            0,
            0,
            0,
        );
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
        if slot.target.load(SeqCst) == seq && slot.start.load(SeqCst) != 0 {
            // Armed even when no Lua thread runs right now: the next one resumed in this
            // step gets the hook from `set_running`.
            ARMED_SEQ.with(|c| c.set(seq));
            slot.armed_running.store(!l.is_null(), Relaxed);
            slot.armed.store(seq, Relaxed);
            if !l.is_null() {
                // SAFETY: `l` is the Lua thread executing on this OS thread right now (or one
                // suspended by it), alive for the duration of its resume; Lua documents
                // `lua_sethook` as safe to call from a signal handler interrupting that
                // thread.
                unsafe { install_hook(l, settings().budget.slice) };
            }
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

unsafe extern "C-unwind" fn hook(l: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    let s = SLOT.with(Cell::get);
    let current = if s.is_null() {
        0
    } else {
        // SAFETY: slots are leaked and never freed.
        unsafe { &*s }.seq.load(Relaxed)
    };
    if ARMED_SEQ.with(Cell::get) != current {
        // Left over from an earlier step (or inherited by a coroutine created while armed).
        // SAFETY: `l` is the running thread that invoked this hook.
        unsafe { remove_hook(l, current) };
        return;
    }
    let budget = settings().budget;
    if OP_PENDING.with(Cell::get) {
        // Between a callback that stored its operation and the marker yield (a few
        // instructions): let the marker yield happen instead. If it does not come within a
        // firing (the yield failed: a non-yieldable context), stop waiting for it. The
        // normal period (the hook may have been installed to fire at once, see
        // `restore_running`) gives the marker those instructions.
        OP_PENDING.with(|c| c.set(false));
        // SAFETY: `l` is the running thread.
        unsafe { install_hook(l, budget.slice) };
        return;
    }
    // SAFETY: `l` is the running thread; `lua_isyieldable` only reads it.
    if unsafe { ffi::lua_isyieldable(l) } != 0 {
        PREEMPTED.with(|c| c.set(true));
        BLOCKED.with(|b| b.set(0));
        EARLY.with(|c| c.set(false));
        // SAFETY: yielding from a count hook with no values is allowed by Lua 5.4; this frame
        // holds no values with destructors.
        unsafe { ffi::lua_yield(l, 0) };
        return;
    }
    // Not yieldable here: count the budget in whole periods from now on.
    // SAFETY: `l` is the running thread.
    unsafe { install_hook(l, budget.slice) };
    if EARLY.with(|c| c.replace(false)) {
        // Installed to fire at once after a switch back (`restore_running`), not a period.
        return;
    }
    let n = BLOCKED.with(|b| {
        let n = b.get() + 1;
        b.set(n);
        n
    });
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
