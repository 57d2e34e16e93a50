//! `wippy bench` harness parts that do not need Lua processes: sizes and their validation,
//! the count checks, the JSON record, the histogram summary, the report, RSS parsing, the
//! shipped bench app (it loads and every id it uses exists), and the CLI's argument errors.

use std::process::Command;
use std::time::Duration;

use wippy::bench::options::{Params, Pattern, Sizes, defaults};
use wippy::bench::patterns::{self, LatencySummary, Measured};
use wippy::bench::report::{self, RunRecord, Spread};
use wippy::bench::{app, probe, progress, rss};
use wippy::config::Config;
use wippy::loader::{LoadOptions, load_project};
use wippy::rt::Value;

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (Value::str(k), v.clone()))
            .collect(),
    )
}

fn int(v: i64) -> Value {
    Value::Int(v)
}

fn params(p: Pattern, s: Sizes) -> Params {
    Params::resolve(p, &s, 2).expect("valid sizes")
}

// ------------------------------------------------------------------ sizes

#[test]
fn defaults_are_the_issues_sizes() {
    let s = Sizes::default();
    assert_eq!(params(Pattern::Spawn, s.clone()).procs, 100_000);
    assert_eq!(params(Pattern::Pingpong, s.clone()).messages, 1_000_000);
    let r = params(Pattern::Ring, s.clone());
    assert_eq!((r.procs, r.laps, r.ops()), (10_000, 100, 1_000_000));
    let f = params(Pattern::Fanin, s.clone());
    assert_eq!((f.senders, f.messages, f.ops()), (1000, 1000, 1_000_000));
    let l = params(Pattern::Latency, s.clone());
    assert_eq!(l.rate, 100_000);
    assert_eq!(l.hogs, 2 * defaults::LATENCY_HOGS_PER_WORKER);
    assert_eq!(l.total_messages(), 500_000);
    assert_eq!(params(Pattern::Idle, s).ops(), defaults::IDLE_PROCS);
}

#[test]
fn sizes_that_do_not_apply_are_rejected_by_flag() {
    let e = Params::resolve(
        Pattern::Spawn,
        &Sizes {
            laps: Some(3),
            ..Sizes::default()
        },
        2,
    )
    .unwrap_err();
    assert_eq!(e, "--laps does not apply to spawn (it takes --procs)");
    let e = Params::resolve(
        Pattern::Ring,
        &Sizes {
            rate: Some(3),
            ..Sizes::default()
        },
        2,
    )
    .unwrap_err();
    assert!(e.starts_with("--rate does not apply to ring"), "{e}");
}

#[test]
fn zero_and_degenerate_sizes_are_rejected() {
    let zero_procs = Sizes {
        procs: Some(0),
        ..Sizes::default()
    };
    assert_eq!(
        Params::resolve(Pattern::Spawn, &zero_procs, 2).unwrap_err(),
        "--procs must be greater than 0"
    );
    let one = Sizes {
        procs: Some(1),
        ..Sizes::default()
    };
    assert_eq!(
        Params::resolve(Pattern::Ring, &one, 2).unwrap_err(),
        "--procs must be at least 2 for ring"
    );
    let tiny = Sizes {
        rate: Some(1),
        duration: Some(Duration::from_millis(1)),
        ..Sizes::default()
    };
    assert!(Params::resolve(Pattern::Latency, &tiny, 2).is_err());
    // Zero hogs is allowed: latency without background load.
    let no_hogs = Sizes {
        hogs: Some(0),
        ..Sizes::default()
    };
    assert_eq!(params(Pattern::Latency, no_hogs).hogs, 0);
}

#[test]
fn pattern_names_round_trip() {
    for p in Pattern::ALL {
        assert_eq!(p.name().parse::<Pattern>(), Ok(p));
    }
    let e = "pong".parse::<Pattern>().unwrap_err();
    assert!(
        e.contains("unknown pattern 'pong'") && e.contains("latency"),
        "{e}"
    );
}

