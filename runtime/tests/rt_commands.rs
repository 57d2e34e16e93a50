//! Yields and completions: sync and async handlers, unknown commands, dropped and stale
//! completers, dispatcher registration rules.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;
use wippy_rt::*;

/// Completes inline with value × 2.
fn double_handler() -> Arc<dyn Handler> {
    Arc::new(|_: &DispatchCx<'_>, c: Box<dyn Command>, done: Completer| {
        let v = cmd_value(c).as_i64().unwrap();
        done.complete(Ok(Value::Int(v * 2)));
    })
}

/// Completes from another thread after a short delay.
fn async_handler() -> Arc<dyn Handler> {
    Arc::new(|_: &DispatchCx<'_>, c: Box<dyn Command>, done: Completer| {
        let v = cmd_value(c);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            done.complete(Ok(v));
        });
    })
}

/// Drops the completer without completing.
fn dropping_handler() -> Arc<dyn Handler> {
    Arc::new(|_: &DispatchCx<'_>, _c: Box<dyn Command>, done: Completer| drop(done))
}

fn runtime_with_handlers() -> (Runtime, Handle) {
    let (rt, h) = runtime(2);
    h.dispatcher()
        .register(300, "test.double", double_handler());
    h.dispatcher().register(7, "test.async", async_handler());
    h.dispatcher()
        .register(1000, "test.drop", dropping_handler());
    h.dispatcher().freeze();
    (rt, h)
}

/// Yields the given commands one step at a time, collecting results in order.
fn yielder(cmds: Vec<(CommandId, Value)>, several_at_once: bool) -> Box<dyn Process> {
    let mut cmds = cmds.into_iter();
    let mut pending = 0usize;
    let mut results: Vec<Value> = Vec::new();
    let mut next_tag = 1u64;
    FnProc::new(move |_, events, out| {
        for ev in events.drain(..) {
            if let Event::Complete { tag, result } = ev {
                pending -= 1;
                results.push(Value::Array(vec![
                    Value::Int(tag as i64),
                    result.unwrap_or_else(|e| Value::str(e.message())),
                ]));
            }
        }
        if pending == 0 {
            let batch: Vec<_> = if several_at_once {
                cmds.by_ref().collect()
            } else {
                cmds.next().into_iter().collect()
            };
            if batch.is_empty() {
                out.finish(Ok(Value::Array(std::mem::take(&mut results))));
                return Ok(());
            }
            for (id, v) in batch {
                out.yield_command(next_tag, Box::new(Cmd(id, v)));
                next_tag += 1;
                pending += 1;
            }
        }
        out.set_status(Status::Yield);
        Ok(())
    })
}

fn pair(tag: i64, v: Value) -> Value {
    Value::Array(vec![Value::Int(tag), v])
}

#[test]
fn sync_async_unknown_and_dropped_completions() {
    let (rt, h) = runtime_with_handlers();
    let cmds = vec![
        (300, Value::Int(21)),
        (7, Value::str("later")),
        (999, Value::Nil),
        (1000, Value::Nil),
    ];
    let (_p, exit) = spawn(&h, yielder(cmds.clone(), false));
    assert_eq!(
        wait(&exit).unwrap(),
        Value::Array(vec![
            pair(1, Value::Int(42)),
            pair(2, Value::str("later")),
            pair(3, Value::str("unknown command")),
            pair(4, Value::str("command dropped without completion")),
        ])
    );
    // All four yielded in one step (inline storage for 2 + overflow).
    let (_p, exit) = spawn(&h, yielder(cmds, true));
    let Value::Array(mut got) = wait(&exit).unwrap() else {
        panic!()
    };
    got.sort_by_key(|v| v.as_array().unwrap()[0].as_i64());
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], pair(1, Value::Int(42)));
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn unknown_command_error_shape() {
    let e = dispatch::unknown_command(999);
    assert_eq!(e.kind(), &Kind::NOT_FOUND);
    assert_eq!(e.detail("command_id"), Some(&Value::Int(999)));
}

