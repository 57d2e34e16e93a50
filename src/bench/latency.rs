//! The `latency` pattern: an open-loop message load with a CPU-heavy background mix.
//!
//! # Setup
//!
//! 1. `hogs` background processes (`bench:latency_hog`) start first, cycling through three
//!    kinds of Lua work — integer arithmetic, small-table allocation (GC pressure), string
//!    building. A hog never blocks: it polls its inbox without waiting between rounds of
//!    `work` loop iterations (tens of milliseconds of Lua each), so only preemption lets
//!    other processes of its worker run while it works.
//! 2. `receivers` processes (`bench:latency_receiver`) wait on their inboxes.
//! 3. After [`RAMP`] (the hogs are busy on every worker), the load generator starts.
//!
//! # Load generator (open loop)
//!
//! A native thread outside the worker pool — load arriving from outside, as requests do —
//! sends message *i* at its scheduled time `start + i / rate` to receiver `i mod receivers`,
//! with the scheduled time (probe clock, ns) as the payload. It sleeps until the next message
//! is due (timer slack 1 ns) and, when late, sends every overdue message at once: the
//! schedule never waits for the system (no coordinated omission). A receiver records
//! `now − scheduled` in the probe's HDR histogram, so the latency includes the generator's
//! own lateness (reported separately as `sender_lag_*`: the OS's sleep granularity, tens of
//! µs), the send, the wake-up and the wait for a worker.
//!
//! # Counts
//!
//! After the last message, every receiver gets "stop" (after its messages: one sender, per
//! sender order) and returns how many messages it saw; the sum must equal the messages sent
//! and the histogram's sample count. Every hog must have completed at least one round (the
//! background load really ran); their rounds are reported as `hog_rounds`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wippy_rt::{ExitWatch, Package, Pid, Value};

use super::options::Params;
use super::patterns::{LatencySummary, Measured};
use super::probe;
use super::runner::{Started, wait_exit};
use crate::system::System;

/// Time the hogs run before the load starts.
pub const RAMP: Duration = Duration::from_millis(200);

/// The background process kinds, assigned round-robin.
pub const HOG_KINDS: [&str; 3] = ["arith", "tables", "strings"];