#[test]
fn driver_input_carries_host_and_sizes() {
    let p = params(
        Pattern::Ring,
        Sizes {
            procs: Some(7),
            laps: Some(3),
            ..Sizes::default()
        },
    );
    let v = patterns::driver_input(&p);
    assert_eq!(v.get("host").and_then(Value::as_str), Some(app::HOST));
    assert_eq!(v.get("procs").and_then(Value::as_i64), Some(7));
    assert_eq!(v.get("laps").and_then(Value::as_i64), Some(3));
    assert!(v.get("rate").is_none());
}

// ------------------------------------------------------------------ checks

fn base(ops: i64) -> Vec<(&'static str, Value)> {
    vec![
        ("ops", int(ops)),
        ("t0", int(1_000)),
        ("t1", int(2_001_000)),
        ("unexpected", int(0)),
    ]
}

fn with(mut v: Vec<(&'static str, Value)>, more: &[(&'static str, i64)]) -> Value {
    for (k, n) in more {
        v.retain(|(x, _)| x != k);
        v.push((k, int(*n)));
    }
    map(&v)
}

#[test]
fn ring_check_accepts_exact_counts_and_names_the_wrong_one() {
    let p = params(
        Pattern::Ring,
        Sizes {
            procs: Some(10),
            laps: Some(4),
            ..Sizes::default()
        },
    );
    let good = [
        ("laps", 4),
        ("wrong_token", 0),
        ("nodes", 9),
        ("forwarded", 36),
        ("min_forwarded", 4),
        ("max_forwarded", 4),
    ];
    let m = patterns::check(&p, &with(base(40), &good)).expect("exact counts pass");
    assert_eq!(m.ops, 40);
    assert!((m.seconds - 0.002).abs() < 1e-12);
    assert!(
        m.counts
            .iter()
            .any(|(k, v)| k == "forwarded" && v.as_i64() == Some(36))
    );

    // One node skipped a token: total and minimum are off.
    let mut bad = good;
    bad[3] = ("forwarded", 35);
    let e = patterns::check(&p, &with(base(40), &bad)).unwrap_err();
    assert_eq!(e, "ring: tokens forwarded by nodes = 35, expected 36");
    let mut bad = good;
    bad[4] = ("min_forwarded", 3);
    bad[5] = ("max_forwarded", 5);
    let e = patterns::check(&p, &with(base(40), &bad)).unwrap_err();
    assert!(e.contains("fewest forwards by a node = 3"), "{e}");
}

#[test]
fn fanin_check_catches_loss_duplicates_and_incomplete_senders() {
    let p = params(
        Pattern::Fanin,
        Sizes {
            senders: Some(3),
            messages: Some(5),
            ..Sizes::default()
        },
    );
    let good = [
        ("received", 15),
        ("out_of_order", 0),
        ("complete_senders", 3),
    ];
    patterns::check(&p, &with(base(15), &good)).expect("exact counts pass");
    let lost = [
        ("received", 14),
        ("out_of_order", 0),
        ("complete_senders", 2),
    ];
    assert_eq!(
        patterns::check(&p, &with(base(15), &lost)).unwrap_err(),
        "fanin: messages received = 14, expected 15"
    );
    let dup = [
        ("received", 15),
        ("out_of_order", 1),
        ("complete_senders", 2),
    ];
    assert!(
        patterns::check(&p, &with(base(15), &dup))
            .unwrap_err()
            .contains("out of order or duplicated = 1")
    );
}

