//! Process-system benches: monitor + exit notification latency, name lookups, topology edge
//! operations and the exit hook, supervisor restart latency; and from Lua (the bench app
//! `tests/apps/system/bench` booted through boot): `registry.find`/`get`, monitored
//! spawn + EXIT, `process.registry.lookup`.
//!
//! `cargo bench --bench system`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use crossbeam_channel::{Sender, bounded};
use wippy::rt::process::EVENTS_TOPIC;
use wippy::rt::{
    Builder, Error, Event, Handle, Package, Pid, Process, ProcessCx, Runtime, SpawnOptions, Status,
    StepOutput, Value,
};
use wippy::system::supervisor::{
    LifecycleConfig, RestartPolicy, Service, ServiceCtx, ServiceSpec, Status as SvcStatus,
    Supervisor,
};
use wippy::system::topology::Topology;

const HOST: &str = "bench:processes";

/// Exits with nil on any message; idle otherwise.
struct Idle;

impl Process for Idle {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        _: &mut ProcessCx<'_>,
        events: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        if events.iter().any(|e| matches!(e, Event::Message(_))) {
            out.finish(Ok(Value::Nil));
        } else {
            out.set_status(Status::Idle);
        }
        events.clear();
        Ok(())
    }
}

fn rig() -> (Runtime, Handle, Arc<Topology>) {
    let rt = Builder::new().workers(2).pin(false).build().unwrap();
    let h = rt.handle();
    h.add_host(HOST, Default::default()).unwrap();
    let topo = Topology::install(&h).unwrap();
    h.dispatcher().freeze();
    (rt, h, topo)
}

fn bench_notify(c: &mut Criterion) {
    let (rt, h, topo) = rig();
    let mut g = c.benchmark_group("topology");
    // From the message that makes a monitored process exit to its EXIT event reaching a
    // native watcher: the process's step, the exit hook (names + graph detach), the EXIT
    // package and its delivery.
    let (tx, rx) = bounded::<()>(1);
    let tx = Arc::new(tx);
    let t2 = tx.clone();
    let watcher = topo.watch(move |pkg| {
        if pkg.topic == EVENTS_TOPIC {
            let _ = t2.try_send(());
        }
    });
    g.bench_function("monitor_exit_notify", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let pid = h
                    .spawn(
                        HOST,
                        Box::new(Idle),
                        "main",
                        vec![],
                        SpawnOptions::default(),
                    )
                    .unwrap();
                topo.monitor(watcher.pid(), &pid).unwrap();
                let start = Instant::now();
                h.send(Package::new(Pid::zero(), pid, "go", vec![]))
                    .unwrap();
                rx.recv().unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    // The same path with the child spawned monitored by a parent through spawn options.
    g.bench_function("spawn_monitored_exit_notify", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let pid = h
                    .spawn(
                        HOST,
                        Box::new(Idle),
                        "main",
                        vec![],
                        SpawnOptions {
                            parent: Some(watcher.pid().clone()),
                            monitor: true,
                            ..Default::default()
                        },
                    )
                    .unwrap();
                let start = Instant::now();
                h.send(Package::new(Pid::zero(), pid, "go", vec![]))
                    .unwrap();
                rx.recv().unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    // The exit hook of a process nobody watches (every exit pays it).
    let nobody = Pid::new("", HOST, "0xfffff");
    g.bench_function("exit_hook_no_edges", |b| {
        b.iter(|| {
            topo.names().remove(black_box(&nobody));
            topo.graph().complete(black_box(&nobody), &Ok(Value::Nil))
        })
    });
    // monitor + demonitor of a live process (two shards locked each).
    let live = h
        .spawn(
            HOST,
            Box::new(Idle),
            "main",
            vec![],
            SpawnOptions::default(),
        )
        .unwrap();
    g.bench_function("monitor_demonitor", |b| {
        b.iter(|| {
            topo.monitor(watcher.pid(), &live).unwrap();
            topo.unmonitor(watcher.pid(), &live);
        })
    });
    g.bench_function("link_unlink", |b| {
        b.iter(|| {
            topo.link(watcher.pid(), &live).unwrap();
            topo.unlink(watcher.pid(), &live);
        })
    });
    g.finish();
    drop(watcher);
    drop(tx);
    rt.shutdown(Duration::from_secs(1));
}

fn bench_names(c: &mut Criterion) {
    let (rt, h, topo) = rig();
    let mut g = c.benchmark_group("names");
    let pids: Vec<Pid> = (0..10_000)
        .map(|i| {
            let p = h
                .spawn(
                    HOST,
                    Box::new(Idle),
                    "main",
                    vec![],
                    SpawnOptions::default(),
                )
                .unwrap();
            topo.names().register(&format!("worker.{i}"), &p).unwrap();
            p
        })
        .collect();
    let mut i = 0usize;
    g.bench_function("lookup_hit_10k", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            topo.resolve(black_box(&format!("worker.{i}"))).unwrap()
        })
    });
    let fixed = "worker.4242";
    g.bench_function("lookup_hit_fixed_name", |b| {
        b.iter(|| topo.names().get(black_box(fixed)).unwrap())
    });
    g.bench_function("lookup_miss", |b| {
        b.iter(|| topo.names().get(black_box("nobody.here")))
    });
    let text = pids[123].as_str().to_string();
    g.bench_function("resolve_pid_text", |b| {
        b.iter(|| topo.resolve(black_box(&text)).unwrap())
    });
    g.bench_function("register_unregister", |b| {
        b.iter(|| {
            topo.names().register("bench.tmp", &pids[0]).unwrap();
            topo.names().unregister("bench.tmp")
        })
    });
    g.finish();
    rt.shutdown(Duration::from_secs(2));
}

