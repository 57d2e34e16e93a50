//! Reporting: one [`RunRecord`] per measured run (the `--json` line), and the human summary
//! table over all runs (median and min..max of each metric).
//!
//! # JSON line
//!
//! `pattern, run, workers, pinned, ops, seconds, ns_per_op, ops_per_sec, p50_ns, p99_ns,
//! p999_ns, max_ns, rss_bytes, bytes_per_process, boot_seconds, params, counts` — latency
//! fields are `null` for patterns that do not measure latency, `bytes_per_process` is `null`
//! except for `idle`. `rss_bytes` is the peak resident set of the whole OS process during the
//! run. `counts` are the checked counts the Lua processes reported.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::options::Params;
use super::patterns::Measured;

/// One measured run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRecord {
    /// Pattern name.
    pub pattern: &'static str,
    /// 1-based run number (warm-up runs not counted).
    pub run: usize,
    /// Worker threads.
    pub workers: usize,
    /// Workers pinned to CPUs.
    pub pinned: bool,
    /// Operations.
    pub ops: u64,
    /// Seconds of the measured span.
    pub seconds: f64,
    /// Nanoseconds per operation.
    pub ns_per_op: f64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Median latency (latency pattern).
    pub p50_ns: Option<u64>,
    /// 99th percentile latency.
    pub p99_ns: Option<u64>,
    /// 99.9th percentile latency.
    pub p999_ns: Option<u64>,
    /// Largest latency.
    pub max_ns: Option<u64>,
    /// Peak resident set during the run, bytes.
    pub rss_bytes: u64,
    /// Resident bytes per idle process (idle pattern).
    pub bytes_per_process: Option<f64>,
    /// Boot time of the session, seconds.
    pub boot_seconds: f64,
    /// The sizes.
    pub params: Map<String, Json>,
    /// The checked counts.
    pub counts: Map<String, Json>,
}

fn to_json(v: &wippy_rt::Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

impl RunRecord {
    /// Build the record of run `run` from its measurement.
    pub fn new(
        p: &Params,
        run: usize,
        workers: usize,
        pinned: bool,
        boot: Duration,
        m: &Measured,
        rss_bytes: u64,
    ) -> RunRecord {
        let seconds = m.seconds;
        let ops = m.ops.max(1) as f64;
        let lat = m.latency;
        RunRecord {
            pattern: p.pattern.name(),
            run,
            workers,
            pinned,
            ops: m.ops,
            seconds,
            ns_per_op: seconds * 1e9 / ops,
            ops_per_sec: if seconds > 0.0 {
                m.ops as f64 / seconds
            } else {
                0.0
            },
            p50_ns: lat.map(|l| l.p50_ns),
            p99_ns: lat.map(|l| l.p99_ns),
            p999_ns: lat.map(|l| l.p999_ns),
            max_ns: lat.map(|l| l.max_ns),
            rss_bytes,
            bytes_per_process: m.bytes_per_process,
            boot_seconds: boot.as_secs_f64(),
            params: p
                .pairs()
                .iter()
                .map(|(k, v)| (k.to_string(), to_json(v)))
                .collect(),
            counts: m
                .counts
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        }
    }

    /// The record as one line of JSON.
    pub fn to_json_line(&self) -> String {
        // A struct of numbers, strings and JSON maps always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Median, smallest and largest of some samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Median (mean of the two middle samples for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// None for no samples.
    pub fn of(samples: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = samples.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// `1234567.0` → `1.23 M`.
pub fn si(x: f64) -> String {
    let (v, u) = if x >= 1e9 {
        (x / 1e9, " G")
    } else if x >= 1e6 {
        (x / 1e6, " M")
    } else if x >= 1e3 {
        (x / 1e3, " k")
    } else {
        (x, " ")
    };
    format!("{}{u}", sig3(v))
}

/// Three significant digits, no exponent.
fn sig3(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Nanoseconds as `850 ns`, `12.3 µs`, `4.56 ms`, `1.23 s`.
pub fn duration_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{} s", sig3(ns / 1e9))
    } else if ns >= 1e6 {
        format!("{} ms", sig3(ns / 1e6))
    } else if ns >= 1e3 {
        format!("{} µs", sig3(ns / 1e3))
    } else {
        format!("{} ns", sig3(ns))
    }
}

/// Bytes as `812 B`, `13.2 KiB`, `85.1 MiB`, `1.20 GiB`.
pub fn bytes(b: f64) -> String {
    const K: f64 = 1024.0;
    if b >= K * K * K {
        format!("{} GiB", sig3(b / (K * K * K)))
    } else if b >= K * K {
        format!("{} MiB", sig3(b / (K * K)))
    } else if b >= K {
        format!("{} KiB", sig3(b / K))
    } else {
        format!("{} B", sig3(b))
    }
}

/// The human summary of a session's runs.
pub fn table(p: &Params, records: &[RunRecord]) -> String {
    let mut out = String::new();
    let Some(first) = records.first() else {
        return out;
    };
    let _ = writeln!(
        out,
        "wippy bench {} — {} — {} worker{}{} — {} run{}",
        p.pattern,
        p.describe(),
        first.workers,
        if first.workers == 1 { "" } else { "s" },
        if first.pinned { ", pinned" } else { "" },
        records.len(),
        if records.len() == 1 { "" } else { "s" },
    );
    let _ = writeln!(
        out,
        "{} ops per run ({}), boot {}",
        first.ops,
        p.pattern.op_name(),
        duration_ns(first.boot_seconds * 1e9)
    );
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row = |name: &str, s: Option<Spread>, fmt: &dyn Fn(f64) -> String| {
        let (m, r) = match s {
            Some(s) => (
                fmt(s.median),
                if records.len() > 1 {
                    format!("{} .. {}", fmt(s.min), fmt(s.max))
                } else {
                    String::new()
                },
            ),
            None => ("n/a".to_string(), String::new()),
        };
        rows.push((name.to_string(), m, r));
    };
    let col = |f: &dyn Fn(&RunRecord) -> Option<f64>| Spread::of(records.iter().filter_map(f));
    row("throughput", col(&|r| Some(r.ops_per_sec)), &|x| {
        format!("{}ops/s", si(x))
    });
    row("time per op", col(&|r| Some(r.ns_per_op)), &duration_ns);
    row(
        "latency p50",
        col(&|r| r.p50_ns.map(|v| v as f64)),
        &duration_ns,
    );
    row(
        "latency p99",
        col(&|r| r.p99_ns.map(|v| v as f64)),
        &duration_ns,
    );
    row(
        "latency p99.9",
        col(&|r| r.p999_ns.map(|v| v as f64)),
        &duration_ns,
    );
    row(
        "latency max",
        col(&|r| r.max_ns.map(|v| v as f64)),
        &duration_ns,
    );
    row("peak RSS", col(&|r| Some(r.rss_bytes as f64)), &bytes);
    if records.iter().any(|r| r.bytes_per_process.is_some()) {
        row("RSS per process", col(&|r| r.bytes_per_process), &bytes);
    }
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = writeln!(out);
    let spread_head = if records.len() > 1 { "min .. max" } else { "" };
    let _ = writeln!(out, "  {:<w0$}  {:>w1$}  {spread_head}", "", "median");
    for (name, m, r) in &rows {
        let pad = w1.saturating_sub(m.chars().count());
        let _ = writeln!(out, "  {name:<w0$}  {}{m}  {r}", " ".repeat(pad));
    }
    let checks: Vec<String> = first
        .counts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !checks.is_empty() {
        let _ = writeln!(out, "\nchecked (run 1): {}", checks.join(" "));
    }
    out
}
