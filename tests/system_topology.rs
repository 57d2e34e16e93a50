//! Topology behaviour with native processes: monitor/link matrices, cascades, names, cancel
//! with deadline escalation, terminate, and leak freedom.

mod system_support;

use std::time::Duration;

use system_support::*;
use wippy::rt::process::{CANCEL, EXIT, LINK_DOWN, event_kind};
use wippy::rt::{Kind, Pid, SpawnOptions, Value};
use wippy::system::names::existing_holder;
use wippy::system::topology::CancelArg;

/// How a monitored/linked process ends in the matrices.
#[derive(Clone, Copy, Debug)]
enum End {
    Normal,
    Error,
    Terminate,
    Cancel,
}

fn end(rig: &Rig, pid: &Pid, how: End, canceller: &Pid) {
    match how {
        End::Normal => rig.tell(pid, "exit", Value::Int(7)),
        End::Error => rig.tell(pid, "fail", Value::str("kaboom")),
        End::Terminate => rig.topo.terminate(pid).unwrap(),
        End::Cancel => rig
            .topo
            .cancel(
                canceller,
                pid,
                &CancelArg {
                    reason: "enough".into(),
                    deadline: None,
                },
            )
            .unwrap(),
    }
}

#[test]
fn monitor_matrix_exit_always_delivered() {
    let rig = Rig::new();
    for how in [End::Normal, End::Error, End::Terminate, End::Cancel] {
        let w = Collector::new(&rig.topo);
        let b = rig
            .spawn(ActorSpec::default(), SpawnOptions::default())
            .unwrap();
        rig.topo.monitor(w.pid(), &b).unwrap();
        end(&rig, &b, how, w.pid());
        let ev = w.next();
        assert_eq!(event_kind(&ev), Some(EXIT), "{how:?}");
        assert_eq!(ev.get("from").and_then(Value::as_str), Some(b.as_str()));
        assert!(matches!(ev.get("at"), Some(Value::Float(_))));
        match how {
            End::Normal => {
                assert_eq!(ev.get_path("result.value"), Some(&Value::Int(7)));
                assert_eq!(exit_error(&ev), None);
            }
            End::Error => assert_eq!(exit_error(&ev).as_deref(), Some("kaboom")),
            End::Terminate => {
                assert_eq!(exit_error(&ev).as_deref(), Some("process terminated"))
            }
            End::Cancel => {
                assert_eq!(ev.get_path("result.value"), Some(&Value::str("cancelled")));
                assert_eq!(exit_error(&ev), None);
            }
        }
        w.none_within(Duration::from_millis(20));
    }
    wait_until(Duration::from_secs(2), || rig.topo.graph().is_empty());
}

#[test]
fn unmonitor_stops_notifications_and_double_monitor_fails() {
    let rig = Rig::new();
    let w = Collector::new(&rig.topo);
    let b = rig
        .spawn(ActorSpec::default(), SpawnOptions::default())
        .unwrap();
    rig.topo.monitor(w.pid(), &b).unwrap();
    let e = rig.topo.monitor(w.pid(), &b).unwrap_err();
    assert_eq!(e.message(), "already monitoring pid");
    rig.topo.unmonitor(w.pid(), &b);
    rig.topo.unmonitor(w.pid(), &b); // never fails
    rig.tell(&b, "fail", Value::str("x"));
    w.none_within(Duration::from_millis(50));
    assert!(rig.topo.graph().is_empty());
}

#[test]
fn monitoring_a_dead_pid_fails_with_pid_not_registered() {
    let rig = Rig::new();
    let w = Collector::new(&rig.topo);
    let b = rig
        .spawn(ActorSpec::default(), SpawnOptions::default())
        .unwrap();
    rig.tell(&b, "exit", Value::Nil);
    rig.wait_dead(&b);
    let e = rig.topo.monitor(w.pid(), &b).unwrap_err();
    assert_eq!(e.kind(), &Kind::NOT_FOUND);
    assert_eq!(e.message(), "pid not registered");
    let e = rig.topo.link(w.pid(), &b).unwrap_err();
    assert_eq!(e.message(), "pid not registered");
    assert_eq!(e.detail("role").and_then(Value::as_str), Some("to"));
    assert!(rig.topo.graph().is_empty());
}