/// Reports a crash during every start.
struct Flappy {
    started: Sender<Instant>,
}

impl Service for Flappy {
    fn start(&self, ctx: ServiceCtx) -> Result<(), Error> {
        let _ = self.started.send(Instant::now());
        // Reported before `start` returns: the supervisor parks it and applies it right after
        // the start result (the "crashed immediately" path).
        ctx.failed(Error::internal("flap"));
        Ok(())
    }
    fn stop(&self, _: Instant) -> Result<(), Error> {
        Ok(())
    }
}

fn bench_supervisor(c: &mut Criterion) {
    let mut g = c.benchmark_group("supervisor");
    // Crash report → restarted (start called again), with a 1 ms initial delay (the floor of
    // the policy; a zero delay takes the 1 s default) and factor 1: measures the supervisor
    // loop, the timer heap and the pool hand-off on top of that millisecond.
    g.bench_function("crash_to_restart_1ms_delay", |b| {
        let sup = Supervisor::new(None);
        let (tx, rx) = crossbeam_channel::unbounded();
        sup.register(ServiceSpec {
            id: "bench:flappy".into(),
            service: Arc::new(Flappy { started: tx }),
            config: LifecycleConfig {
                stable_threshold: Duration::from_secs(3600),
                restart: RestartPolicy {
                    initial_delay: Duration::from_millis(1),
                    max_delay: Duration::from_millis(1),
                    backoff_factor: 1.0,
                    jitter: 0.0,
                    max_attempts: 0,
                },
                ..Default::default()
            },
            deps: vec![],
        });
        sup.start_async("bench:flappy");
        let mut last = rx.recv().unwrap();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = rx.recv().unwrap();
                total += t - last;
                last = t;
            }
            total
        });
        let _ = sup.stop("bench:flappy");
        assert_ne!(
            sup.state("bench:flappy").map(|s| s.status),
            Some(SvcStatus::Running)
        );
        sup.shutdown();
    });
    g.finish();
}

/// Replies to every message with a `pong` to the sender.
struct Echo;

impl Process for Echo {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        events: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        for ev in events.drain(..) {
            if let Event::Message(pkg) = ev {
                let _ = cx
                    .handle()
                    .send(Package::new(cx.pid().clone(), pkg.from, "pong", vec![]));
            }
        }
        out.set_status(Status::Idle);
        Ok(())
    }
}

/// Burns ~20 µs of CPU per step and runs again until `stop`.
struct Spinner(Arc<std::sync::atomic::AtomicBool>);

impl Process for Spinner {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        _: &mut ProcessCx<'_>,
        events: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        events.clear();
        if self.0.load(std::sync::atomic::Ordering::Relaxed) {
            out.finish(Ok(Value::Nil));
            return Ok(());
        }
        let mut x = 0u64;
        for i in 0..20_000u64 {
            x = black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        black_box(x);
        out.set_status(Status::Continue);
        Ok(())
    }
}

