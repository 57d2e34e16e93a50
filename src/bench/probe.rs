//! The `bench` Lua module: the harness's probe inside the Lua processes of the bench app.
//!
//! | function | what |
//! |---|---|
//! | `bench.now()` | monotonic nanoseconds since the harness's epoch (integer) — the same clock the harness reads with [`now_ns`] |
//! | `bench.progress(n)` | publish a progress count (shown by the progress indicator) |
//! | `bench.latency(scheduled)` | record `now() - scheduled` (ns) in the latency histogram |
//! | `bench.rss()` | resident set of the whole OS process in bytes (`VmRSS`) |
//!
//! It is a *listed* module (only entries with `bench` in `modules:` see it), registered by
//! [`register`] before boot so the bench app's entries compile. The shared state (progress
//! counter, histogram) is process-wide: one bench session runs at a time
//! ([`super::runner`] holds a process-wide lock for the whole session).
//!
//! # Clock
//!
//! `now()` is `Instant::elapsed` from a process-wide epoch fixed at first use, as an `i64` of
//! nanoseconds (an `Instant` is `CLOCK_MONOTONIC` on Linux: no wall-clock jumps). Lua code
//! measures spans with it; the latency generator stamps messages with it.
//!
//! # Histogram
//!
//! An HDR histogram with 3 significant digits over 1 ns .. [`HIST_MAX_NS`]; values beyond the
//! range saturate to it (a latency above an hour is reported as one hour, never dropped).
//! Recording takes a mutex: at the rates `latency` runs (≈10⁵/s over 2 workers) the lock is
//! uncontended almost always, and a lost or duplicated sample would falsify the percentiles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, Once};
use std::time::Instant;

use hdrhistogram::Histogram;
use mlua::{Lua, Value as LuaValue};

use crate::lua::modules::register_module;

/// Name of the module (as listed in `modules:`).
pub const MODULE: &str = "bench";

/// Highest latency the histogram distinguishes (1 hour); larger values saturate.
pub const HIST_MAX_NS: u64 = 3_600_000_000_000;

/// Significant decimal digits kept by the histogram (0.1% relative error).
pub const HIST_SIGFIG: u8 = 3;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);
static PROGRESS: AtomicU64 = AtomicU64::new(0);
static LATENCY: LazyLock<Mutex<Histogram<u64>>> = LazyLock::new(|| Mutex::new(new_histogram()));

/// An empty latency histogram with the probe's bounds.
pub fn new_histogram() -> Histogram<u64> {
    // Bounds are constants that satisfy hdrhistogram's preconditions (low >= 1,
    // high >= 2 * low, sigfig <= 5): failure would be a programming error.
    Histogram::new_with_bounds(1, HIST_MAX_NS, HIST_SIGFIG).expect("valid histogram bounds")
}

/// Monotonic nanoseconds since the probe's epoch (the value `bench.now()` returns).
pub fn now_ns() -> i64 {
    EPOCH.elapsed().as_nanos() as i64
}

/// The last count published with `bench.progress`.
pub fn progress() -> u64 {
    PROGRESS.load(Ordering::Relaxed)
}

/// Publish a progress count from the harness side (the latency load generator).
pub fn set_progress(n: u64) {
    PROGRESS.store(n, Ordering::Relaxed);
}

/// Reset the progress count (start of a run).
pub fn reset_progress() {
    set_progress(0);
}

/// Record one latency sample: `now - scheduled` nanoseconds (clamped to the histogram's
/// range; a sample "from the future" — impossible with one clock — counts as 1 ns).
pub fn record_latency(scheduled_ns: i64) {
    let d = now_ns().saturating_sub(scheduled_ns).max(1) as u64;
    lock_histogram().saturating_record(d);
}

/// Take the latency histogram, leaving an empty one (end of a run).
pub fn take_latency() -> Histogram<u64> {
    std::mem::replace(&mut *lock_histogram(), new_histogram())
}

/// Empty the latency histogram (start of a run).
pub fn reset_latency() {
    lock_histogram().reset();
}

fn lock_histogram() -> std::sync::MutexGuard<'static, Histogram<u64>> {
    LATENCY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Register the `bench` module (idempotent). Must run before the bench app's entries are
/// loaded (their `modules: [bench]` is checked when they compile).
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        LazyLock::force(&EPOCH);
        register_module(MODULE, false, std::sync::Arc::new(build));
    });
}

fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 4)?;
    t.raw_set("now", lua.create_function(|_, ()| Ok(now_ns()))?)?;
    t.raw_set(
        "progress",
        lua.create_function(|_, n: i64| {
            PROGRESS.store(n.max(0) as u64, Ordering::Relaxed);
            Ok(())
        })?,
    )?;
    t.raw_set(
        "latency",
        lua.create_function(|_, scheduled: i64| {
            record_latency(scheduled);
            Ok(())
        })?,
    )?;
    t.raw_set(
        "rss",
        lua.create_function(|_, ()| {
            Ok(super::rss::read().map(|m| m.rss_bytes as i64).unwrap_or(-1))
        })?,
    )?;
    Ok(LuaValue::Table(t))
}
