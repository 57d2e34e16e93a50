//! The driver-based patterns (`spawn`, `pingpong`, `ring`, `fanin`, `call`, `idle`): which
//! driver process runs each, what it is given, and how its result is checked.
//!
//! # Protocol
//!
//! The harness starts the pattern's driver (`bench:<pattern>_driver`) on [`HOST`] with one
//! argument, a table `{host = HOST, <size> = n, ...}`. The driver spawns the processes it
//! needs, reads `bench.now()` right before and right after the measured part, and returns a
//! table: `ops`, `t0`, `t1` and the counts its processes reported. [`check`] turns that into
//! a [`Measured`], failing with a message that names the count when any is off — a lost or
//! duplicated message, a process that did not finish, a token that skipped a node. The counts
//! come from the Lua processes themselves, never from the harness's own bookkeeping.
//!
//! | pattern | driver checks (all must hold) |
//! |---|---|
//! | spawn | `done` = N ("done" messages, one per child) |
//! | pingpong | `pongs` = M seen by the driver, `pings` = M seen by the pong process |
//! | ring | `laps` = L tokens came back with the right lap number, `nodes` = K−1 reported on stop, `forwarded` = (K−1)·L, every node forwarded exactly L (`min_forwarded` = `max_forwarded` = L) |
//! | fanin | `received` = S·M, `out_of_order` = 0 (each message arrived once, in per-sender order), `complete_senders` = S |
//! | call | `ok` = M (every call returned its argument + 1), `wrong` = `failed` = 0 |
//! | idle | `up` = P parked processes, `acks` = P stopped; bytes per process = (`rss_full` − `rss_base`) / P |
//!
//! Every pattern also has `unexpected` = 0 (no message with an unknown topic). After the
//! driver returns, the runner checks that no process is left on the bench host.

use wippy_rt::Value;

use super::app::HOST;
use super::options::{Params, Pattern};

/// What one run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// Operations.
    pub ops: u64,
    /// Seconds of the measured span.
    pub seconds: f64,
    /// Latency percentiles (latency pattern only).
    pub latency: Option<LatencySummary>,
    /// Resident bytes per process (idle only).
    pub bytes_per_process: Option<f64>,
    /// The counts behind the checks, in report order.
    pub counts: Vec<(String, Value)>,
}

/// Percentiles of a latency histogram, nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
}

impl LatencySummary {
    /// Summarise a histogram (all zero when it is empty).
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            p50_ns: h.value_at_quantile(0.50),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            mean_ns: h.mean(),
        }
    }
}

/// The driver entry of a driver-based pattern (None for `latency`, which the runner drives
/// itself).
pub fn driver_entry(p: Pattern) -> Option<&'static str> {
    Some(match p {
        Pattern::Spawn => "bench:spawn_driver",
        Pattern::Pingpong => "bench:pingpong_driver",
        Pattern::Ring => "bench:ring_driver",
        Pattern::Fanin => "bench:fanin_driver",
        Pattern::Call => "bench:call_driver",
        Pattern::Idle => "bench:idle_driver",
        Pattern::Latency => return None,
    })
}

/// The driver's argument: `{host = HOST, <size> = n, ...}`.
pub fn driver_input(p: &Params) -> Value {
    let mut m = vec![(Value::str("host"), Value::str(HOST))];
    for (k, v) in p.pairs() {
        m.push((Value::str(k), v));
    }
    Value::Map(m)
}

/// A field of the driver's result as an integer.
fn int(r: &Value, key: &str) -> Result<i64, String> {
    r.get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| bad_result(r, key))
}

#[cold]
fn bad_result(r: &Value, key: &str) -> String {
    format!("driver result has no integer field '{key}' (got {r:?})")
}

/// Compare one count with its expected value.
fn expect(pattern: Pattern, what: &str, got: i64, want: i64) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(mismatch(pattern, what, got, want))
    }
}

#[cold]
fn mismatch(pattern: Pattern, what: &str, got: i64, want: i64) -> String {
    format!("{pattern}: {what} = {got}, expected {want}")
}