/// Run one latency measurement.
///
/// # Errors
/// A process that failed to start or exit, a count that does not add up.
pub fn run(sys: &Arc<System>, p: &Params, timeout: Duration) -> Result<Measured, String> {
    let mut started = Started::new(sys.handle.clone());
    let mut hogs: Vec<(Pid, ExitWatch)> = Vec::new();
    for i in 0..p.hogs as usize {
        let kind = HOG_KINDS[i % HOG_KINDS.len()];
        let input = vec![Value::str(kind), Value::Int(p.work as i64)];
        hogs.push(started.start(sys, "bench:latency_hog", input)?);
    }
    let mut receivers: Vec<(Pid, ExitWatch)> = Vec::new();
    for _ in 0..p.receivers {
        receivers.push(started.start(sys, "bench:latency_receiver", Vec::new())?);
    }
    std::thread::sleep(RAMP);
    probe::reset_latency();

    let pids: Vec<Pid> = receivers.iter().map(|(p, _)| p.clone()).collect();
    let handle = sys.handle.clone();
    let (rate, total) = (p.rate, p.total_messages());
    let generator = std::thread::Builder::new()
        .name("wippy-bench-load".into())
        .spawn(move || generate(&handle, &pids, rate, total))
        .map_err(|e| format!("latency: cannot start the load thread: {e}"))?;
    let load = generator
        .join()
        .map_err(|_| "latency: the load thread panicked".to_string())??;

    let deadline = Instant::now() + timeout;
    let mut seen = 0i64;
    for (pid, watch) in &receivers {
        send_stop(sys, pid)?;
        let v = wait_exit(&sys.handle, watch, deadline, "latency receiver")?;
        seen += v
            .as_i64()
            .ok_or_else(|| format!("latency receiver returned {v:?}"))?;
    }
    let mut rounds = Vec::new();
    for (pid, watch) in &hogs {
        send_stop(sys, pid)?;
        let v = wait_exit(&sys.handle, watch, deadline, "latency hog")?;
        rounds.push(v.get("rounds").and_then(Value::as_i64).unwrap_or(0));
    }
    started.forget_all();
    let hist = probe::take_latency();

    if seen != load.sent as i64 {
        return Err(format!(
            "latency: receivers saw {seen} messages, {} were sent",
            load.sent
        ));
    }
    if hist.len() != load.sent {
        return Err(format!(
            "latency: {} latency samples for {} messages",
            hist.len(),
            load.sent
        ));
    }
    if let Some(i) = rounds.iter().position(|r| *r < 1) {
        return Err(format!(
            "latency: background process {} ({}) completed no round: the CPU load did not run",
            i + 1,
            HOG_KINDS[i % HOG_KINDS.len()]
        ));
    }
    let lag = LatencySummary::of(&load.lag);
    let rounds_total: i64 = rounds.iter().sum();
    Ok(Measured {
        ops: load.sent,
        seconds: load.seconds,
        latency: Some(LatencySummary::of(&hist)),
        bytes_per_process: None,
        counts: vec![
            ("sent".into(), Value::Int(load.sent as i64)),
            ("received".into(), Value::Int(seen)),
            (
                "achieved_rate".into(),
                Value::Float(load.sent as f64 / load.seconds.max(1e-9)),
            ),
            ("sender_lag_p99_ns".into(), Value::Int(lag.p99_ns as i64)),
            ("sender_lag_max_ns".into(), Value::Int(lag.max_ns as i64)),
            ("hogs".into(), Value::Int(rounds.len() as i64)),
            ("hog_rounds".into(), Value::Int(rounds_total)),
            (
                "preempt_resignals".into(),
                Value::Int(crate::lua::engine::preempt::resignals() as i64),
            ),
            (
                "preempt_resignal_kinds".into(),
                Value::str(&format!(
                    "{:?}",
                    crate::lua::engine::preempt::resignal_kinds()
                )),
            ),
            (
                "mean_ns".into(),
                Value::Float(LatencySummary::of(&hist).mean_ns),
            ),
        ],
    })
}

fn send_stop(sys: &System, pid: &Pid) -> Result<(), String> {
    sys.handle
        .send(Package::new(Pid::zero(), pid.clone(), "stop", Vec::new()))
        .map_err(|e| format!("latency: stop {pid}: {e}"))
}

/// What the generator did.
struct Load {
    sent: u64,
    /// From the first scheduled send to the last actual send.
    seconds: f64,
    /// Actual send time − scheduled time, per message.
    lag: hdrhistogram::Histogram<u64>,
}

/// Send `total` messages at `rate` per second, round-robin over `to` (see the module docs).
fn generate(h: &wippy_rt::Handle, to: &[Pid], rate: u64, total: u64) -> Result<Load, String> {
    set_timer_slack();
    let mut lag = probe::new_histogram();
    let interval = 1e9 / rate as f64;
    let start = probe::now_ns() + 1_000_000;
    let mut last = start;
    for i in 0..total {
        let due = start + (i as f64 * interval) as i64;
        let mut now = probe::now_ns();
        if now < due {
            std::thread::sleep(Duration::from_nanos((due - now) as u64));
            now = probe::now_ns();
        }
        let dest = &to[(i % to.len() as u64) as usize];
        h.send(Package::new(
            Pid::zero(),
            dest.clone(),
            "m",
            vec![Value::Int(due)],
        ))
        .map_err(|e| format!("latency: send to {dest}: {e}"))?;
        lag.saturating_record((now - due).max(1) as u64);
        last = now;
        if i & 1023 == 0 {
            probe::set_progress(i);
        }
    }
    probe::set_progress(total);
    Ok(Load {
        sent: total,
        seconds: (last - start).max(1) as f64 / 1e9,
        lag,
    })
}

/// Ask for 1 ns timer slack on this thread, so sleeps end close to the deadline (the default
/// slack of 50 µs would add that much to every scheduled send). Best effort.
fn set_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long by value and only changes the calling
    // thread's timer slack; no pointer is passed and no memory is touched.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}