#[test]
fn spawn_pingpong_call_idle_checks() {
    let spawn = params(
        Pattern::Spawn,
        Sizes {
            procs: Some(8),
            ..Sizes::default()
        },
    );
    patterns::check(&spawn, &with(base(8), &[("spawned", 8), ("done", 8)])).unwrap();
    assert!(patterns::check(&spawn, &with(base(8), &[("done", 7)])).is_err());
    // A stray message fails every pattern.
    let stray = with(base(8), &[("done", 8), ("unexpected", 1)]);
    assert_eq!(
        patterns::check(&spawn, &stray).unwrap_err(),
        "spawn: unexpected messages = 1, expected 0"
    );

    let pp = params(
        Pattern::Pingpong,
        Sizes {
            messages: Some(5),
            ..Sizes::default()
        },
    );
    patterns::check(&pp, &with(base(5), &[("pongs", 5), ("pings", 5)])).unwrap();
    let e = patterns::check(&pp, &with(base(5), &[("pongs", 5), ("pings", 6)])).unwrap_err();
    assert_eq!(e, "pingpong: pings seen by pong = 6, expected 5");

    let call = params(
        Pattern::Call,
        Sizes {
            messages: Some(4),
            ..Sizes::default()
        },
    );
    patterns::check(
        &call,
        &with(base(4), &[("ok", 4), ("wrong", 0), ("failed", 0)]),
    )
    .unwrap();
    let mut failed = base(4);
    failed.push(("error", Value::str("no handler registered for target")));
    let e = patterns::check(
        &call,
        &with(failed, &[("ok", 3), ("wrong", 0), ("failed", 1)]),
    )
    .unwrap_err();
    assert!(
        e.contains("1 calls failed") && e.contains("no handler"),
        "{e}"
    );

    let idle = params(
        Pattern::Idle,
        Sizes {
            procs: Some(100),
            ..Sizes::default()
        },
    );
    let m = patterns::check(
        &idle,
        &with(
            base(100),
            &[
                ("up", 100),
                ("acks", 100),
                ("rss_base", 1_000_000),
                ("rss_full", 2_300_000),
            ],
        ),
    )
    .unwrap();
    assert_eq!(m.bytes_per_process, Some(13_000.0));
    let e = patterns::check(&idle, &with(base(100), &[("up", 99), ("acks", 99)])).unwrap_err();
    assert_eq!(e, "idle: processes parked = 99, expected 100");
}

#[test]
fn malformed_driver_results_are_errors_not_numbers() {
    let p = params(Pattern::Spawn, Sizes::default());
    let e = patterns::check(&p, &Value::str("oops")).unwrap_err();
    assert!(e.contains("no integer field 'ops'"), "{e}");
    let backwards = map(&[
        ("ops", int(100_000)),
        ("t0", int(10)),
        ("t1", int(5)),
        ("unexpected", int(0)),
        ("done", int(100_000)),
    ]);
    assert!(
        patterns::check(&p, &backwards)
            .unwrap_err()
            .contains("clock went backwards")
    );
    // ops must match the sizes the driver was given.
    let wrong_ops = with(base(99), &[("done", 100_000)]);
    assert!(
        patterns::check(&p, &wrong_ops)
            .unwrap_err()
            .contains("ops = 99")
    );
}

// ------------------------------------------------------------------ record, histogram

fn record(p: &Params, m: &Measured) -> serde_json::Value {
    let r = RunRecord::new(p, 1, 2, true, Duration::from_millis(12), m, 50 << 20);
    serde_json::from_str(&r.to_json_line()).expect("one line of valid JSON")
}

#[test]
fn json_record_has_the_required_fields() {
    let p = params(
        Pattern::Ring,
        Sizes {
            procs: Some(10),
            laps: Some(10),
            ..Sizes::default()
        },
    );
    let m = Measured {
        ops: 100,
        seconds: 0.5,
        counts: vec![("laps".into(), int(10))],
        ..Measured::default()
    };
    let j = record(&p, &m);
    for k in [
        "pattern",
        "ops",
        "seconds",
        "ns_per_op",
        "p50_ns",
        "p99_ns",
        "p999_ns",
        "max_ns",
        "rss_bytes",
    ] {
        assert!(j.get(k).is_some(), "field {k} missing in {j}");
    }
    assert_eq!(j["pattern"], "ring");
    assert_eq!(j["ops"], 100);
    assert_eq!(j["ns_per_op"], 5_000_000.0);
    assert_eq!(j["ops_per_sec"], 200.0);
    for k in ["p50_ns", "p99_ns", "p999_ns", "max_ns", "bytes_per_process"] {
        assert!(j[k].is_null(), "{k} must be null for ring");
    }
    assert_eq!(j["rss_bytes"], 50 << 20);
    assert_eq!(j["params"]["laps"], 10);
    assert_eq!(j["counts"]["laps"], 10);
    assert!(!r_line(&p, &m).contains('\n'));
}

fn r_line(p: &Params, m: &Measured) -> String {
    RunRecord::new(p, 1, 2, true, Duration::ZERO, m, 0).to_json_line()
}

