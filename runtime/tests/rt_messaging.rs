//! Messaging: per-sender order under stealing, ping-pong without lost wake-ups, send errors.

mod support;

use std::time::Duration;

use support::*;
use wippy_rt::*;

/// A receiver expecting `senders × per` messages `[sender index, seq]`; fails on any
/// out-of-order message, finishes with the total.
fn ordered_receiver(senders: usize, per: usize) -> Box<dyn Process> {
    let mut next = vec![0i64; senders];
    let mut total = 0usize;
    FnProc::new(move |_, events, out| {
        for ev in events.drain(..) {
            if let Event::Message(p) = ev {
                let s = p.payloads[0].as_i64().unwrap() as usize;
                let seq = p.payloads[1].as_i64().unwrap();
                if seq != next[s] {
                    return Err(Error::internal(format!(
                        "sender {s}: got {seq}, expected {}",
                        next[s]
                    )));
                }
                next[s] += 1;
                total += 1;
            }
        }
        if total == senders * per {
            out.finish(Ok(Value::from(total)));
        } else {
            out.set_status(Status::Idle);
        }
        Ok(())
    })
}

/// A sender that sends `per` messages to `to`, `chunk` per step, returning Continue between
/// chunks (so it migrates between workers while it sends).
fn chunked_sender(index: usize, to: Pid, per: usize, chunk: usize) -> Box<dyn Process> {
    let mut seq = 0usize;
    FnProc::new(move |cx, _, out| {
        let end = (seq + chunk).min(per);
        while seq < end {
            let p = Package::new(
                cx.pid().clone(),
                to.clone(),
                "t",
                vec![Value::from(index), Value::from(seq)],
            );
            cx.handle().send(p)?;
            seq += 1;
        }
        if seq == per {
            out.finish(Ok(Value::Nil));
        }
        Ok(())
    })
}

