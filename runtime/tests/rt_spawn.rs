//! Spawning: many short processes, limits, init/on_start failures, lifecycle hooks, panics.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;
use wippy_rt::*;

/// A child that tells its parent it ran, then exits.
fn child(parent: Pid) -> Box<dyn Process> {
    FnProc::new(move |cx, _ev, out| {
        cx.handle().send(msg(cx.pid(), &parent, 1)).unwrap();
        out.finish(Ok(Value::Nil));
        Ok(())
    })
}

/// A parent that spawns `n` children (in batches, yielding with Continue between batches) and
/// finishes with the number of `done` messages received once all arrived.
fn spawner(n: usize, batch: usize) -> Box<dyn Process> {
    let mut spawned = 0usize;
    let mut done = 0usize;
    FnProc::new(move |cx, events, out| {
        done += events
            .drain(..)
            .filter(|e| matches!(e, Event::Message(_)))
            .count();
        let end = (spawned + batch).min(n);
        while spawned < end {
            cx.handle().spawn(
                HOST,
                child(cx.pid().clone()),
                "main",
                vec![],
                SpawnOptions::default(),
            )?;
            spawned += 1;
        }
        if done == n {
            out.finish(Ok(Value::from(done)));
        } else if spawned < n {
            out.set_status(Status::Continue);
        } else {
            out.set_status(Status::Idle);
        }
        Ok(())
    })
}

#[test]
fn a_million_short_processes_all_complete() {
    let n = 1_000_000;
    let (rt, h) = runtime(2);
    let (_pid, exit) = spawn(&h, spawner(n, 1000));
    assert_eq!(
        exit.wait_timeout(Duration::from_secs(60))
            .expect("timeout")
            .unwrap(),
        Value::from(n)
    );
    let s = h.stats();
    assert_eq!(s.spawned, n as u64 + 1);
    // The parent's exit is counted just after its result is delivered.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while h.stats().exited < n as u64 + 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(h.stats().exited, n as u64 + 1);
    assert_eq!(h.stats().processes, 0);
    assert!(h.processes().is_empty());
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn max_processes_is_a_hard_limit() {
    let (rt, h) = runtime(2);
    h.add_host(
        "limited",
        HostConfig {
            max_processes: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    let idle = || {
        FnProc::new(|_, _, out| {
            out.set_status(Status::Idle);
            Ok(())
        })
    };
    let a = h
        .spawn("limited", idle(), "main", vec![], SpawnOptions::default())
        .unwrap();
    let _b = h
        .spawn("limited", idle(), "main", vec![], SpawnOptions::default())
        .unwrap();
    let e = h
        .spawn("limited", idle(), "main", vec![], SpawnOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), &Kind::LIMIT_EXCEEDED);
    assert_eq!(e.message(), "max processes limit exceeded");
    assert_eq!(e.detail("host_id").and_then(Value::as_str), Some("limited"));
    h.terminate(&a).unwrap();
    // The slot is free again once the terminated process is gone.
    assert!(
        h.spawn("limited", idle(), "main", vec![], SpawnOptions::default())
            .is_ok()
    );
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn spawn_errors() {
    let (rt, h) = runtime(1);
    let e = h
        .spawn(
            "nope",
            FnProc::new(|_, _, _| Ok(())),
            "main",
            vec![],
            SpawnOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), &Kind::NOT_FOUND);
    assert_eq!(e.message(), "host not found");
    assert!(
        h.add_host(HOST, HostConfig::default())
            .unwrap_err()
            .message()
            .contains("host already exists")
    );

    // init receives method and input; its error aborts the spawn, and close still runs.
    let closed = Arc::new(AtomicUsize::new(0));
    let c2 = closed.clone();
    let p = FnProc::new(|_, _, _| panic!("must not step"))
        .with_init(|_, method, input| {
            assert_eq!(method, "run");
            assert_eq!(input, vec![Value::Int(5)]);
            Err(Error::invalid("bad input"))
        })
        .with_close(move || {
            c2.fetch_add(1, SeqCst);
        });
    let e = h
        .spawn(HOST, p, "run", vec![Value::Int(5)], SpawnOptions::default())
        .unwrap_err();
    assert_eq!(e.message(), "bad input");
    assert_eq!(closed.load(SeqCst), 1);
    // A panicking init is an Internal error, not a crash.
    let p = FnProc::new(|_, _, _| Ok(())).with_init(|_, _, _| panic!("init boom"));
    let e = h
        .spawn(HOST, p, "main", vec![], SpawnOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), &Kind::INTERNAL);
    assert!(e.message().contains("init boom"), "{e}");
    assert_eq!(h.stats().processes, 0);
    rt.shutdown(Duration::from_secs(1));
}

struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
    tag: &'static str,
    fail_name: Option<&'static str>,
}

