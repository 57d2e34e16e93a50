//! The peers (`benches/peers/`) and `benches/compare.sh`.
//!
//! * the Erlang peer runs every pattern at a small size and reports the same JSON fields
//!   and checked counts as `wippy bench --json` (skipped with a message when `erlc` is not
//!   installed);
//! * `compare.sh` runs wippy and the peers, reports a missing peer as skipped, and reports a
//!   wippy that cannot run the pattern as failed — never a number it did not measure.

use std::path::Path;
use std::process::Command;

use wippy::boot::services::ENGINE_AVAILABLE;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn compare_script_is_valid_bash() {
    let out = Command::new("bash")
        .args(["-n", &format!("{ROOT}/benches/compare.sh")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn erlang_run(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new("erl")
        .args(["-noshell", "-pa"])
        .arg(dir)
        .args(["+S", "2", "-run", "wbench", "main"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wbench {args:?}: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    let j: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
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
        assert!(j.get(k).is_some(), "{k} missing: {j}");
    }
    assert_eq!(j["pattern"], args[0]);
    assert!(j["rss_bytes"].as_u64().unwrap() > 0);
    j
}

#[test]
fn erlang_peer_runs_every_pattern_with_checked_counts() {
    if !have("erlc") || !have("erl") {
        eprintln!("skipped: Erlang is not installed (apt-get install erlang-base)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("erlc")
        .arg("-o")
        .arg(dir.path())
        .arg(format!("{ROOT}/benches/peers/erlang/wbench.erl"))
        .status()
        .unwrap();
    assert!(st.success());
    let d = dir.path();

    let j = erlang_run(d, &["spawn", "procs=500"]);
    assert_eq!(
        (j["ops"].as_u64(), j["counts"]["done"].as_u64()),
        (Some(500), Some(500))
    );
    assert!(j["p99_ns"].is_null());

    let j = erlang_run(d, &["pingpong", "messages=1000"]);
    assert_eq!(j["counts"]["pings"], 1000);

    let j = erlang_run(d, &["ring", "procs=20", "laps=5"]);
    assert_eq!(j["ops"], 100);
    assert_eq!(j["counts"]["forwarded"], 95);
    assert_eq!(j["counts"]["min_forwarded"], 5);

    let j = erlang_run(d, &["fanin", "senders=7", "messages=30"]);
    assert_eq!(j["counts"]["received"], 210);
    assert_eq!(j["counts"]["out_of_order"], 0);
    assert_eq!(j["counts"]["complete_senders"], 7);

    let j = erlang_run(d, &["call", "messages=300"]);
    assert_eq!(j["counts"]["ok"], 300);

    let j = erlang_run(d, &["idle", "procs=2000"]);
    assert_eq!(j["counts"]["acks"], 2000);
    assert!(j["bytes_per_process"].as_f64().is_some());

    let j = erlang_run(
        d,
        &[
            "latency",
            "rate=2000",
            "duration_ms=300",
            "receivers=3",
            "hogs=1",
            "work=20000",
        ],
    );
    assert_eq!(j["counts"]["received"], 600);
    let (p50, p99, max) = (
        j["p50_ns"].as_u64().unwrap(),
        j["p99_ns"].as_u64().unwrap(),
        j["max_ns"].as_u64().unwrap(),
    );
    assert!(p50 <= p99 && p99 <= max, "{j}");

    // A bad size is an error, not a result.
    let out = Command::new("erl")
        .args(["-noshell", "-pa"])
        .arg(d)
        .args(["-run", "wbench", "main", "nosuch"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

fn go_run(bin: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin)
        .args(args)
        .env("GOMAXPROCS", "2")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gowbench {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
    for k in [
        "pattern",
        "ops",
        "seconds",
        "ns_per_op",
        "p99_ns",
        "rss_bytes",
    ] {
        assert!(j.get(k).is_some(), "{k} missing: {j}");
    }
    assert_eq!(j["pattern"], args[0]);
    j
}

#[test]
fn go_peer_runs_every_pattern_with_checked_counts() {
    if !have("go") {
        eprintln!("skipped: Go is not installed (apt-get install golang-go)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("gowbench");
    let st = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg("wbench.go")
        .current_dir(format!("{ROOT}/benches/peers/go"))
        .env("GO111MODULE", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", dir.path().join("cache"))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(go_run(&bin, &["spawn", "procs=500"])["counts"]["done"], 500);
    assert_eq!(
        go_run(&bin, &["pingpong", "messages=1000"])["counts"]["pings"],
        1000
    );
    let j = go_run(&bin, &["ring", "procs=20", "laps=5"]);
    assert_eq!(
        (j["ops"].as_u64(), j["counts"]["forwarded"].as_u64()),
        (Some(100), Some(95))
    );
    let j = go_run(&bin, &["fanin", "senders=7", "messages=30"]);
    assert_eq!(j["counts"]["complete_senders"], 7);
    assert_eq!(go_run(&bin, &["call", "messages=300"])["counts"]["ok"], 300);
    let j = go_run(&bin, &["idle", "procs=2000"]);
    assert!(j["bytes_per_process"].as_f64().is_some());
    let j = go_run(
        &bin,
        &[
            "latency",
            "rate=2000",
            "duration_ms=300",
            "receivers=3",
            "hogs=1",
            "work=20000",
        ],
    );
    assert_eq!(j["counts"]["received"], 600);
    assert!(j["p50_ns"].as_u64().unwrap() <= j["max_ns"].as_u64().unwrap());
    let bad = Command::new(&bin).arg("nosuch").output().unwrap();
    assert!(!bad.status.success());
}

#[test]
fn compare_reports_peers_and_never_fakes_a_result() {
    if !have("erl") {
        eprintln!("skipped: Erlang is not installed");
        return;
    }
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(format!("{ROOT}/benches/compare.sh"))
        .arg("ring")
        .env("WIPPY", env!("CARGO_BIN_EXE_wippy"))
        .env("RUNS", "2")
        .env("PEERS", "erlang nosuchpeer")
        .env("SIZES_ring", "procs=20 laps=5")
        .env("OUT", out_dir.path())
        .env("TIMEOUT", "120")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("skipped: nosuchpeer (unknown peer)"),
        "{stderr}"
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| ring |"))
        .unwrap_or_else(|| panic!("no ring row:\n{stdout}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // | ring | sizes | metric | wippy | erlang | wippy/erlang | target |
    assert_eq!(cells[2], "procs=20 laps=5");
    assert!(cells[5].ends_with(')'), "erlang cell: {row}");
    if ENGINE_AVAILABLE {
        assert!(cells[4].ends_with(')'), "wippy cell: {row}");
        assert!(
            cells[6].parse::<f64>().is_ok_and(|r| r > 0.0),
            "ratio: {row}"
        );
    } else {
        assert!(cells[4].starts_with("failed:"), "wippy cell: {row}");
        assert_eq!(cells[6], "-", "no ratio without a wippy result: {row}");
    }
    let raw = std::fs::read_to_string(out_dir.path().join("raw.jsonl")).unwrap();
    let erlang_lines = raw
        .lines()
        .filter(|l| l.contains("\"impl\":\"erlang\""))
        .count();
    assert_eq!(erlang_lines, 2, "{raw}");
}