/// Link matrix: (how B ends) × (A traps links) → what A sees.
#[test]
fn link_matrix() {
    let rig = Rig::new();
    for how in [End::Normal, End::Error, End::Terminate, End::Cancel] {
        for trap in [false, true] {
            let (tx, rx) = crossbeam_channel::unbounded();
            let w = Collector::new(&rig.topo);
            let a = rig
                .spawn(
                    ActorSpec {
                        log: Some(tx),
                        ..Default::default()
                    },
                    SpawnOptions::default(),
                )
                .unwrap();
            let b = rig
                .spawn(ActorSpec::default(), SpawnOptions::default())
                .unwrap();
            rig.topo.monitor(w.pid(), &a).unwrap();
            rig.topo.graph().set_trap_links(&a, trap);
            rig.topo.link(&a, &b).unwrap();
            rig.topo.link(&a, &b).unwrap(); // idempotent
            assert_eq!(rig.topo.graph().links(&a), vec![b.clone()]);
            end(&rig, &b, how, &a);
            rig.wait_dead(&b);
            let abnormal = matches!(how, End::Error | End::Terminate);
            match (abnormal, trap) {
                (false, _) => {
                    // No LINK_DOWN: A lives on, untouched.
                    assert!(rx.recv_timeout(Duration::from_millis(30)).is_err());
                    assert!(rig.handle.is_alive(&a), "{how:?} trap={trap}");
                    assert!(rig.topo.graph().links(&a).is_empty());
                    rig.tell(&a, "exit", Value::Nil);
                    assert_eq!(exit_error(&w.next()), None);
                }
                (true, false) => {
                    // A dies with "linked process failed".
                    let ev = w.next();
                    assert_eq!(
                        exit_error(&ev).as_deref(),
                        Some("linked process failed"),
                        "{how:?}"
                    );
                }
                (true, true) => {
                    // A gets the LINK_DOWN as an event and keeps running.
                    let (_, ev) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
                    assert_eq!(event_kind(&ev), Some(LINK_DOWN));
                    assert_eq!(ev.get("from").and_then(Value::as_str), Some(b.as_str()));
                    assert!(exit_error(&ev).is_some());
                    assert!(rig.handle.is_alive(&a));
                    rig.tell(&a, "exit", Value::Nil);
                    assert_eq!(exit_error(&w.next()), None);
                }
            }
        }
    }
    wait_until(Duration::from_secs(2), || rig.topo.graph().is_empty());
}

#[test]
fn unlink_prevents_link_down() {
    let rig = Rig::new();
    let w = Collector::new(&rig.topo);
    let a = rig
        .spawn(ActorSpec::default(), SpawnOptions::default())
        .unwrap();
    let b = rig
        .spawn(ActorSpec::default(), SpawnOptions::default())
        .unwrap();
    rig.topo.link(&a, &b).unwrap();
    rig.topo.unlink(&b, &a);
    rig.topo.monitor(w.pid(), &a).unwrap();
    rig.tell(&b, "fail", Value::str("x"));
    rig.wait_dead(&b);
    w.none_within(Duration::from_millis(30));
    assert!(rig.handle.is_alive(&a));
    rig.topo.terminate(&a).unwrap();
    assert_eq!(exit_error(&w.next()).as_deref(), Some("process terminated"));
}

