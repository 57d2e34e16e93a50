//! Supervisor behaviour: restart policy (growing backoff, stable threshold, max attempts,
//! terminal exits), timeouts, dependency-ordered start/stop, replacement, bus events and the
//! registry transaction integration. Timing assertions use the timestamps services record, with
//! generous upper slack (the machine is shared) and exact lower bounds.

mod system_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use system_support::*;
use wippy::rt::{Error, Kind, Value};
use wippy::system::supervisor::{
    LifecycleConfig, RestartPolicy, ServiceSpec, Startup, Status, Supervisor,
};

fn policy(initial_ms: u64, factor: f64, jitter: f64, max: u32) -> RestartPolicy {
    RestartPolicy {
        initial_delay: Duration::from_millis(initial_ms),
        max_delay: Duration::from_secs(60),
        backoff_factor: factor,
        jitter,
        max_attempts: max,
    }
}

fn cfg(restart: RestartPolicy) -> LifecycleConfig {
    LifecycleConfig {
        restart,
        ..Default::default()
    }
}

fn spec(id: &str, svc: Scripted, config: LifecycleConfig) -> ServiceSpec {
    ServiceSpec {
        id: id.into(),
        service: Arc::new(svc),
        config,
        deps: vec![],
    }
}

fn boom() -> Error {
    Error::internal("boom")
}

fn wait_status(sup: &Supervisor, id: &str, st: Status) {
    wait_until(Duration::from_secs(10), || {
        sup.state(id).is_some_and(|s| s.status == st)
    });
}

