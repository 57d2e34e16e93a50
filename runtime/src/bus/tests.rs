use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

fn ev(system: &str, kind: &str) -> BusEvent {
    BusEvent::new(system, kind, "p", Value::Nil)
}

#[test]
fn filter_table() {
    // (system pattern, kind pattern, event system, event kind, matches)
    let cases: &[(&str, &str, &str, &str, bool)] = &[
        ("", "", "registry", "entry.create", true),
        ("registry", "", "registry", "entry.create", true),
        ("registry", "*", "registry", "entry.create", true),
        ("registry", "entry.*", "registry", "entry.create", true),
        ("registry", "entry.*", "registry", "entry.a.b", false),
        ("registry", "entry.**", "registry", "entry.a.b", true),
        ("registry", "entry.**", "registry", "entry", true),
        (
            "(registry|supervisor)",
            "*",
            "supervisor",
            "service.start",
            true,
        ),
        (
            "(registry|supervisor)",
            "*",
            "relay",
            "host.register",
            false,
        ),
        (
            "relay",
            "host.(register|delete)",
            "relay",
            "host.delete",
            true,
        ),
        (
            "relay",
            "host.(register|delete)",
            "relay",
            "host.accept",
            false,
        ),
        ("*", "", "relay", "x", true),
        ("*", "", "a.b", "x", false),
        ("**", "a.*.c", "x", "a.b.c", true),
        ("reg", "", "registry", "x", false),
    ];
    for &(sp, kp, s, k, want) in cases {
        assert_eq!(
            Filter::new(sp, kp).matches(&ev(s, k)),
            want,
            "system {sp:?} kind {kp:?} vs {s}:{k}"
        );
    }
}

#[test]
fn channel_subscription_and_unsubscribe() {
    let bus = Bus::new();
    let a = bus.subscribe("registry", "entry.*").unwrap();
    let b = bus.subscribe("", "").unwrap();
    bus.publish(ev("registry", "entry.create"));
    bus.publish(ev("relay", "host.register"));
    assert_eq!(a.try_recv().unwrap().kind, "entry.create");
    assert!(a.try_recv().is_none());
    assert_eq!(b.try_recv().unwrap().kind, "entry.create");
    assert_eq!(b.try_recv().unwrap().kind, "host.register");
    assert_eq!(bus.subscriber_count(), 2);
    drop(a);
    assert_eq!(bus.subscriber_count(), 1);
    assert!(b.id().starts_with("sub."));
    bus.close();
    assert!(b.recv_timeout(Duration::from_millis(10)).is_none());
    assert!(bus.subscribe("", "").is_err());
}

#[test]
fn per_subscriber_order_from_one_thread() {
    let bus = Bus::new();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let g2 = got.clone();
    let _cb = bus
        .subscribe_fn("s", "", move |e| g2.lock().unwrap().push(e.path.clone()))
        .unwrap();
    let ch = bus.subscribe("s", "").unwrap();
    for i in 0..2000 {
        bus.publish(BusEvent::new("s", "k", i.to_string(), Value::Nil));
    }
    bus.publish(BusEvent::new("s", "commit", "end", Value::Nil));
    let mut seen = Vec::new();
    while let Some(e) = ch.recv_timeout(Duration::from_secs(5)) {
        seen.push(e.path.clone());
        if e.kind == "commit" {
            break;
        }
    }
    let want: Vec<String> = (0..2000)
        .map(|i| i.to_string())
        .chain(["end".to_string()])
        .collect();
    assert_eq!(seen, want);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while got.lock().unwrap().len() < want.len() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(*got.lock().unwrap(), want);
}

#[test]
fn slow_subscriber_does_not_stall_others() {
    let bus = Bus::new();
    let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(0);
    let slow_calls = Arc::new(AtomicUsize::new(0));
    let sc = slow_calls.clone();
    let _slow = bus
        .subscribe_fn("s", "", move |_| {
            sc.fetch_add(1, Ordering::SeqCst);
            let _ = release_rx.recv_timeout(Duration::from_secs(10));
        })
        .unwrap();
    let fast_calls = Arc::new(AtomicUsize::new(0));
    let fc = fast_calls.clone();
    let _fast = bus.subscribe_fn("s", "", move |_| {
        fc.fetch_add(1, Ordering::SeqCst);
    });
    let ch = bus.subscribe("s", "").unwrap();
    for _ in 0..100 {
        bus.publish(ev("s", "k"));
    }
    // The channel subscriber and the fast callback get everything while the slow one is stuck
    // in its first call.
    for _ in 0..100 {
        assert!(ch.recv_timeout(Duration::from_secs(5)).is_some());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fast_calls.load(Ordering::SeqCst) < 100 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(fast_calls.load(Ordering::SeqCst), 100);
    assert_eq!(slow_calls.load(Ordering::SeqCst), 1);
    drop(release_tx);
}

#[test]
fn dropping_a_callback_subscription_stops_delivery() {
    let bus = Bus::new();
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let sub = bus.subscribe_fn("", "", move |_| {
        n2.fetch_add(1, Ordering::SeqCst);
    });
    drop(sub);
    bus.publish(ev("a", "b"));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(n.load(Ordering::SeqCst), 0);
    assert_eq!(bus.subscriber_count(), 0);
}