#[test]
fn per_sender_order_holds_while_workers_steal() {
    let (senders, per) = (200, 500);
    let (rt, h) = runtime(2);
    let (rpid, exit) = spawn(&h, ordered_receiver(senders, per));
    for i in 0..senders {
        // Each chunk is a separate step; spawned from outside, senders start on the global
        // queue and are stolen back and forth between the two workers.
        h.spawn(
            HOST,
            chunked_sender(i, rpid.clone(), per, 7),
            "main",
            vec![],
            SpawnOptions::default(),
        )
        .unwrap();
    }
    assert_eq!(wait(&exit).unwrap(), Value::from(senders * per));
    let s = h.stats();
    assert!(s.executed > (senders * per / 7) as u64);
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn per_sender_order_holds_from_foreign_threads() {
    let (senders, per) = (4, 20_000);
    let (rt, h) = runtime(2);
    let (rpid, exit) = spawn(&h, ordered_receiver(senders, per));
    let threads: Vec<_> = (0..senders)
        .map(|i| {
            let h = h.clone();
            let to = rpid.clone();
            std::thread::spawn(move || {
                let from = Pid::new("", "ext", &i.to_string());
                for seq in 0..per {
                    h.send(Package::new(
                        from.clone(),
                        to.clone(),
                        "t",
                        vec![Value::from(i), Value::from(seq)],
                    ))
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(wait(&exit).unwrap(), Value::from(senders * per));
    rt.shutdown(Duration::from_secs(1));
}

/// Ping side: sends `n` pings to the pong it spawns, one at a time, waiting for each reply.
fn ping(n: u64) -> Box<dyn Process> {
    let mut pong: Option<Pid> = None;
    let mut left = n;
    FnProc::new(move |cx, events, out| {
        if pong.is_none() {
            let me = cx.pid().clone();
            let p =
                cx.handle()
                    .spawn(HOST, pong_proc(me), "main", vec![], SpawnOptions::default())?;
            cx.handle().send(msg(cx.pid(), &p, 0))?;
            pong = Some(p);
            out.set_status(Status::Idle);
            return Ok(());
        }
        for ev in events.drain(..) {
            if let Event::Message(_) = ev {
                left -= 1;
                if left == 0 {
                    let p = pong.as_ref().unwrap();
                    cx.handle()
                        .send(Package::new(cx.pid().clone(), p.clone(), "stop", vec![]))?;
                    out.finish(Ok(Value::Int(n as i64)));
                    return Ok(());
                }
                cx.handle().send(msg(cx.pid(), pong.as_ref().unwrap(), 0))?;
            }
        }
        out.set_status(Status::Idle);
        Ok(())
    })
}

fn pong_proc(back: Pid) -> Box<dyn Process> {
    FnProc::new(move |cx, events, out| {
        for ev in events.drain(..) {
            if let Event::Message(p) = ev {
                if p.topic == "stop" {
                    out.finish(Ok(Value::Nil));
                    return Ok(());
                }
                cx.handle().send(msg(cx.pid(), &back, 1))?;
            }
        }
        out.set_status(Status::Idle);
        Ok(())
    })
}

#[test]
fn a_million_ping_pong_round_trips_lose_no_wakeup() {
    let (rt, h) = runtime(2);
    let (_p, exit) = spawn(&h, ping(1_000_000));
    assert_eq!(
        exit.wait_timeout(Duration::from_secs(60))
            .expect("lost wake-up: ping-pong stalled")
            .unwrap(),
        Value::Int(1_000_000)
    );
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn many_concurrent_ping_pongs_lose_no_wakeup() {
    // 64 pairs × 5 000 round trips on 2 workers: pairs compete, get stolen and park/unpark
    // constantly; a single lost wake-up hangs one pair and fails the test.
    let (rt, h) = runtime(2);
    let watches: Vec<_> = (0..64).map(|_| spawn(&h, ping(5_000)).1).collect();
    for w in &watches {
        assert_eq!(
            w.wait_timeout(Duration::from_secs(60))
                .expect("stalled")
                .unwrap(),
            Value::Int(5_000)
        );
    }
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn send_errors() {
    let (rt, h) = runtime(1);
    let (pid, exit) = spawn(
        &h,
        FnProc::new(|_, _, out| {
            out.finish(Ok(Value::Nil));
            Ok(())
        }),
    );
    wait(&exit).unwrap();
    let e = h.send(msg(&Pid::zero(), &pid, 1)).unwrap_err();
    assert_eq!(
        (e.kind(), e.message()),
        (&Kind::NOT_FOUND, "process not found")
    );
    let e = h
        .send(msg(
            &Pid::zero(),
            &Pid::parse("{app:none|0x00001}").unwrap(),
            1,
        ))
        .unwrap_err();
    assert_eq!(e.message(), "host not found");
    let e = h
        .send(msg(
            &Pid::zero(),
            &Pid::parse("{n9@app:test|0x00001}").unwrap(),
            1,
        ))
        .unwrap_err();
    assert_eq!(e.message(), "node not found");
    assert_eq!(
        h.terminate(&pid).unwrap_err().message(),
        "process not found"
    );
    rt.shutdown(Duration::from_secs(1));
}

/// A step that sends several messages (batched after the second one) keeps per-target order
/// and causality: a relay that reacts to a later message can never overtake earlier ones.
#[test]
fn batched_sends_keep_order_and_causality() {
    let (rt, h) = runtime(2);
    // R collects everything; expects a0 a1 a2 (from S) before r (from T, caused by S's b).
    let (rpid, rexit) = spawn(&h, {
        let mut got: Vec<String> = Vec::new();
        FnProc::new(move |_, events, out| {
            for e in events.drain(..) {
                if let Event::Message(p) = e {
                    got.push(p.payloads[0].as_str().unwrap().to_string());
                }
            }
            if got.len() == 4 {
                out.finish(Ok(Value::str(&got.join(","))));
            } else {
                out.set_status(Status::Idle);
            }
            Ok(())
        })
    });
    // T forwards whatever it gets to R as "r".
    let r2 = rpid.clone();
    let (tpid, _t) = spawn(
        &h,
        FnProc::new(move |cx, events, out| {
            for e in events.drain(..) {
                if let Event::Message(_) = e {
                    cx.handle().send(msg(cx.pid(), &r2, "r"))?;
                }
            }
            out.set_status(Status::Idle);
            Ok(())
        }),
    );
    let (r3, t3) = (rpid.clone(), tpid.clone());
    let (_s, sexit) = spawn(
        &h,
        FnProc::new(move |cx, _, out| {
            let hd = cx.handle();
            hd.send(msg(cx.pid(), &r3, "a0"))?;
            hd.send(msg(cx.pid(), &r3, "a1"))?; // second in a row: batching starts
            hd.send(msg(cx.pid(), &t3, "b"))?;
            hd.send(msg(cx.pid(), &r3, "a2"))?;
            // Errors are still immediate while batching.
            let dead = Pid::parse("{app:test|0xfffff}").unwrap();
            assert_eq!(
                hd.send(msg(cx.pid(), &dead, "x")).unwrap_err().message(),
                "process not found"
            );
            out.finish(Ok(Value::Nil));
            Ok(())
        }),
    );
    wait(&sexit).unwrap();
    assert_eq!(wait(&rexit).unwrap(), Value::str("a0,a1,a2,r"));
    rt.shutdown(Duration::from_secs(1));
}

#[test]
fn local_node_id_and_empty_node_address_the_same_process() {
    let rt = Builder::new()
        .workers(1)
        .pin(false)
        .node_id("n1")
        .build()
        .unwrap();
    let h = rt.handle();
    h.add_host(HOST, HostConfig::default()).unwrap();
    let (pid, exit) = spawn(
        &h,
        FnProc::new(|_, events, out| {
            if events.drain(..).any(|e| matches!(e, Event::Message(_))) {
                out.finish(Ok(Value::Nil));
            } else {
                out.set_status(Status::Idle);
            }
            Ok(())
        }),
    );
    assert_eq!(pid.as_str(), "{n1@app:test|0x00001}");
    let short = Pid::parse("{app:test|0x00001}").unwrap();
    assert!(h.is_alive(&short));
    h.send(msg(&Pid::zero(), &short, 1)).unwrap();
    wait(&exit).unwrap();
    rt.shutdown(Duration::from_secs(1));
}