fn gaps(ts: &[Instant]) -> Vec<Duration> {
    ts.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn restart_delay_grows_until_max_attempts() {
    let sup = Supervisor::new(None);
    let l = log();
    sup.register(spec(
        "app:crasher",
        Scripted::new("crasher", &l, Step::Crash(Duration::ZERO, boom())),
        cfg(policy(40, 2.0, 0.0, 5)),
    ));
    sup.start("app:crasher").unwrap(); // it runs, then crashes
    wait_until(Duration::from_secs(10), || {
        sup.state("app:crasher")
            .is_some_and(|s| s.details.starts_with("gave up"))
    });
    let starts = times(&l, "crasher", "start");
    assert_eq!(starts.len(), 5);
    let g = gaps(&starts);
    let expected = [40u64, 80, 160, 320];
    // The lower bounds prove the growth (a constant delay — the upstream bug — fails the
    // 320 ms one); the upper bounds only catch gross errors on a shared machine.
    for (gap, exp) in g.iter().zip(expected) {
        let exp = Duration::from_millis(exp);
        assert!(*gap >= exp, "gap {gap:?} < {exp:?}");
        assert!(
            *gap < exp + Duration::from_millis(1500),
            "gap {gap:?} ≫ {exp:?}"
        );
    }
    let st = sup.state("app:crasher").unwrap();
    assert_eq!(st.status, Status::Failed);
    assert_eq!(st.retry_count, 5);
    assert!(
        st.details.starts_with("gave up after 5 attempts"),
        "{}",
        st.details
    );
    sup.shutdown();
}

#[test]
fn backoff_is_capped_and_jitter_stays_in_bounds() {
    let sup = Supervisor::new(None);
    let l = log();
    let mut p = policy(30, 3.0, 0.5, 7);
    p.max_delay = Duration::from_millis(90);
    sup.register(spec(
        "app:j",
        Scripted::new("j", &l, Step::FailStart(boom())),
        cfg(p),
    ));
    let _ = sup.start("app:j");
    let g = gaps(&times(&l, "j", "start"));
    assert_eq!(g.len(), 6);
    // base: 30, 90 (cap), 90, … ; jitter ±50 %.
    assert!(g[0] >= Duration::from_millis(15) && g[0] < Duration::from_millis(45 + 1500));
    for gap in &g[1..] {
        assert!(*gap >= Duration::from_millis(45), "{gap:?}");
        assert!(*gap < Duration::from_millis(135 + 1500), "{gap:?}");
    }
    sup.shutdown();
}

#[test]
fn stable_runs_reset_the_retry_counter() {
    let sup = Supervisor::new(None);
    let l = log();
    let mut c = cfg(policy(20, 10.0, 0.0, 3));
    c.stable_threshold = Duration::from_millis(40);
    sup.register(spec(
        "app:stable",
        Scripted::new("stable", &l, Step::Crash(Duration::from_millis(80), boom())),
        c,
    ));
    sup.start("app:stable").unwrap();
    // Five crash/restart cycles: with max_attempts 3 it would have given up without resets.
    wait_until(Duration::from_secs(10), || {
        times(&l, "stable", "start").len() >= 6
    });
    let st = sup.state("app:stable").unwrap();
    assert!(st.retry_count <= 1, "{st:?}");
    let g = gaps(&times(&l, "stable", "start"));
    for gap in &g {
        // 80 ms run + 20 ms first-retry delay, never the grown 200 ms.
        assert!(*gap >= Duration::from_millis(100), "{gap:?}");
        assert!(*gap < Duration::from_millis(100 + 1000), "{gap:?}");
    }
    sup.stop("app:stable").unwrap();
    assert_eq!(sup.state("app:stable").unwrap().status, Status::Stopped);
    sup.shutdown();
}

#[test]
fn normal_exits_and_terminal_errors_are_not_restarted() {
    let sup = Supervisor::new(None);
    let l = log();
    sup.register(spec(
        "app:done",
        Scripted::new("done", &l, Step::Exit(Duration::from_millis(10))),
        cfg(policy(10, 2.0, 0.0, 0)),
    ));
    sup.register(spec(
        "app:fatal",
        Scripted::new(
            "fatal",
            &l,
            Step::Crash(
                Duration::from_millis(10),
                Error::internal("config broken").with_retryable(Some(false)),
            ),
        ),
        cfg(policy(10, 2.0, 0.0, 0)),
    ));
    sup.register(spec(
        "app:badstart",
        Scripted::new(
            "badstart",
            &l,
            Step::FailStart(Error::invalid("bad").with_retryable(Some(false))),
        ),
        cfg(policy(10, 2.0, 0.0, 0)),
    ));
    sup.start("app:done").unwrap();
    sup.start("app:fatal").unwrap();
    assert!(sup.start("app:badstart").is_err());
    wait_status(&sup, "app:done", Status::Exited);
    wait_status(&sup, "app:fatal", Status::Exited);
    std::thread::sleep(Duration::from_millis(100));
    for n in ["done", "fatal", "badstart"] {
        assert_eq!(times(&l, n, "start").len(), 1, "{n} restarted");
    }
    assert_eq!(sup.state("app:badstart").unwrap().status, Status::Exited);
    assert!(
        sup.state("app:fatal")
            .unwrap()
            .details
            .contains("config broken")
    );
    sup.shutdown();
}

#[test]
fn start_timeout_retries_and_stops_the_late_start() {
    let sup = Supervisor::new(None);
    let l = log();
    let mut c = cfg(policy(10, 1.0, 0.0, 0));
    c.start_timeout = Duration::from_millis(50);
    sup.register(spec(
        "app:slow",
        Scripted::new("slow", &l, Step::Run)
            .then(vec![Step::SlowStart(Duration::from_millis(150))]),
        c,
    ));
    sup.start("app:slow").unwrap();
    assert_eq!(times(&l, "slow", "start").len(), 2);
    // The first (late) start was stopped again once it finished.
    wait_until(Duration::from_secs(5), || {
        times(&l, "slow", "stop").len() == 1
    });
    assert_eq!(sup.state("app:slow").unwrap().status, Status::Running);
    sup.shutdown();
}

#[test]
fn stop_timeout_is_reported() {
    let sup = Supervisor::new(None);
    let l = log();
    let mut c = cfg(policy(10, 1.0, 0.0, 0));
    c.stop_timeout = Duration::from_millis(50);
    let mut s = Scripted::new("hang", &l, Step::Run);
    s.stop_hang = Some(Duration::from_millis(300));
    sup.register(spec("app:hang", s, c));
    sup.start("app:hang").unwrap();
    let t = Instant::now();
    let e = sup.stop("app:hang").unwrap_err();
    assert!(t.elapsed() < Duration::from_millis(250));
    assert_eq!(e.message(), "service stop timed out");
    let st = sup.state("app:hang").unwrap();
    assert_eq!(st.status, Status::Failed);
    assert_eq!(st.details, "stop timeout after 50ms");
    sup.shutdown();
}

fn requires(ids: &[&str]) -> LifecycleConfig {
    LifecycleConfig {
        requires: ids.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn dependencies_start_first_and_stop_last() {
    let sup = Supervisor::new(None);
    let l = log();
    sup.register(spec(
        "app:a",
        Scripted::new("a", &l, Step::Run),
        requires(&["app:b"]),
    ));
    sup.register(spec(
        "app:b",
        Scripted::new("b", &l, Step::Run),
        requires(&["app:c"]),
    ));
    sup.register(spec(
        "app:c",
        Scripted::new("c", &l, Step::Run),
        requires(&[]),
    ));
    sup.register(spec(
        "app:d",
        Scripted::new("d", &l, Step::Run),
        requires(&[]),
    ));
    // A registry-derived dependency (deps) counts too: e depends on a.
    sup.register(ServiceSpec {
        id: "app:e".into(),
        service: Arc::new(Scripted::new("e", &l, Step::Run)),
        config: LifecycleConfig::default(),
        deps: vec!["app:a".into(), "app:not-a-service".into()],
    });
    sup.start("app:e").unwrap();
    assert_eq!(order(&l, "start"), vec!["c", "b", "a", "e"]);
    sup.start("app:d").unwrap();
    sup.stop("app:c").unwrap();
    assert_eq!(order(&l, "stop"), vec!["e", "a", "b", "c"]);
    for id in ["app:a", "app:b", "app:c", "app:e"] {
        assert_eq!(sup.state(id).unwrap().status, Status::Stopped, "{id}");
    }
    assert_eq!(sup.state("app:d").unwrap().status, Status::Running);
    // Shutdown stops what is left.
    let r = sup.shutdown();
    assert!(r.failed.is_empty());
    assert_eq!(order(&l, "stop").last().map(String::as_str), Some("d"));
}

#[test]
fn blocked_failed_and_cyclic_dependencies() {
    let sup = Supervisor::new(None);
    let l = log();
    sup.register(spec(
        "app:orphan",
        Scripted::new("orphan", &l, Step::Run),
        requires(&["app:ghost"]),
    ));
    let e = sup.start("app:orphan").unwrap_err();
    assert!(
        e.message()
            .contains("service startup blocked by missing dependencies: [app:ghost]"),
        "{e}"
    );
    sup.register(spec(
        "app:broken",
        Scripted::new(
            "broken",
            &l,
            Step::FailStart(Error::internal("no").with_retryable(Some(false))),
        ),
        requires(&[]),
    ));
    sup.register(spec(
        "app:x",
        Scripted::new("x", &l, Step::Run),
        requires(&["app:broken"]),
    ));
    sup.register(spec(
        "app:y",
        Scripted::new("y", &l, Step::Run),
        requires(&[]),
    ));
    let r = sup.start_services(&["app:x".into(), "app:y".into()], true, None);
    assert_eq!(r.done, vec!["app:y"]);
    let failed: Vec<&str> = r.failed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(failed, vec!["app:broken", "app:x"]);
    let x_err = &r.failed[1].1;
    assert!(
        x_err
            .message()
            .contains("blocked by failed dependency app:broken")
    );
    assert!(times(&l, "x", "start").is_empty());
    sup.register(spec(
        "app:p",
        Scripted::new("p", &l, Step::Run),
        requires(&["app:q"]),
    ));
    sup.register(spec(
        "app:q",
        Scripted::new("q", &l, Step::Run),
        requires(&["app:p"]),
    ));
    let e = sup.start("app:p").unwrap_err();
    assert!(e.message().contains("dependency cycle"), "{e}");
    sup.shutdown();
}

#[test]
fn optional_roots_do_not_fail_the_transition() {
    let sup = Supervisor::new(None);
    let l = log();
    let mut c = cfg(policy(20, 1.0, 0.0, 0));
    c.startup = Startup::Optional;
    sup.register(spec(
        "app:opt",
        Scripted::new("opt", &l, Step::FailStart(boom())),
        c,
    ));
    sup.register(spec(
        "app:req",
        Scripted::new("req", &l, Step::Run),
        requires(&[]),
    ));
    let r = sup
        .start_services(&["app:opt".into(), "app:req".into()], false, None)
        .into_result()
        .unwrap();
    assert_eq!(r.done, vec!["app:req"]);
    // It keeps retrying in the background.
    wait_until(Duration::from_secs(5), || {
        times(&l, "opt", "start").len() >= 3
    });
    sup.shutdown();
}

#[test]
fn replacing_a_running_service_restarts_the_new_object() {
    let sup = Supervisor::new(None);
    let l = log();
    sup.register(spec(
        "app:svc",
        Scripted::new("old", &l, Step::Run),
        requires(&[]),
    ));
    sup.start("app:svc").unwrap();
    sup.register(spec(
        "app:svc",
        Scripted::new("new", &l, Step::Run),
        requires(&[]),
    ));
    wait_until(Duration::from_secs(5), || {
        times(&l, "new", "start").len() == 1
    });
    wait_status(&sup, "app:svc", Status::Running);
    assert_eq!(times(&l, "old", "stop").len(), 1);
    sup.shutdown();
    assert_eq!(times(&l, "new", "stop").len(), 1);
}

#[test]
fn state_changes_are_published_on_the_bus() {
    let bus = wippy::rt::Bus::new();
    let sub = bus.subscribe("supervisor", "service.update").unwrap();
    let sup = Supervisor::new(Some(bus.clone()));
    let l = log();
    sup.register(spec(
        "app:evt",
        Scripted::new("evt", &l, Step::Run).then(vec![Step::FailStart(boom())]),
        cfg(policy(10, 2.0, 0.0, 0)),
    ));
    sup.start("app:evt").unwrap();
    let mut seen = vec![];
    while let Some(ev) = sub.recv_timeout(Duration::from_millis(200)) {
        assert_eq!(ev.path, "app:evt");
        let d = &ev.data;
        assert_eq!(d.get("desired").and_then(Value::as_str), Some("running"));
        seen.push((
            d.get("status").and_then(Value::as_str).unwrap().to_string(),
            d.get("retry_count").and_then(Value::as_i64).unwrap(),
        ));
    }
    assert_eq!(
        seen,
        vec![
            ("starting".to_string(), 0),
            ("failed".to_string(), 1),
            ("starting".to_string(), 1),
            ("running".to_string(), 1),
        ]
    );
    sup.shutdown();
}

#[test]
fn unknown_services_and_start_while_stopping() {
    let sup = Supervisor::new(None);
    assert_eq!(
        sup.start("app:nope").unwrap_err().kind(),
        &Kind::UNAVAILABLE
    );
    let l = log();
    let mut s = Scripted::new("s", &l, Step::Run);
    s.stop_hang = Some(Duration::from_millis(60));
    sup.register(spec("app:s", s, requires(&[])));
    sup.start("app:s").unwrap();
    let sup2 = sup.clone();
    let h = std::thread::spawn(move || sup2.stop("app:s"));
    wait_status(&sup, "app:s", Status::Stopping);
    sup.start_async("app:s");
    h.join().unwrap().unwrap();
    wait_until(Duration::from_secs(5), || {
        times(&l, "s", "start").len() == 2
    });
    wait_status(&sup, "app:s", Status::Running);
    sup.remove("app:s").unwrap();
    assert!(sup.state("app:s").is_none());
    assert_eq!(times(&l, "s", "stop").len(), 2);
    sup.shutdown();
}
