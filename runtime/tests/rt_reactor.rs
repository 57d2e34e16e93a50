//! Reactor: sleep, message timers, tickers, I/O readiness.

mod support;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;
use wippy_rt::*;

#[test]
fn sleep_completes_a_yield_at_its_deadline_and_cancel_reports_canceled() {
    let (rt, h) = runtime(2);
    let t0 = Instant::now();
    let (_p, w) = spawn(&h, {
        let mut started = false;
        FnProc::new(move |cx, events, out| {
            if !started {
                started = true;
                cx.handle()
                    .sleep(Instant::now() + Duration::from_millis(30), cx.completer(1));
                let t = cx
                    .handle()
                    .sleep(Instant::now() + Duration::from_secs(30), cx.completer(2));
                assert!(t.is_active());
                assert!(t.cancel());
                assert!(!t.cancel());
                out.set_status(Status::Yield);
                return Ok(());
            }
            let mut got = Vec::new();
            for e in events.drain(..) {
                if let Event::Complete { tag, result } = e {
                    got.push((tag, result));
                }
            }
            if got.iter().any(|(t, _)| *t == 1) {
                out.finish(Ok(Value::Nil));
            } else {
                let (tag, r) = &got[0];
                assert_eq!(*tag, 2);
                let e = r.as_ref().unwrap_err();
                assert_eq!((e.kind(), e.message()), (&Kind::CANCELED, "timer stopped"));
                out.set_status(Status::Yield);
            }
            Ok(())
        })
    });
    wait(&w).unwrap();
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(30), "fired early: {took:?}");
    assert!(took < Duration::from_secs(5));
    rt.shutdown(Duration::from_secs(1));
}

/// Collects the messages it receives (topic, time) until `n` arrived.
fn collector(n: usize, log: Arc<Mutex<Vec<(String, Instant)>>>) -> Box<dyn Process> {
    FnProc::new(move |_, events, out| {
        for e in events.drain(..) {
            if let Event::Message(p) = e {
                assert!(
                    matches!(p.payloads[0], Value::Float(_)),
                    "tick payload is the fire time"
                );
                log.lock().unwrap().push((p.topic.clone(), Instant::now()));
            }
        }
        if log.lock().unwrap().len() >= n {
            out.finish(Ok(Value::Nil));
        } else {
            out.set_status(Status::Idle);
        }
        Ok(())
    })
}

#[test]
fn one_shot_timer_reset_and_ticker() {
    let (rt, h) = runtime(2);
    let log = Arc::new(Mutex::new(Vec::new()));
    // The collector stays alive until terminated: a ticker whose target exited stops itself,
    // so cancelling after the target finished would race with the next tick.
    let (pid, w) = spawn(&h, collector(usize::MAX, log.clone()));
    let t0 = Instant::now();
    let once = h.timer(t0 + Duration::from_secs(60), &pid, "once");
    assert!(
        once.reset(t0 + Duration::from_millis(20)),
        "reset moves the deadline earlier"
    );
    let tick = h.ticker(Duration::from_millis(15), &pid, "tick");
    let count = |topic: &str| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == topic)
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while count("once") == 0 || count("tick") < 3 {
        assert!(
            Instant::now() < deadline,
            "timers did not fire: {:?}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(tick.cancel(), "a ticker of a live target is still running");
    assert!(!tick.cancel());
    h.terminate(&pid).unwrap();
    let _ = wait(&w);
    let got = log.lock().unwrap().clone();
    assert_eq!(
        got.iter().filter(|(t, _)| t == "once").count(),
        1,
        "{got:?}"
    );
    assert!(got.iter().filter(|(t, _)| t == "tick").count() >= 3);
    let once_at = got.iter().find(|(t, _)| t == "once").unwrap().1;
    assert!(
        once_at.duration_since(t0) < Duration::from_secs(30),
        "reset timer fired at the old deadline"
    );
    assert!(!once.is_active());
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn ticker_stops_when_its_target_exits() {
    let (rt, h) = runtime(1);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (pid, w) = spawn(&h, collector(1, log));
    let tick = h.ticker(Duration::from_millis(5), &pid, "tick");
    wait(&w).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while tick.is_active() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!tick.is_active(), "a ticker to a dead process stops itself");
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn io_readiness_wakes_a_waiting_process() {
    let (rt, h) = runtime(2);
    let (mut a, mut b) = mio::net::UnixStream::pair().unwrap();
    let io = Arc::new(h.register_io(&mut b, mio::Interest::READABLE).unwrap());
    let b = Arc::new(Mutex::new(b));
    let (io2, b2) = (io.clone(), b.clone());
    let (_p, w) = spawn(&h, {
        let mut buf = Vec::new();
        FnProc::new(move |cx, events, out| {
            events.clear();
            loop {
                match io2.poll_ready(Ready::READABLE) {
                    Some(ev) => {
                        let mut chunk = [0u8; 64];
                        match b2.lock().unwrap().read(&mut chunk) {
                            Ok(0) => {
                                out.finish(Ok(Value::from(
                                    String::from_utf8(buf.clone()).unwrap(),
                                )));
                                return Ok(());
                            }
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                io2.clear_ready(ev)
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    None => {
                        io2.wait(Ready::READABLE, cx.completer(1));
                        out.set_status(Status::Yield);
                        return Ok(());
                    }
                }
            }
        })
    });
    std::thread::sleep(Duration::from_millis(20));
    a.write_all(b"hello ").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    a.write_all(b"world").unwrap();
    drop(a);
    assert_eq!(wait(&w).unwrap(), Value::str("hello world"));
    let io = Arc::try_unwrap(io).unwrap();
    io.deregister(&mut *b.lock().unwrap()).unwrap();
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn io_watch_delivers_messages() {
    let (rt, h) = runtime(1);
    let (mut a, mut b) = mio::net::UnixStream::pair().unwrap();
    let io = h.register_io(&mut b, mio::Interest::READABLE).unwrap();
    let (pid, w) = spawn(
        &h,
        FnProc::new(|_, events, out| {
            for e in events.drain(..) {
                if let Event::Message(p) = e {
                    assert_eq!(p.topic, "io");
                    let bits = Ready::from_bits(p.payloads[0].as_i64().unwrap() as u8);
                    out.finish(Ok(Value::Bool(bits.is_readable())));
                    return Ok(());
                }
            }
            out.set_status(Status::Idle);
            Ok(())
        }),
    );
    io.watch(Some((pid, "io".into())));
    a.write_all(b"x").unwrap();
    assert_eq!(wait(&w).unwrap(), Value::Bool(true));
    assert!(io.ready().is_readable());
    io.deregister(&mut b).unwrap();
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn shutdown_signal_callbacks_run() {
    let (rt, h) = runtime(1);
    let (tx, rx) = crossbeam_channel::bounded(1);
    h.on_shutdown_signal(move || {
        let _ = tx.try_send(());
    });
    h.raise_shutdown_signal();
    assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok());
    rt.shutdown(Duration::from_secs(1));
}