impl Lifecycle for Recorder {
    fn on_start(&self, pid: &Pid, opts: &SpawnOptions) -> Result<(), Error> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:start:{}:{:?}", self.tag, pid.uniq(), opts.name));
        if opts.name.as_deref().is_some() && opts.name.as_deref() == self.fail_name {
            return Err(Error::new(Kind::ALREADY_EXISTS, "name already registered"));
        }
        Ok(())
    }
    fn on_complete(&self, pid: &Pid, result: &Result<Value, Error>) {
        self.log.lock().unwrap().push(format!(
            "{}:complete:{}:{:?}",
            self.tag,
            pid.uniq(),
            result.as_ref().ok()
        ));
    }
}

#[test]
fn lifecycle_hooks_run_in_order_and_can_reject() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let rt = Builder::new()
        .workers(2)
        .pin(false)
        .lifecycle(Arc::new(Recorder {
            log: log.clone(),
            tag: "global",
            fail_name: Some("taken"),
        }))
        .build()
        .unwrap();
    let h = rt.handle();
    let host_hook = Arc::new(Recorder {
        log: log.clone(),
        tag: "host",
        fail_name: None,
    });
    h.add_host(
        HOST,
        HostConfig {
            lifecycle: Some(host_hook),
            ..Default::default()
        },
    )
    .unwrap();

    // on_start runs before the first step: the step sees its own log line already.
    let l2 = log.clone();
    let p = FnProc::new(move |_, _, out| {
        assert_eq!(
            l2.lock().unwrap().len(),
            2,
            "both on_start hooks ran before the first step"
        );
        out.finish(Ok(Value::Int(7)));
        Ok(())
    });
    let (pid, exit) = h
        .spawn_watched(
            HOST,
            p,
            "main",
            vec![],
            SpawnOptions {
                name: Some("n".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(wait(&exit).unwrap(), Value::Int(7));
    let u = pid.uniq();
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            format!("global:start:{u}:Some(\"n\")"),
            format!("host:start:{u}:Some(\"n\")"),
            format!("global:complete:{u}:Some(Int(7))").replace("Int(7)", "7"),
            format!("host:complete:{u}:Some(7)"),
        ]
    );

    // A rejecting on_start aborts the spawn: the error reaches the spawner, later hooks and
    // steps never run, close runs.
    log.lock().unwrap().clear();
    let closed = Arc::new(AtomicUsize::new(0));
    let c2 = closed.clone();
    let p = FnProc::new(|_, _, _| panic!("must not step")).with_close(move || {
        c2.fetch_add(1, SeqCst);
    });
    let e = h
        .spawn(
            HOST,
            p,
            "main",
            vec![],
            SpawnOptions {
                name: Some("taken".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.message(), "name already registered");
    assert_eq!(closed.load(SeqCst), 1);
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "host hook not run after the global one failed"
    );
    assert_eq!(h.stats().processes, 0);
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn step_panic_and_error_become_exit_reasons() {
    let (rt, h) = runtime(2);
    let closes = Arc::new(AtomicUsize::new(0));
    let c2 = closes.clone();
    let (_p, exit) = spawn(
        &h,
        FnProc::new(|_, _, _| panic!("kaboom")).with_close(move || {
            c2.fetch_add(1, SeqCst);
        }),
    );
    let e = wait(&exit).unwrap_err();
    assert_eq!(e.kind(), &Kind::INTERNAL);
    assert!(e.message().contains("kaboom"));
    let (_p, exit) = spawn(&h, FnProc::new(|_, _, _| Err(Error::invalid("nope"))));
    assert_eq!(wait(&exit).unwrap_err().message(), "nope");
    assert_eq!(closes.load(SeqCst), 1);
    // The runtime is still healthy.
    let (_p, exit) = spawn(
        &h,
        FnProc::new(|_, _, out| {
            out.finish(Ok(Value::Bool(true)));
            Ok(())
        }),
    );
    assert_eq!(wait(&exit).unwrap(), Value::Bool(true));
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn introspection_lists_processes() {
    let (rt, h) = runtime(1);
    let parent = Pid::parse("{app:test|0x99999}").unwrap();
    let pid = h
        .spawn(
            HOST,
            FnProc::new(|_, _, out| {
                out.set_status(Status::Idle);
                Ok(())
            }),
            "main",
            vec![],
            SpawnOptions {
                parent: Some(parent.clone()),
                source: Some("app:worker".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while h.process_info(&pid).unwrap().state != ProcessState::Idle
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let info = h.process_info(&pid).unwrap();
    assert_eq!(info.state.name(), "idle");
    assert_eq!(info.steps, 1);
    assert_eq!(info.host, HOST);
    assert_eq!(info.parent, Some(parent));
    assert_eq!(info.source.as_deref(), Some("app:worker"));
    assert_eq!(h.processes().len(), 1);
    let s = h.stats();
    assert_eq!((s.workers, s.processes), (1, 1));
    assert!(s.executed >= 1);
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn upgrade_swaps_the_process_and_keeps_pid_and_mailbox() {
    let (rt, h) = runtime(2);
    let v1_closed = Arc::new(AtomicUsize::new(0));
    let c2 = v1_closed.clone();
    let v2_ready = Arc::new(AtomicUsize::new(0));
    let r2 = v2_ready.clone();
    let v1 = FnProc::new(move |cx, events, out| {
        // On the first message: upgrade to v2 with that message's payload as input.
        for e in events.drain(..) {
            if let Event::Message(p) = e {
                let pid = cx.pid().clone();
                let v2 = FnProc::new(move |cx, events, out| {
                    assert_eq!(cx.pid(), &pid, "same PID after upgrade");
                    for e in events.drain(..) {
                        if let Event::Message(p) = e {
                            out.finish(Ok(p.payloads[0].clone()));
                            return Ok(());
                        }
                    }
                    out.set_status(Status::Idle);
                    Ok(())
                })
                .with_init({
                    let r2 = r2.clone();
                    move |_, method, input| {
                        r2.store(1, SeqCst);
                        assert_eq!(method, "v2");
                        assert_eq!(input, vec![Value::Int(1)]);
                        Ok(())
                    }
                });
                out.upgrade(v2, "v2", p.payloads);
                return Ok(());
            }
        }
        out.set_status(Status::Idle);
        Ok(())
    })
    .with_close(move || {
        c2.fetch_add(1, SeqCst);
    });
    let (pid, exit) = spawn(&h, v1);
    h.send(msg(&Pid::zero(), &pid, 1)).unwrap();
    // Events already handed to v1's step are v1's; what is queued afterwards reaches v2.
    // Wait until v2 is in place and idle.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while (v2_ready.load(SeqCst) == 0
        || h.process_info(&pid)
            .is_some_and(|i| i.state != ProcessState::Idle))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    h.send(msg(&Pid::zero(), &pid, 2)).unwrap();
    assert_eq!(wait(&exit).unwrap(), Value::Int(2));
    assert_eq!(
        v1_closed.load(SeqCst),
        1,
        "the old object is closed at the swap"
    );
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn completer_created_in_init_is_delivered_to_the_first_steps() {
    let (rt, h) = runtime(1);
    let p = FnProc::new(|_, events, out| {
        match events.pop() {
            Some(Event::Complete { tag: 5, result }) => out.finish(result),
            _ => out.set_status(Status::Yield),
        }
        Ok(())
    })
    .with_init(|cx, _, _| {
        let c = cx.completer(5);
        assert!(c.is_alive());
        std::thread::spawn(move || c.complete(Ok(Value::str("from init"))));
        Ok(())
    });
    let (_pid, exit) = spawn(&h, p);
    assert_eq!(wait(&exit).unwrap(), Value::str("from init"));
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn builder_rejects_absurd_worker_counts() {
    let e = Builder::new()
        .workers(1_000_000)
        .pin(false)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), &Kind::INVALID);
    assert!(
        e.message().contains("workers must be between 1 and 4096"),
        "{e}"
    );
}
