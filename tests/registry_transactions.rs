//! Transactions: listeners, observers, participants, rollback on rejection and timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wippy::registry::{
    ChangeSet, Entry, Id, OpKind, RecordingSink, Registry, RegistryOptions, TxPhase,
};
use wippy::rt::{Error, Value};

fn reg(timeout_ms: u64) -> Registry {
    Registry::new(RegistryOptions {
        event_wait_timeout: Duration::from_millis(timeout_ms),
        ..Default::default()
    })
    .unwrap()
}

fn e(id: &str, kind: &str) -> Entry {
    Entry::new(id, kind).with_data(Value::Map(vec![(Value::str("x"), Value::Int(1))]))
}

#[test]
fn listener_sees_ops_and_events_are_published() {
    let r = reg(1000);
    let sink = Arc::new(RecordingSink::new());
    r.set_event_sink(sink.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    r.handlers().add_listener_fn("http.*", "http", move |ev| {
        s2.lock()
            .unwrap()
            .push(format!("{} {}", ev.op, ev.entry.id));
        Ok(())
    });
    let obs = Arc::new(AtomicUsize::new(0));
    let o2 = obs.clone();
    r.handlers().add_observer_fn("**", "obs", move |_| {
        o2.fetch_add(1, Ordering::SeqCst);
    });
    let v = r
        .apply(
            ChangeSet::new()
                .create(e("app:svc", "http.service"))
                .create(e("app:cfg", "registry.entry")),
        )
        .unwrap();
    assert_eq!(v.id, 1);
    assert_eq!(*seen.lock().unwrap(), vec!["entry.create app:svc"]);
    assert_eq!(
        obs.load(Ordering::SeqCst),
        1,
        "internal kinds are not dispatched"
    );
    assert_eq!(
        sink.kinds(),
        vec![
            "registry.begin registry.tx/1",
            "entry.create app:svc",
            "registry.commit registry.tx/1",
            "registry.version 1"
        ]
    );
    r.apply(ChangeSet::new().delete("app:svc")).unwrap();
    assert_eq!(seen.lock().unwrap().last().unwrap(), "entry.delete app:svc");
}

#[test]
fn rejection_rolls_back_everything() {
    let r = reg(1000);
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    r.handlers().add_listener_fn("svc", "svc", move |ev| {
        l2.lock()
            .unwrap()
            .push(format!("{} {}", ev.op, ev.entry.id));
        if ev.entry.id.name() == "bad" && ev.op == OpKind::Create {
            return Err(Error::invalid("port already in use"));
        }
        Ok(())
    });
    r.apply(ChangeSet::new().create(e("app:keep", "svc")))
        .unwrap();
    let before = r.snapshot();
    let versions_before = r.versions();
    let err = r
        .apply(
            ChangeSet::new()
                .create(e("app:a", "svc"))
                .create(e("app:bad", "svc"))
                .delete("app:keep"),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "operation rejected for entry app:bad: port already in use"
    );
    assert_eq!(err.kind(), &wippy::rt::Kind::INVALID);
    // State and history unchanged.
    assert_eq!(r.snapshot().state(), before.state());
    assert_eq!(r.current_version().id, 1);
    assert_eq!(r.versions(), versions_before);
    assert!(r.get(&Id::parse("app:a")).is_none());
    assert!(r.get(&Id::parse("app:keep")).is_some());
    // The listener saw the inverse ops of what had been accepted (a was created → deleted).
    let l = log.lock().unwrap();
    assert!(l.contains(&"entry.create app:a".to_string()));
    assert_eq!(l.last().unwrap(), "entry.delete app:a", "{l:?}");
}

#[test]
fn listener_timeout_rolls_back() {
    let r = reg(100);
    let (_id, rx) = r.handlers().listener_channel("slow.**", "slow-component");
    // A component thread that accepts creates of `ok` but never answers `hang`.
    let parked = Arc::new(Mutex::new(Vec::new()));
    let p2 = parked.clone();
    let worker = std::thread::spawn(move || {
        while let Ok((ev, reply)) = rx.recv() {
            if ev.entry.id.name() == "hang" && ev.op == OpKind::Create {
                p2.lock().unwrap().push(reply); // keep it unanswered
            } else {
                reply.accept();
            }
        }
    });
    let err = r
        .apply(
            ChangeSet::new()
                .create(e("app:ok", "slow.x"))
                .create(e("app:hang", "slow.x")),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "event handler timeout after 100ms for entry app:hang (kind slow.x; listeners: slow-component)"
    );
    assert!(r.snapshot().state().is_empty());
    assert_eq!(r.current_version().id, 0);
    assert_eq!(r.versions().len(), 1);
    drop(r);
    worker.join().unwrap();
}

#[test]
fn unhandled_kinds_are_accepted_immediately() {
    let r = reg(30_000);
    let t = std::time::Instant::now();
    r.apply(ChangeSet::new().create(e("app:x", "custom.thing")))
        .unwrap();
    // A listener that declines (drops the reply) is treated the same way.
    r.handlers().add_listener("decl.*", "decliner", DropReply);
    r.apply(ChangeSet::new().create(e("app:y", "decl.a")))
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "no 30 s wait");
    assert_eq!(r.snapshot().state().len(), 2);
}

