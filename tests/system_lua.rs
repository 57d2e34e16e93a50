//! Acceptance tests of the process system written as a Wippy app (`tests/apps/system`): each
//! suite is a set of `meta.type: test` function entries run by the app's runner process.

mod system_support;

use std::sync::Arc;

use system_support::lua::LuaApp;

#[test]
fn topology() {
    LuaApp::boot("system").run_suite("system", "topology");
}

#[test]
fn cascade() {
    LuaApp::boot("system").run_suite("system", "cascade");
}

#[test]
fn names() {
    LuaApp::boot("system").run_suite("system", "names");
}

#[test]
fn spawner() {
    LuaApp::boot("system").run_suite("system", "spawner");
}

#[test]
fn registry() {
    LuaApp::boot("system").run_suite("system", "registry");
}

#[test]
fn events() {
    LuaApp::boot("system").run_suite("system", "events");
}

#[test]
fn supervision() {
    LuaApp::boot("system").run_suite("system", "supervision");
}

#[test]
fn upgrade() {
    LuaApp::boot("system").run_suite("system", "upgrade");
}

#[test]
fn hosts() {
    LuaApp::boot("system").run_suite("system", "hosts");
}

/// Supervised Lua workers (`process.service` entries created at run time) crash at random
/// while messages flow: every message accepted for a live incarnation is acknowledged, every
/// crash is followed by exactly one restart, and afterwards no name, monitor or watcher is
/// left. (The 10 000-worker native version is `tests/system_fault.rs`.)
#[test]
fn fault_lua_short() {
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::time::Duration;
    use wippy::registry::{ChangeSet, Entry};
    use wippy::rt::{Package, Pid, Value};
    use wippy::system::topology::Topology;

    const N: usize = 100;
    const CRASH: i64 = -1;
    let app = LuaApp::boot("system");
    let sys = app.app().system().clone();
    let topo = Topology::of(&sys.handle).unwrap();
    // Let the app's own supervised services settle (the supervision suite's flaky service
    // gives up after ~1 s), then take the topology's size as the baseline.
    std::thread::sleep(Duration::from_millis(1500));
    let baseline = topo.graph().len();
    let acks: Arc<Mutex<HashSet<(Pid, i64)>>> = Arc::default();
    let starts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (a2, s2) = (acks.clone(), starts.clone());
    let collector = topo.watch(move |pkg| match pkg.topic.as_str() {
        "ack" => {
            if let Some(v) = pkg.payloads.first().and_then(Value::as_i64) {
                a2.lock().unwrap().insert((pkg.from.clone(), v));
            }
        }
        "started" => {
            s2.fetch_add(1, Relaxed);
        }
        _ => {}
    });
    topo.names()
        .register("fault.collector", collector.pid())
        .unwrap();
    let mut cs = ChangeSet::new();
    for i in 0..N {
        let data: Value = serde_yaml::from_str(&format!(
            "process: fault:worker\nhost: system:processes\ninput: [{i}]\n\
             lifecycle: {{auto_start: true, stable_threshold: 1s, \
             restart: {{initial_delay: 5ms, max_delay: 50ms, backoff_factor: 2, jitter: 0.2}}}}"
        ))
        .unwrap();
        cs = cs.create(
            Entry::new(format!("fault:svc{i}").as_str(), "process.service").with_data(data),
        );
    }
    sys.registry.apply(cs).unwrap();
    let sup = wippy::system::supervisor::Supervisor::of(&sys.handle).unwrap();
    sup.wait_transitions(Duration::from_secs(30))
        .unwrap()
        .unwrap();
    let running = |sup: &wippy::system::supervisor::Supervisor| {
        (0..N).all(|i| {
            sup.state(&format!("fault:svc{i}"))
                .is_some_and(|s| s.status == wippy::system::supervisor::Status::Running)
        })
    };
    system_support::wait_until(Duration::from_secs(20), || {
        starts.load(Relaxed) >= N && (0..N).all(|i| topo.names().get(&format!("w{i}")).is_some())
    });

    let stop = AtomicBool::new(false);
    let logs: Vec<Vec<(Pid, i64)>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2i64)
            .map(|t| {
                let (topo, stop, sys) = (&topo, &stop, &sys);
                s.spawn(move || {
                    let mut log = Vec::new();
                    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ (t as u64 + 1);
                    let mut seq = t << 40;
                    while !stop.load(Relaxed) {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let Ok(pid) = topo.resolve(&format!("w{}", rng % N as u64)) else {
                            continue;
                        };
                        let (topic, v) = if rng.is_multiple_of(97) {
                            ("crash", CRASH)
                        } else {
                            seq += 1;
                            ("msg", seq)
                        };
                        let pkg =
                            Package::new(Pid::zero(), pid.clone(), topic, vec![Value::Int(v)]);
                        if sys.handle.send(pkg).is_ok() {
                            log.push((pid, v));
                        }
                        // A few thousand messages per second per sender: well within what
                        // 100 Lua workers process, so queues stay short.
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    log
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Relaxed);
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Every crashed incarnation (a crash marker accepted for it) restarts exactly once: wait
    // until the starts converge (a queued marker may still be processed after the senders
    // stopped), then check nothing more happens.
    let crashed: HashSet<&Pid> = logs
        .iter()
        .flatten()
        .filter(|(_, v)| *v == CRASH)
        .map(|(p, _)| p)
        .collect();
    let expect = N + crashed.len();
    system_support::wait_until(Duration::from_secs(30), || {
        starts.load(Relaxed) >= expect && running(&sup)
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = starts.load(Relaxed);
    // Stop the workers (each acknowledges what it already received before the CANCEL).
    let mut rm = ChangeSet::new();
    for i in 0..N {
        rm = rm.delete(format!("fault:svc{i}").as_str());
    }
    sys.registry.apply(rm).unwrap();
    sup.wait_transitions(Duration::from_secs(30))
        .expect("removal finished")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let acked = acks.lock().unwrap().clone();
    let mut crashers: HashMap<&Pid, usize> = HashMap::new();
    let mut sent = 0;
    for (pid, v) in logs.iter().flatten() {
        if *v == CRASH {
            *crashers.entry(pid).or_default() += 1;
        } else {
            sent += 1;
        }
    }
    let mut lost = 0;
    for log in &logs {
        let own: HashMap<&Pid, usize> =
            log.iter()
                .filter(|(_, v)| *v == CRASH)
                .fold(HashMap::new(), |mut m, (p, _)| {
                    *m.entry(p).or_default() += 1;
                    m
                });
        let mut mine: HashSet<&Pid> = HashSet::new();
        for (pid, v) in log {
            if *v == CRASH {
                mine.insert(pid);
                continue;
            }
            let required = match crashers.get(pid) {
                None => true,
                Some(n) => !mine.contains(pid) && Some(n) == own.get(pid),
            };
            if required && !acked.contains(&(pid.clone(), *v)) {
                lost += 1;
            }
        }
    }
    let crashes = crashers.len();
    eprintln!(
        "lua fault: {N} workers, 3 s: sent {sent}, acked {}, crashes {crashes}, starts {started}",
        acked.len()
    );
    assert_eq!(lost, 0, "messages to live Lua processes were lost");
    assert!(crashes > 10, "workers must actually crash");
    assert_eq!(started, N + crashes, "each crash restarted exactly once");
    assert!(topo.names().unregister("fault.collector"));
    drop(collector);
    system_support::wait_until(Duration::from_secs(10), || {
        (0..N).all(|i| topo.names().get(&format!("w{i}")).is_none())
            && topo.graph().len() == baseline
    });
}