#[test]
fn spawn_options_monitor_and_link_the_parent() {
    let rig = Rig::new();
    let (tx, rx) = crossbeam_channel::unbounded();
    let parent = rig
        .spawn(
            ActorSpec {
                log: Some(tx),
                on_cancel: OnCancel::Exit,
            },
            SpawnOptions::default(),
        )
        .unwrap();
    rig.topo.graph().set_trap_links(&parent, true);
    let child = rig
        .spawn(
            ActorSpec::default(),
            SpawnOptions {
                parent: Some(parent.clone()),
                monitor: true,
                link: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(rig.topo.graph().watchers(&child), vec![parent.clone()]);
    assert_eq!(rig.topo.graph().links(&child), vec![parent.clone()]);
    rig.tell(&child, "fail", Value::str("child broke"));
    let mut kinds = vec![];
    for _ in 0..2 {
        let (_, ev) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(exit_error(&ev).as_deref(), Some("child broke"));
        kinds.push(event_kind(&ev).unwrap().to_string());
    }
    kinds.sort();
    assert_eq!(kinds, vec![EXIT, LINK_DOWN]);
    // No parent/child cascade: a parent's exit leaves an unlinked child alone.
    let orphan = rig
        .spawn(
            ActorSpec::default(),
            SpawnOptions {
                parent: Some(parent.clone()),
                monitor: true,
                ..Default::default()
            },
        )
        .unwrap();
    rig.tell(&parent, "fail", Value::str("parent broke"));
    rig.wait_dead(&parent);
    std::thread::sleep(Duration::from_millis(20));
    assert!(rig.handle.is_alive(&orphan));
    rig.topo.terminate(&orphan).unwrap();
    rig.wait_dead(&orphan);
    wait_until(Duration::from_secs(2), || rig.topo.is_quiescent());
}

#[test]
fn cascade_along_a_chain() {
    let rig = Rig::new();
    const N: usize = 50;
    let w = Collector::new(&rig.topo);
    let pids: Vec<Pid> = (0..N)
        .map(|_| {
            rig.spawn(ActorSpec::default(), SpawnOptions::default())
                .unwrap()
        })
        .collect();
    for p in &pids {
        rig.topo.monitor(w.pid(), p).unwrap();
    }
    for pair in pids.windows(2) {
        rig.topo.link(&pair[0], &pair[1]).unwrap();
    }
    // Crash the middle: both halves go down.
    rig.tell(&pids[N / 2], "fail", Value::str("root cause"));
    let mut root = 0;
    let mut linked = 0;
    for _ in 0..N {
        match exit_error(&w.next()).as_deref() {
            Some("root cause") => root += 1,
            Some("linked process failed") => linked += 1,
            other => panic!("unexpected exit {other:?}"),
        }
    }
    assert_eq!((root, linked), (1, N - 1));
    wait_until(Duration::from_secs(2), || {
        rig.topo.is_quiescent() || rig.topo.watch_host().len() == 1
    });
    assert!(rig.topo.graph().is_empty());
}

#[test]
fn cascade_through_a_star_and_trapping_hub_survives() {
    let rig = Rig::new();
    const LEAVES: usize = 200;
    for hub_traps in [false, true] {
        let w = Collector::new(&rig.topo);
        let (tx, rx) = crossbeam_channel::unbounded();
        let hub = rig
            .spawn(
                ActorSpec {
                    log: Some(tx),
                    ..Default::default()
                },
                SpawnOptions::default(),
            )
            .unwrap();
        rig.topo.graph().set_trap_links(&hub, hub_traps);
        rig.topo.monitor(w.pid(), &hub).unwrap();
        let leaves: Vec<Pid> = (0..LEAVES)
            .map(|_| {
                rig.spawn(
                    ActorSpec::default(),
                    SpawnOptions {
                        parent: Some(hub.clone()),
                        link: true,
                        ..Default::default()
                    },
                )
                .unwrap()
            })
            .collect();
        for l in &leaves {
            rig.topo.monitor(w.pid(), l).unwrap();
        }
        assert_eq!(rig.topo.graph().links(&hub).len(), LEAVES);
        rig.tell(&leaves[3], "fail", Value::str("leaf crashed"));
        if hub_traps {
            let (_, ev) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(event_kind(&ev), Some(LINK_DOWN));
            assert_eq!(exit_error(&w.next()).as_deref(), Some("leaf crashed"));
            w.none_within(Duration::from_millis(30));
            assert_eq!(rig.topo.graph().links(&hub).len(), LEAVES - 1);
            // A trapping hub that fails itself still takes the leaves down.
            rig.tell(&hub, "fail", Value::str("hub crashed"));
        }
        let expected = if hub_traps { LEAVES } else { LEAVES + 1 };
        let mut linked = 0;
        for _ in 0..expected {
            if exit_error(&w.next()).as_deref() == Some("linked process failed") {
                linked += 1;
            }
        }
        assert_eq!(linked, LEAVES - 1 + usize::from(!hub_traps));
        drop(w);
        wait_until(Duration::from_secs(2), || rig.topo.is_quiescent());
    }
}

#[test]
fn names_register_conflict_and_release_on_exit() {
    let rig = Rig::new();
    let a = rig
        .spawn(
            ActorSpec::default(),
            SpawnOptions {
                name: Some("worker".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(rig.topo.names().lookup("worker").unwrap(), a);
    assert_eq!(rig.topo.resolve("worker").unwrap(), a);
    assert_eq!(rig.topo.resolve(a.as_str()).unwrap(), a);
    let e = rig
        .spawn(
            ActorSpec::default(),
            SpawnOptions {
                name: Some("worker".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.message(), "name already registered");
    assert_eq!(existing_holder(&e), Some(a.clone()));
    rig.topo.names().register("alias", &a).unwrap();
    rig.tell(&a, "fail", Value::str("bye"));
    rig.wait_dead(&a);
    assert_eq!(
        rig.topo.names().lookup("worker").unwrap_err().message(),
        "name not registered"
    );
    assert!(rig.topo.names().get("alias").is_none());
    let e = rig.topo.resolve("worker").unwrap_err();
    assert_eq!(
        e.message(),
        "could not resolve 'worker' as PID or registered name"
    );
    assert!(rig.topo.names().is_empty());
    // The name is free again.
    let b = rig
        .spawn(
            ActorSpec::default(),
            SpawnOptions {
                name: Some("worker".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(rig.topo.names().lookup("worker").unwrap(), b);
}

#[test]
fn cancel_delivers_event_and_deadline_escalates() {
    let rig = Rig::new();
    // A process that ignores CANCEL is terminated when the deadline passes.
    let (tx, rx) = crossbeam_channel::unbounded();
    let w = Collector::new(&rig.topo);
    let stubborn = rig
        .spawn(
            ActorSpec {
                log: Some(tx),
                on_cancel: OnCancel::Ignore,
            },
            SpawnOptions::default(),
        )
        .unwrap();
    rig.topo.monitor(w.pid(), &stubborn).unwrap();
    rig.topo
        .cancel(
            w.pid(),
            &stubborn,
            &CancelArg {
                reason: "shutting down".into(),
                deadline: Some(Duration::from_millis(60)),
            },
        )
        .unwrap();
    let (_, ev) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(event_kind(&ev), Some(CANCEL));
    assert_eq!(
        ev.get("reason").and_then(Value::as_str),
        Some("shutting down")
    );
    assert_eq!(
        ev.get("from").and_then(Value::as_str),
        Some(w.pid().as_str())
    );
    assert!(rig.handle.is_alive(&stubborn));
    assert_eq!(exit_error(&w.next()).as_deref(), Some("process terminated"));

    // A process that honours CANCEL before the deadline exits normally; the escalation
    // watcher disappears with it.
    let polite = rig
        .spawn(ActorSpec::default(), SpawnOptions::default())
        .unwrap();
    rig.topo.monitor(w.pid(), &polite).unwrap();
    rig.topo
        .cancel(
            w.pid(),
            &polite,
            &CancelArg {
                reason: String::new(),
                deadline: Some(Duration::from_secs(30)),
            },
        )
        .unwrap();
    let ev = w.next();
    assert_eq!(ev.get_path("result.value"), Some(&Value::str("cancelled")));
    drop(w);
    wait_until(Duration::from_secs(2), || rig.topo.is_quiescent());
}

#[test]
fn unknown_destinations_are_reported_like_upstream() {
    let rig = Rig::new();
    let w = Collector::new(&rig.topo);
    let dead = rig
        .spawn(ActorSpec::default(), SpawnOptions::default())
        .unwrap();
    rig.topo.terminate(&dead).unwrap();
    rig.wait_dead(&dead);
    assert_eq!(
        rig.topo.terminate(&dead).unwrap_err().message(),
        "process not found"
    );
    assert_eq!(
        rig.topo
            .cancel(w.pid(), &dead, &CancelArg::default())
            .unwrap_err()
            .message(),
        "process not found"
    );
    let nohost = Pid::parse("{app:nohost|0x00042}").unwrap();
    let e = rig.topo.terminate(&nohost).unwrap_err();
    assert_eq!(e.message(), "host not found");
    assert_eq!(e.kind(), &Kind::NOT_FOUND);
}

#[test]
fn concurrent_edges_and_exits_leave_nothing_behind() {
    let rig = Rig::new();
    let pids: Vec<Pid> = (0..400)
        .map(|_| {
            rig.spawn(ActorSpec::default(), SpawnOptions::default())
                .unwrap()
        })
        .collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (rig, pids) = (&rig, &pids);
            s.spawn(move || {
                for i in (t..pids.len()).step_by(4) {
                    let j = (i * 7 + 13) % pids.len();
                    let _ = rig.topo.monitor(&pids[i], &pids[j]);
                    let _ = rig.topo.link(&pids[j], &pids[(j + 1) % pids.len()]);
                    if i % 3 == 0 {
                        rig.tell(&pids[i], "exit", Value::Nil);
                    }
                }
            });
        }
    });
    for p in &pids {
        let _ = rig.topo.terminate(p);
    }
    for p in &pids {
        rig.wait_dead(p);
    }
    wait_until(Duration::from_secs(2), || rig.topo.is_quiescent());
    assert_eq!(rig.topo.graph().edge_count(), 0);
}
