//! Actor micro-benchmarks for native (non-Lua) processes, mirroring
//! `/work/shared/anchors/erlang/abench.erl` so the figures compare with Erlang's:
//!
//! * `spawn` — a parent spawns N children; each sends `done` to the parent and exits;
//!   time per child (spawn + first step + message + exit).
//! * `pingpong` — one round trip = two messages between two processes.
//! * `ring` — 10 000 processes pass a token 100 laps (1 M hops); throughput in messages/s.
//!   The ring is built outside the timed part (Erlang reports build time separately).
//! * `fanin` — 1 000 senders × 1 000 messages to one receiver (1 M messages), spawning included.
//! * `steal` — one process spawns 2 000 CPU-bound children (≈20 µs of work each) on its own
//!   worker: the other worker only gets work by stealing; time per child.
//!
//! Runs on 2 workers (and 1 worker for spawn/pingpong), unpinned by default so the bench does
//! not fight other processes on the shared machine (`WIPPY_BENCH_PIN=1` pins).
//! Run: `cargo bench -p wippy-rt --bench actors`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wippy_rt::*;

const HOST: &str = "bench";

fn runtime(workers: usize) -> (Runtime, Handle) {
    let pin = std::env::var("WIPPY_BENCH_PIN").is_ok_and(|v| v == "1");
    let rt = Builder::new().workers(workers).pin(pin).build().unwrap();
    let h = rt.handle();
    h.add_host(HOST, HostConfig::default()).unwrap();
    (rt, h)
}

fn run(h: &Handle, p: Box<dyn Process>) -> Value {
    let (_pid, w) = h
        .spawn_watched(HOST, p, "main", vec![], SpawnOptions::default())
        .unwrap();
    w.wait_timeout(Duration::from_secs(120))
        .expect("bench process stalled")
        .unwrap()
}

#[inline]
fn send(cx: &ProcessCx<'_>, to: &Pid, v: i64) {
    cx.handle()
        .send(Package::new(
            cx.pid().clone(),
            to.clone(),
            String::new(),
            vec![Value::Int(v)],
        ))
        .unwrap();
}

fn count_messages(events: &mut Vec<Event>) -> usize {
    let n = events
        .iter()
        .filter(|e| matches!(e, Event::Message(_)))
        .count();
    events.clear();
    n
}

// ===== spawn =====

struct Child {
    parent: Pid,
}
impl Process for Child {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        _: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        send(cx, &self.parent, 1);
        out.finish(Ok(Value::Nil));
        Ok(())
    }
}

struct Spawner {
    n: usize,
    spawned: usize,
    done: usize,
}
/// Children spawned per step before the spawner yields (Continue), so it does not hold its
/// worker for the whole run and `done` messages drain as it goes.
const SPAWN_BATCH: usize = 256;
impl Process for Spawner {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        ev: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        self.done += count_messages(ev);
        let end = (self.spawned + SPAWN_BATCH).min(self.n);
        while self.spawned < end {
            cx.handle().spawn(
                HOST,
                Box::new(Child {
                    parent: cx.pid().clone(),
                }),
                "main",
                vec![],
                SpawnOptions::default(),
            )?;
            self.spawned += 1;
        }
        if self.done == self.n {
            out.finish(Ok(Value::from(self.done)));
        } else if self.spawned < self.n {
            out.set_status(Status::Continue);
        } else {
            out.set_status(Status::Idle);
        }
        Ok(())
    }
}

// ===== ping-pong =====

struct Ping {
    n: u64,
    pong: Option<Pid>,
}
struct Pong {
    back: Pid,
}
impl Process for Ping {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        ev: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        let pong = match &self.pong {
            Some(p) => p.clone(),
            None => {
                let p = cx.handle().spawn(
                    HOST,
                    Box::new(Pong {
                        back: cx.pid().clone(),
                    }),
                    "main",
                    vec![],
                    SpawnOptions::default(),
                )?;
                self.pong = Some(p.clone());
                send(cx, &p, 0);
                out.set_status(Status::Idle);
                return Ok(());
            }
        };
        for _ in 0..count_messages(ev) {
            self.n -= 1;
            if self.n == 0 {
                cx.handle().terminate(&pong)?;
                out.finish(Ok(Value::Nil));
                return Ok(());
            }
            send(cx, &pong, 0);
        }
        out.set_status(Status::Idle);
        Ok(())
    }
}
impl Process for Pong {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        ev: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        for _ in 0..count_messages(ev) {
            send(cx, &self.back, 1);
        }
        out.set_status(Status::Idle);
        Ok(())
    }
}

// ===== ring =====

struct RingNode {
    next: Option<Pid>,
}
impl Process for RingNode {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        ev: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        for e in ev.drain(..) {
            if let Event::Message(p) = e {
                if p.topic == "next" {
                    // Wiring message: learn the successor.
                    self.next = Pid::parse(p.payloads[0].as_str().unwrap()).ok();
                    continue;
                }
                let next = self.next.as_ref().expect("ring wired");
                cx.handle()
                    .send(Package::new(
                        cx.pid().clone(),
                        next.clone(),
                        p.topic,
                        p.payloads,
                    ))
                    .unwrap();
            }
        }
        out.set_status(Status::Idle);
        Ok(())
    }
}

/// The ring's driver: waits for `go`, then injects the token `laps` times, waiting for it to
/// come back each lap.
struct RingDriver {
    first: Pid,
    laps: u64,
}
impl Process for RingDriver {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        ev: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        // `go` and returning tokens are both "send the next lap".
        for _ in 0..count_messages(ev) {
            if self.laps == 0 {
                out.finish(Ok(Value::Nil));
                return Ok(());
            }
            self.laps -= 1;
            send(cx, &self.first, self.laps as i64);
        }
        out.set_status(Status::Idle);
        Ok(())
    }
}