struct DropReply;
impl wippy::registry::Listener for DropReply {
    fn on_entry(&self, _event: wippy::registry::EntryEvent, _reply: wippy::registry::Reply) {}
}

#[test]
fn not_found_rejections_are_deferred() {
    let r = reg(1000);
    // `b` refuses until `a` exists; `a` sorts after `b` and has no declared dependency.
    let state = Arc::new(Mutex::new(Vec::<String>::new()));
    let s2 = state.clone();
    r.handlers().add_listener_fn("k", "k", move |ev| {
        let mut s = s2.lock().unwrap();
        if ev.entry.id.name() == "a_needs_z" && !s.contains(&"z".to_string()) {
            return Err(Error::not_found("z not found"));
        }
        s.push(ev.entry.id.name().to_string());
        Ok(())
    });
    r.apply(
        ChangeSet::new()
            .create(e("app:a_needs_z", "k"))
            .create(e("app:z", "k")),
    )
    .unwrap();
    assert_eq!(*state.lock().unwrap(), vec!["z", "a_needs_z"]);

    // Never satisfiable → unresolved after retry, rolled back.
    let r2 = reg(1000);
    r2.handlers().add_listener_fn("k", "k", |ev| {
        if ev.entry.id.name() == "never" {
            Err(Error::not_found("missing dep"))
        } else {
            Ok(())
        }
    });
    let err = r2
        .apply(
            ChangeSet::new()
                .create(e("app:fine", "k"))
                .create(e("app:never", "k")),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unresolved dependencies after retry: [app:never]"),
        "{err}"
    );
    assert!(r2.snapshot().state().is_empty());
}

#[test]
fn validation_errors_use_original_texts() {
    let r = reg(1000);
    r.apply(ChangeSet::new().create(e("app:a", "k1"))).unwrap();
    let msg = |cs: ChangeSet| r.apply(cs).unwrap_err().to_string();
    assert_eq!(
        msg(ChangeSet::new().create(e("app:a", "k1"))),
        "entry already exists: {ns: app, name: a}"
    );
    assert_eq!(
        msg(ChangeSet::new().update(e("app:zz", "k1"))),
        "entry does not exist: {ns: app, name: zz}"
    );
    assert_eq!(
        msg(ChangeSet::new().update(e("app:a", "k2"))),
        "cannot change entry kind from k1 to k2 for app:a"
    );
    assert_eq!(
        msg(ChangeSet::new().delete("app:zz")),
        "cannot delete non-existent entry: {ns: app, name: zz}"
    );
    assert_eq!(msg(ChangeSet::new()), "no changes to apply");
}

#[test]
fn participants_begin_commit_discard() {
    let r = reg(200);
    let phases = Arc::new(Mutex::new(Vec::new()));
    let p2 = phases.clone();
    r.handlers()
        .add_participant_fn("boot.tx.1", move |ev| {
            p2.lock().unwrap().push(match &ev.phase {
                TxPhase::Begin => "begin".to_string(),
                TxPhase::Commit => "commit".to_string(),
                TxPhase::Discard(e) => format!("discard: {e}"),
            });
            Ok(())
        })
        .unwrap();
    assert!(
        r.handlers()
            .add_participant_fn("boot.tx.1", |_| Ok(()))
            .is_err(),
        "duplicate id"
    );
    r.handlers().add_listener_fn("k", "k", |ev| {
        if ev.entry.id.name() == "bad" {
            Err(Error::invalid("no"))
        } else {
            Ok(())
        }
    });
    r.apply(ChangeSet::new().create(e("app:a", "k"))).unwrap();
    r.apply(ChangeSet::new().create(e("app:bad", "k")))
        .unwrap_err();
    assert_eq!(
        *phases.lock().unwrap(),
        vec![
            "begin",
            "commit",
            "begin",
            "discard: operation rejected for entry app:bad: no"
        ]
    );

    // A participant rejecting commit rolls the change back.
    let r = reg(200);
    r.handlers()
        .add_participant_fn("sup", |ev| match ev.phase {
            TxPhase::Commit => Err(Error::internal("cannot start")),
            _ => Ok(()),
        })
        .unwrap();
    let err = r
        .apply(ChangeSet::new().create(e("app:a", "k")))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "transaction rejected for sup: cannot start"
    );
    assert!(r.snapshot().state().is_empty());
}

#[test]
fn watch_delivers_committed_changes() {
    let r = reg(1000);
    let rx = r.watch(Id::parse("app:w"));
    r.apply(
        ChangeSet::new()
            .create(e("app:w", "k"))
            .create(e("app:other", "k")),
    )
    .unwrap();
    r.apply(ChangeSet::new().update(Entry::new("app:w", "k").with_data(Value::Int(2))))
        .unwrap();
    let a = rx.try_recv().unwrap();
    assert_eq!((a.version, a.op), (1, OpKind::Create));
    let b = rx.try_recv().unwrap();
    assert_eq!(
        (b.version, b.op, b.entry.data.clone()),
        (2, OpKind::Update, Value::Int(2))
    );
    assert!(rx.try_recv().is_err());
    r.apply_version(1).unwrap();
    assert_eq!(rx.try_recv().unwrap().op, OpKind::Update);
}