#[test]
fn stale_completions_are_rejected() {
    let (rt, h) = runtime(2);
    let stash: Arc<Mutex<Vec<Completer>>> = Arc::new(Mutex::new(Vec::new()));
    let s2 = stash.clone();
    // The process hands out a completer, then exits without waiting for it.
    let (pid, exit) = spawn(
        &h,
        FnProc::new(move |cx, _, out| {
            s2.lock().unwrap().push(cx.completer(1));
            s2.lock().unwrap().push(cx.completer(2));
            out.finish(Ok(Value::Nil));
            Ok(())
        }),
    );
    wait(&exit).unwrap();
    let mut v = std::mem::take(&mut *stash.lock().unwrap());
    let c2 = v.pop().unwrap();
    let c1 = v.pop().unwrap();
    assert_eq!(c1.pid(), &pid);
    assert!(!c1.is_alive());
    assert!(
        !c1.complete(Ok(Value::Int(1))),
        "completion after exit must be dropped"
    );
    drop(c2); // dropping a stale completer is silent too
    assert!(!h.is_alive(&pid));
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn completion_wakes_an_idle_process() {
    // Unlike the original, a completion wakes an Idle process too (spec §2.14).
    let (rt, h) = runtime(2);
    let (_p, exit) = spawn(&h, {
        let mut started = false;
        FnProc::new(move |cx, events, out| {
            if !started {
                started = true;
                let c = cx.completer(9);
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(5));
                    c.complete(Ok(Value::str("ok")));
                });
                out.set_status(Status::Idle);
                return Ok(());
            }
            match events.pop() {
                Some(Event::Complete { tag: 9, result }) => out.finish(result),
                _ => out.set_status(Status::Idle),
            }
            Ok(())
        })
    });
    assert_eq!(wait(&exit).unwrap(), Value::str("ok"));
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn dispatch_cx_carries_caller() {
    let (rt, h) = runtime(1);
    let seen = Arc::new(Mutex::new(None));
    let s2 = seen.clone();
    h.dispatcher().register(
        42,
        "test.who",
        Arc::new(
            move |cx: &DispatchCx<'_>, _c: Box<dyn Command>, done: Completer| {
                *s2.lock().unwrap() = Some((cx.pid().clone(), cx.options().source.clone()));
                assert_eq!(cx.handle().workers(), 1);
                done.complete(Ok(Value::Nil));
            },
        ),
    );
    let (pid, exit) = h
        .spawn_watched(
            HOST,
            yielder(vec![(42, Value::Nil)], false),
            "main",
            vec![],
            SpawnOptions {
                source: Some("app:x".into()),
                ..Default::default()
            },
        )
        .unwrap();
    wait(&exit).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        Some((pid, Some("app:x".to_string())))
    );
    rt.shutdown(Duration::from_secs(1));
}

#[test]
#[should_panic(expected = "command 5 registered by 'b' is already registered by 'a'")]
fn duplicate_command_registration_panics_naming_both_owners() {
    let d = Dispatcher::new();
    d.register(5, "a", double_handler());
    d.register(5, "b", double_handler());
}

#[test]
#[should_panic(expected = "command 4464 registered by 'b' is already registered by 'a'")]
fn duplicate_extended_id_panics() {
    // Ids ≥ 256 live in the map, with the same rule.
    let d = Dispatcher::new();
    d.register(4464, "a", double_handler());
    d.register(4464, "b", double_handler());
}

#[test]
#[should_panic(expected = "after freeze()")]
fn registration_after_freeze_panics() {
    let d = Dispatcher::new();
    d.freeze();
    d.register(1, "late", double_handler());
}

#[test]
fn dispatcher_lookup_before_and_after_freeze() {
    let d = Dispatcher::new();
    d.register(3, "process", double_handler());
    d.register(4000, "ext", double_handler());
    assert!(d.get(3).is_some() && d.get(4000).is_some() && d.get(4).is_none());
    assert_eq!(d.owner(4000), Some("ext"));
    d.freeze();
    assert!(d.is_frozen());
    assert!(d.get(3).is_some() && d.get(4000).is_some() && d.get(4001).is_none());
    assert_eq!(d.owner(3), Some("process"));
}