/// Check a driver's result against the sizes it was given and measure the run.
///
/// # Errors
/// A count that is off (message names the pattern and the count), or a malformed result.
pub fn check(p: &Params, r: &Value) -> Result<Measured, String> {
    let pat = p.pattern;
    let ops = int(r, "ops")?;
    expect(pat, "ops", ops, p.ops() as i64)?;
    let (t0, t1) = (int(r, "t0")?, int(r, "t1")?);
    if t1 < t0 {
        return Err(format!("{pat}: clock went backwards (t0 {t0}, t1 {t1})"));
    }
    expect(pat, "unexpected messages", int(r, "unexpected")?, 0)?;
    let mut keys: Vec<&str> = Vec::new();
    let mut bytes_per_process = None;
    let n = |v: u64| v as i64;
    match pat {
        Pattern::Spawn => {
            expect(pat, "done messages", int(r, "done")?, n(p.procs))?;
            keys.extend(["spawned", "done"]);
        }
        Pattern::Pingpong => {
            expect(pat, "pongs received", int(r, "pongs")?, n(p.messages))?;
            expect(pat, "pings seen by pong", int(r, "pings")?, n(p.messages))?;
            keys.extend(["pongs", "pings"]);
        }
        Pattern::Ring => {
            expect(pat, "laps completed", int(r, "laps")?, n(p.laps))?;
            expect(pat, "tokens with a wrong lap", int(r, "wrong_token")?, 0)?;
            expect(pat, "nodes reporting", int(r, "nodes")?, n(p.procs - 1))?;
            expect(
                pat,
                "tokens forwarded by nodes",
                int(r, "forwarded")?,
                n((p.procs - 1) * p.laps),
            )?;
            expect(
                pat,
                "fewest forwards by a node",
                int(r, "min_forwarded")?,
                n(p.laps),
            )?;
            expect(
                pat,
                "most forwards by a node",
                int(r, "max_forwarded")?,
                n(p.laps),
            )?;
            keys.extend([
                "laps",
                "nodes",
                "forwarded",
                "min_forwarded",
                "max_forwarded",
            ]);
        }
        Pattern::Fanin => {
            expect(
                pat,
                "messages received",
                int(r, "received")?,
                n(p.senders * p.messages),
            )?;
            expect(
                pat,
                "messages out of order or duplicated",
                int(r, "out_of_order")?,
                0,
            )?;
            expect(
                pat,
                "complete senders",
                int(r, "complete_senders")?,
                n(p.senders),
            )?;
            keys.extend(["received", "out_of_order", "complete_senders"]);
        }
        Pattern::Call => {
            let failed = int(r, "failed")?;
            if failed != 0 {
                let first = r.get("error").and_then(Value::as_str).unwrap_or("?");
                return Err(format!(
                    "call: {failed} calls failed (first error: {first})"
                ));
            }
            expect(pat, "calls with a wrong result", int(r, "wrong")?, 0)?;
            expect(
                pat,
                "calls returning the right value",
                int(r, "ok")?,
                n(p.messages),
            )?;
            keys.extend(["ok", "wrong", "failed"]);
        }
        Pattern::Idle => {
            expect(pat, "processes parked", int(r, "up")?, n(p.procs))?;
            expect(pat, "processes stopped", int(r, "acks")?, n(p.procs))?;
            let (base, full) = (int(r, "rss_base")?, int(r, "rss_full")?);
            if base < 0 || full < 0 {
                return Err("idle: resident set unavailable (/proc/self/status)".into());
            }
            bytes_per_process = Some((full - base) as f64 / p.procs as f64);
            keys.extend(["up", "acks", "rss_base", "rss_full"]);
        }
        Pattern::Latency => return Err("latency has no driver".into()),
    }
    let counts = keys
        .into_iter()
        .filter_map(|k| r.get(k).map(|v| (k.to_string(), v.clone())))
        .collect();
    Ok(Measured {
        ops: ops as u64,
        seconds: (t1 - t0) as f64 / 1e9,
        latency: None,
        bytes_per_process,
        counts,
    })
}