#[test]
fn latency_summary_percentiles_from_the_histogram() {
    let mut h = probe::new_histogram();
    for us in 1..=1000u64 {
        h.record(us * 1000).unwrap();
    }
    let s = LatencySummary::of(&h);
    assert_eq!(s.count, 1000);
    let close = |got: u64, want: u64| (got as f64 - want as f64).abs() / (want as f64) < 0.002;
    assert!(close(s.p50_ns, 500_000), "p50 {}", s.p50_ns);
    assert!(close(s.p99_ns, 990_000), "p99 {}", s.p99_ns);
    assert!(close(s.p999_ns, 999_000), "p99.9 {}", s.p999_ns);
    assert!(close(s.max_ns, 1_000_000), "max {}", s.max_ns);

    let p = params(Pattern::Latency, Sizes::default());
    let j = record(
        &p,
        &Measured {
            ops: 1000,
            seconds: 1.0,
            latency: Some(s),
            ..Measured::default()
        },
    );
    assert!(j["p99_ns"].as_u64().is_some_and(|v| close(v, 990_000)));
    assert!(j["max_ns"].as_u64().is_some());
    assert_eq!(LatencySummary::of(&probe::new_histogram()).count, 0);
}

#[test]
fn probe_records_latency_from_the_scheduled_time() {
    probe::reset_latency();
    let scheduled = probe::now_ns() - 2_000_000;
    probe::record_latency(scheduled);
    // A sample "from the future" counts as 1 ns, never as a huge unsigned value.
    probe::record_latency(probe::now_ns() + 1_000_000_000);
    let h = probe::take_latency();
    assert_eq!(h.len(), 2);
    assert!(
        h.max() >= 2_000_000 && h.max() < 1_000_000_000,
        "{}",
        h.max()
    );
    assert_eq!(h.min(), 1);
    assert_eq!(
        probe::take_latency().len(),
        0,
        "take leaves an empty histogram"
    );
    let a = probe::now_ns();
    let b = probe::now_ns();
    assert!(b >= a, "monotonic");
}

#[test]
fn spread_median_and_range() {
    let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
    assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
    let s = Spread::of([4.0, 1.0, 2.0, 10.0]).unwrap();
    assert_eq!(s.median, 3.0);
    assert!(Spread::of([]).is_none());
    assert!(Spread::of([f64::NAN]).is_none());
}

#[test]
fn human_table_shows_throughput_time_latency_and_rss() {
    let p = params(Pattern::Latency, Sizes::default());
    let mut recs = Vec::new();
    for (i, p99) in [900_000u64, 700_000, 800_000].into_iter().enumerate() {
        let m = Measured {
            ops: 500_000,
            seconds: 5.0,
            latency: Some(LatencySummary {
                count: 500_000,
                p50_ns: 50_000,
                p99_ns: p99,
                p999_ns: 2_000_000,
                max_ns: 9_000_000,
                mean_ns: 60_000.0,
            }),
            ..Measured::default()
        };
        recs.push(RunRecord::new(
            &p,
            i + 1,
            2,
            false,
            Duration::from_millis(20),
            &m,
            80 << 20,
        ));
    }
    let t = report::table(&p, &recs);
    assert!(t.contains("wippy bench latency"), "{t}");
    assert!(t.contains("3 runs"), "{t}");
    assert!(t.contains("throughput") && t.contains("100 kops/s"), "{t}");
    assert!(t.contains("time per op") && t.contains("10.0 µs"), "{t}");
    // The median p99 of 0.9/0.7/0.8 ms is 0.8 ms, with the range.
    assert!(
        t.contains("800 µs") && t.contains("700 µs .. 900 µs"),
        "{t}"
    );
    assert!(t.contains("peak RSS") && t.contains("80.0 MiB"), "{t}");

    let ring = params(Pattern::Ring, Sizes::default());
    let m = Measured {
        ops: 1_000_000,
        seconds: 0.5,
        ..Measured::default()
    };
    let t = report::table(
        &ring,
        &[RunRecord::new(&ring, 1, 2, true, Duration::ZERO, &m, 0)],
    );
    assert!(t.contains("latency p99") && t.contains("n/a"), "{t}");
    assert!(t.contains("2.00 Mops/s") && t.contains("500 ns"), "{t}");
}