/// Build a ring: `n - 1` nodes plus the driver (n processes), wired in order. Every wiring
/// message is queued before `go` is sent, so the token never overtakes one.
fn build_ring(h: &Handle, n: usize, laps: u64) -> (Vec<Pid>, Pid, ExitWatch) {
    let nodes: Vec<Pid> = (0..n - 1)
        .map(|_| {
            h.spawn(
                HOST,
                Box::new(RingNode { next: None }),
                "main",
                vec![],
                SpawnOptions::default(),
            )
            .unwrap()
        })
        .collect();
    let d = RingDriver {
        first: nodes[0].clone(),
        laps,
    };
    let (dpid, w) = h
        .spawn_watched(HOST, Box::new(d), "main", vec![], SpawnOptions::default())
        .unwrap();
    for (i, p) in nodes.iter().enumerate() {
        let next = nodes.get(i + 1).unwrap_or(&dpid);
        h.send(Package::new(
            Pid::zero(),
            p.clone(),
            "next",
            vec![Value::str(next.as_str())],
        ))
        .unwrap();
    }
    (nodes, dpid, w)
}

// ===== fan-in =====

struct Sender {
    to: Pid,
    n: usize,
}
impl Process for Sender {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        _: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        for i in 0..self.n {
            send(cx, &self.to, i as i64);
        }
        out.finish(Ok(Value::Nil));
        Ok(())
    }
}

struct FanIn {
    senders: usize,
    per: usize,
    got: usize,
    started: bool,
}
impl Process for FanIn {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        ev: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        if !self.started {
            self.started = true;
            for _ in 0..self.senders {
                let s = Sender {
                    to: cx.pid().clone(),
                    n: self.per,
                };
                cx.handle()
                    .spawn(HOST, Box::new(s), "main", vec![], SpawnOptions::default())?;
            }
        }
        self.got += count_messages(ev);
        if self.got == self.senders * self.per {
            out.finish(Ok(Value::from(self.got)));
        } else {
            out.set_status(Status::Idle);
        }
        Ok(())
    }
}

// ===== steal =====

struct Work {
    parent: Pid,
    spin: Duration,
}
impl Process for Work {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        _: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < self.spin {
            x = black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        send(cx, &self.parent, x as i64);
        out.finish(Ok(Value::Nil));
        Ok(())
    }
}

struct Imbalanced {
    n: usize,
    spin: Duration,
    done: usize,
    started: bool,
}
impl Process for Imbalanced {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        ev: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        if !self.started {
            self.started = true;
            // All children land on this worker's local queue.
            for _ in 0..self.n {
                let w = Work {
                    parent: cx.pid().clone(),
                    spin: self.spin,
                };
                cx.handle()
                    .spawn(HOST, Box::new(w), "main", vec![], SpawnOptions::default())?;
            }
        }
        self.done += count_messages(ev);
        if self.done == self.n {
            out.finish(Ok(Value::Nil));
        } else {
            out.set_status(Status::Idle);
        }
        Ok(())
    }
}

fn benches(c: &mut Criterion) {
    for workers in [2usize, 1] {
        let (rt, h) = runtime(workers);
        let mut g = c.benchmark_group(format!("actors/{workers}w"));
        g.sample_size(20)
            .measurement_time(Duration::from_secs(6))
            .warm_up_time(Duration::from_secs(2));

        g.throughput(Throughput::Elements(1));
        g.bench_function("spawn", |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                run(
                    &h,
                    Box::new(Spawner {
                        n: iters as usize,
                        spawned: 0,
                        done: 0,
                    }),
                );
                t.elapsed()
            })
        });
        g.bench_function("pingpong", |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                run(
                    &h,
                    Box::new(Ping {
                        n: iters,
                        pong: None,
                    }),
                );
                t.elapsed()
            })
        });
        if workers == 2 {
            g.sample_size(10);
            g.throughput(Throughput::Elements(10_000 * 100));
            g.bench_function("ring_10k_x100", |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (nodes, dpid, w) = build_ring(&h, 10_000, 100);
                        let t = Instant::now();
                        h.send(Package::new(Pid::zero(), dpid, "go", vec![]))
                            .unwrap();
                        w.wait_timeout(Duration::from_secs(120))
                            .expect("ring stalled")
                            .unwrap();
                        total += t.elapsed();
                        for p in &nodes {
                            let _ = h.terminate(p);
                        }
                    }
                    total
                })
            });
            g.throughput(Throughput::Elements(1_000 * 1_000));
            g.bench_function("fanin_1000x1000", |b| {
                b.iter(|| {
                    run(
                        &h,
                        Box::new(FanIn {
                            senders: 1000,
                            per: 1000,
                            got: 0,
                            started: false,
                        }),
                    )
                })
            });
        }
        // Serial baseline on 1 worker; on 2 workers only stealing can halve it.
        g.sample_size(10);
        g.throughput(Throughput::Elements(2_000));
        g.bench_function("steal_2000x20us", |b| {
            b.iter(|| {
                run(
                    &h,
                    Box::new(Imbalanced {
                        n: 2_000,
                        spin: Duration::from_micros(20),
                        done: 0,
                        started: false,
                    }),
                )
            })
        });
        g.finish();
        let s = h.stats();
        eprintln!(
            "actors/{workers}w stats: executed={:?} stolen={} parks={:?}",
            s.per_worker.iter().map(|w| w.executed).collect::<Vec<_>>(),
            s.stolen,
            s.per_worker.iter().map(|w| w.parks).collect::<Vec<_>>()
        );
        rt.shutdown(Duration::from_secs(5));
    }
}

criterion_group!(actor_benches, benches);
criterion_main!(actor_benches);
