//! Stop, terminate, cancel and hosts.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;
use wippy_rt::*;

/// Idle until a CANCEL event arrives, then exit with the event's reason.
fn cancellable(seen: Arc<Mutex<Vec<Value>>>) -> Box<dyn Process> {
    FnProc::new(move |_, events, out| {
        for ev in events.drain(..) {
            if let Event::Message(p) = ev
                && p.topic == process::EVENTS_TOPIC
                && process::event_kind(&p.payloads[0]) == Some(process::CANCEL)
            {
                seen.lock().unwrap().push(p.payloads[0].clone());
                assert_eq!(p.from, process::system_pid());
                out.finish(Ok(p.payloads[0].get("reason").cloned().unwrap_or_default()));
                return Ok(());
            }
        }
        out.set_status(Status::Idle);
        Ok(())
    })
}

#[test]
fn graceful_stop_delivers_cancel_and_waits() {
    let (rt, h) = runtime(2);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let watches: Vec<_> = (0..100)
        .map(|_| spawn(&h, cancellable(seen.clone())).1)
        .collect();
    let r = h.stop(Duration::from_secs(5));
    assert_eq!((r.cancelled, r.exited, r.forced, r.stuck), (100, 100, 0, 0));
    assert!(r.elapsed < Duration::from_secs(4), "{r:?}");
    for w in &watches {
        assert_eq!(wait(w).unwrap(), Value::str("scheduler shutdown"));
    }
    let ev = seen.lock().unwrap()[0].clone();
    assert_eq!(ev.get("from").and_then(Value::as_str), Some("{|}"));
    assert!(matches!(ev.get("at"), Some(Value::Float(_))));
    let e = h
        .spawn(
            HOST,
            cancellable(seen),
            "main",
            vec![],
            SpawnOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.message(), "scheduler is stopping");
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn stop_with_processes_that_never_yield_finishes_within_its_timeout() {
    let (rt, h) = runtime(2);
    // Busy forever (Continue), ignoring CANCEL.
    let (_a, busy) = spawn(
        &h,
        FnProc::new(|_, events, _| {
            events.clear();
            Ok(())
        }),
    );
    // Idle forever, ignoring CANCEL.
    let (_b, idle) = spawn(
        &h,
        FnProc::new(|_, events, out| {
            events.clear();
            out.set_status(Status::Idle);
            Ok(())
        }),
    );
    // One step that does not return for 3 s (no preemption is possible).
    let (_c, stuck) = spawn(
        &h,
        FnProc::new(|_, _, _| {
            std::thread::sleep(Duration::from_secs(3));
            Ok(())
        }),
    );
    std::thread::sleep(Duration::from_millis(50)); // let the stuck step start
    let t0 = Instant::now();
    let r = h.stop(Duration::from_millis(300));
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(1200), "stop took {took:?}");
    assert_eq!((r.cancelled, r.exited), (3, 0), "{r:?}");
    assert_eq!(r.forced, 3);
    assert_eq!(r.stuck, 1, "the blocked step cannot be preempted: {r:?}");
    for w in [&busy, &idle] {
        let e = wait(w).unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (&Kind::CANCELED, "context canceled")
        );
    }
    let t1 = Instant::now();
    let r2 = rt.shutdown(Duration::from_millis(200));
    assert!(
        t1.elapsed() < Duration::from_millis(1200),
        "shutdown took {:?}",
        t1.elapsed()
    );
    assert_eq!(r2.stuck_workers, 1);
    drop(stuck);
}

#[test]
fn terminate_idle_running_and_self() {
    let (rt, h) = runtime(2);
    let (a, idle) = spawn(
        &h,
        FnProc::new(|_, _, out| {
            out.set_status(Status::Idle);
            Ok(())
        }),
    );
    let (b, busy) = spawn(&h, FnProc::new(|_, _, _| Ok(())));
    let (_c, selfkill) = spawn(
        &h,
        FnProc::new(|cx, _, out| {
            let me = cx.pid().clone();
            cx.handle().terminate(&me)?;
            out.set_status(Status::Continue);
            Ok(())
        }),
    );
    std::thread::sleep(Duration::from_millis(10));
    h.terminate(&a).unwrap();
    h.terminate(&b).unwrap();
    for w in [&idle, &busy, &selfkill] {
        let e = wait(w).unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (&Kind::INTERNAL, "process terminated")
        );
    }
    assert!(!h.is_alive(&a) && !h.is_alive(&b));
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn cancel_is_delivered_as_an_event() {
    let (rt, h) = runtime(1);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (pid, w) = spawn(&h, cancellable(seen.clone()));
    let from = Pid::parse("{app:test|0x0beef}").unwrap();
    h.cancel(&pid, &from, "service stopping").unwrap();
    assert_eq!(wait(&w).unwrap(), Value::str("service stopping"));
    let ev = seen.lock().unwrap()[0].clone();
    assert_eq!(ev.get("kind").and_then(Value::as_str), Some("pid.cancel"));
    assert_eq!(
        ev.get("from").and_then(Value::as_str),
        Some("{app:test|0x0beef}")
    );
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn host_stop_and_removal_are_scoped() {
    let (rt, h) = runtime(2);
    h.add_host("other", HostConfig::default()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (mine, w1) = spawn(&h, cancellable(seen.clone()));
    let (theirs, w2) = h
        .spawn_watched(
            "other",
            cancellable(seen.clone()),
            "main",
            vec![],
            SpawnOptions::default(),
        )
        .unwrap();
    let r = h.stop_host("other", Duration::from_secs(5)).unwrap();
    assert_eq!((r.cancelled, r.exited, r.forced), (1, 1, 0));
    assert_eq!(wait(&w2).unwrap(), Value::str("scheduler shutdown"));
    assert!(h.is_alive(&mine));
    let e = h
        .spawn(
            "other",
            cancellable(seen.clone()),
            "main",
            vec![],
            SpawnOptions::default(),
        )
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.message()),
        (&Kind::UNAVAILABLE, "host is shutting down")
    );
    // Ordinary sends to a stopping host are refused before the lookup (as the original).
    assert_eq!(
        h.send(msg(&Pid::zero(), &theirs, 1)).unwrap_err().message(),
        "host is shutting down"
    );
    // Removal terminates what is left and unregisters the host.
    h.remove_host(HOST).unwrap();
    assert_eq!(wait(&w1).unwrap_err().message(), "process terminated");
    assert!(h.node().get_host(HOST).is_none());
    assert_eq!(h.hosts(), vec!["other".to_string()]);
    assert_eq!(h.remove_host(HOST).unwrap_err().message(), "host not found");
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn exit_events_payloads() {
    let a = Pid::parse("{app:test|0x00001}").unwrap();
    let w = Pid::parse("{app:test|0x00002}").unwrap();
    let p = process::exit_package(&a, &w, &Ok(Value::Int(3)));
    assert_eq!(p.from, a);
    assert_eq!(process::event_kind(&p.payloads[0]), Some("pid.exit"));
    assert_eq!(p.payloads[0].get_path("result.value"), Some(&Value::Int(3)));
}