#[test]
fn unit_formatting() {
    assert_eq!(report::duration_ns(850.0), "850 ns");
    assert_eq!(report::duration_ns(12_345.0), "12.3 µs");
    assert_eq!(report::duration_ns(4_560_000.0), "4.56 ms");
    assert_eq!(report::bytes(13_312.0), "13.0 KiB");
    assert_eq!(report::si(2_310_000.0), "2.31 M");
}

#[test]
fn progress_line_is_bounded() {
    let l = progress::line("ring run 1/3", 50, 100, Duration::from_millis(1500));
    assert!(l.contains(" 50.0%") && l.contains("1.5s"), "{l}");
    assert!(l.contains("##########----------"), "{l}");
    let over = progress::line("x", 500, 100, Duration::ZERO);
    assert!(over.contains("100.0%"), "{over}");
    assert!(progress::line("x", 5, 0, Duration::ZERO).contains("0.0%"));
}

#[test]
fn rss_status_parsing() {
    let text = "Name:\twippy\nVmPeak:\t  900 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
    let m = rss::parse_status(text).unwrap();
    assert_eq!(m.rss_bytes, 1024 * 1024);
    assert_eq!(m.peak_bytes, 2048 * 1024);
    assert!(rss::parse_status("Name: x\n").is_none());
    let live = rss::read().expect("/proc/self/status on Linux");
    assert!(live.rss_bytes > 0 && live.peak_bytes >= live.rss_bytes);
}

// ------------------------------------------------------------------ the bench app

#[test]
fn bench_app_loads_and_every_referenced_entry_exists() {
    let dir = tempfile::tempdir().unwrap();
    app::write_project(dir.path()).unwrap();
    let project =
        load_project(dir.path(), &Config::defaults(), &LoadOptions::default()).expect("loads");
    let entries = project.into_entries();
    let ids: Vec<String> = entries.iter().map(|e| e.id.to_string()).collect();
    let kind = |id: &str| {
        entries
            .iter()
            .find(|e| e.id.to_string() == id)
            .map(|e| e.kind.clone())
    };
    assert_eq!(kind(app::HOST).as_deref(), Some("process.host"));
    for p in Pattern::ALL {
        if let Some(d) = patterns::driver_entry(p) {
            assert_eq!(kind(d).as_deref(), Some("process.lua"), "driver of {p}");
        }
    }
    // Every "bench:<name>" string in the Lua sources names an entry of the app.
    for (file, text) in app::FILES.iter().filter(|(f, _)| f.ends_with(".lua")) {
        for (i, _) in text.match_indices("\"bench:") {
            let rest = &text[i + 1..];
            let id = &rest[..rest.find('"').unwrap()];
            assert!(
                ids.iter().any(|x| x == id),
                "{file} uses {id}, not an entry"
            );
        }
    }
    for id in [
        "bench:latency_receiver",
        "bench:latency_hog",
        "bench:call_target",
    ] {
        assert!(ids.iter().any(|x| x == id), "{id} missing");
    }
}

// ------------------------------------------------------------------ CLI

fn wippy(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wippy"))
        .args(args)
        .output()
        .expect("run wippy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_rejects_bad_arguments_before_booting() {
    let (code, _, err) = wippy(&["bench", "ring", "--messages", "5"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Error: bench ring: --messages does not apply to ring"),
        "{err}"
    );
    let (code, _, err) = wippy(&["bench", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown pattern 'nope'"), "{err}");
    let (code, _, err) = wippy(&["bench", "spawn", "--runs", "0"]);
    assert_eq!(code, 1);
    assert!(err.contains("--runs must be at least 1"), "{err}");
    let (code, _, err) = wippy(&["bench", "latency", "--duration", "soon"]);
    assert_eq!(code, 1);
    assert!(err.contains("--duration"), "{err}");
    let (code, out, _) = wippy(&["bench", "--help"]);
    assert_eq!(code, 0);
    for p in Pattern::ALL {
        assert!(out.contains(p.name()), "help lists {p}");
    }
    assert!(out.contains("--no-pin") && out.contains("--json") && out.contains("--runs"));
}