/// Ping-pong round trip to a process on host B, with host A idle or saturated by CPU-bound
/// processes (hosts share the workers, decision 0065).
fn bench_hosts(c: &mut Criterion) {
    let mut g = c.benchmark_group("hosts");
    for busy in [0usize, 8] {
        let (rt, h, topo) = rig();
        h.add_host("bench:other", Default::default()).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        for _ in 0..busy {
            h.spawn(
                "bench:other",
                Box::new(Spinner(stop.clone())),
                "main",
                vec![],
                SpawnOptions::default(),
            )
            .unwrap();
        }
        let echo = h
            .spawn(
                HOST,
                Box::new(Echo),
                "main",
                vec![],
                SpawnOptions::default(),
            )
            .unwrap();
        let (tx, rx) = bounded::<()>(1);
        let w = topo.watch(move |_| {
            let _ = tx.try_send(());
        });
        let name = if busy == 0 {
            "pingpong_rtt_idle_neighbor".to_string()
        } else {
            format!("pingpong_rtt_{busy}_busy_processes_on_neighbor_host")
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                h.send(Package::new(w.pid().clone(), echo.clone(), "ping", vec![]))
                    .unwrap();
                rx.recv().unwrap();
            })
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(w);
        rt.shutdown(Duration::from_secs(1));
    }
    g.finish();
}

/// Call function `id` of the booted bench app with `args` and wait for its result.
fn call(app: &wippy::boot::App, id: &str, args: Vec<Value>) -> Value {
    let (tx, rx) = bounded(1);
    app.system().functions.call(
        wippy::system::CallRequest {
            target: id.into(),
            args,
            ..Default::default()
        },
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.recv_timeout(Duration::from_secs(120))
        .expect("bench call finished")
        .unwrap_or_else(|e| panic!("{id}: {e}"))
}

fn bench_lua(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/system/bench");
    let mut o = wippy::boot::BootOptions::new(&dir);
    o.workers = Some(2);
    let app = wippy::boot::App::start(o).expect("bench app boots");
    // 10 000 plain entries like benches/registry.rs: 50 namespaces, every 10th meta.type=test.
    let mut cs = wippy::registry::ChangeSet::new();
    for i in 0..10_000usize {
        let mut e = wippy::registry::Entry::new(
            wippy::registry::Id::new(&format!("data.ns{}", i % 50), &format!("e{i}")),
            "bench.config",
        );
        e.meta = Value::Map(vec![
            (
                Value::str("type"),
                Value::str(if i.is_multiple_of(10) {
                    "test"
                } else {
                    "handler"
                }),
            ),
            (Value::str("owner"), Value::from(format!("team-{}", i % 7))),
        ]);
        e.data = Value::Map(vec![(Value::str("value"), Value::Int(i as i64))]);
        cs = cs.create(e);
    }
    app.system().registry.apply(cs).expect("bench entries");
    let filter = |pairs: &[(&str, &str)]| {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (Value::str(k), Value::str(v)))
                .collect(),
        )
    };
    let mut g = c.benchmark_group("lua");
    // One iteration = one `registry.find` call inside a Lua loop (the call into the loop is
    // amortised over `iters`).
    let looped = |g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
                  name: &str,
                  id: &'static str,
                  extra: Vec<Value>| {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut args = vec![Value::Int(iters as i64)];
                args.extend(extra.iter().cloned());
                let t = Instant::now();
                black_box(call(&app, id, args));
                t.elapsed()
            })
        });
    };
    let finds = [
        (
            "registry_find_0_hits",
            vec![(".ns", "data.ns7"), ("meta.type", "test")],
            0,
        ),
        ("registry_find_1_hit", vec![(".id", "data.ns7:e4207")], 1),
        (
            "registry_find_29_hits",
            vec![(".ns", "data.ns10"), ("meta.owner", "team-3")],
            29,
        ),
        (
            "registry_find_143_hits",
            vec![
                (".kind", "bench.*"),
                ("meta.type", "test"),
                ("^meta.owner", "team-3"),
            ],
            143,
        ),
    ];
    for (name, f, hits) in finds {
        let n = call(&app, "bench:find_n", vec![Value::Int(1), filter(&f)]);
        assert_eq!(n.as_i64(), Some(hits), "{name}: hit count");
        looped(&mut g, name, "bench:find_n", vec![filter(&f)]);
    }
    looped(
        &mut g,
        "registry_get",
        "bench:get_n",
        vec![Value::str("data.ns7:e4207")],
    );
    looped(
        &mut g,
        "registry_lookup_name",
        "bench:lookup_n",
        vec![Value::str("bench.name")],
    );
    g.sample_size(20);
    looped(
        &mut g,
        "spawn_monitored_exit",
        "bench:monitor_exit_n",
        vec![],
    );
    g.finish();
    app.shutdown();
}

criterion_group!(
    benches,
    bench_notify,
    bench_names,
    bench_supervisor,
    bench_hosts,
    bench_lua
);
criterion_main!(benches);
