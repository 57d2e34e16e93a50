//! Fault test: many supervised workers crash at random while messages flow.
//!
//! * Every worker is a `process.service`-style [`ProcessService`] child registered under a
//!   name (`w<i>`), supervised with a growing-backoff restart policy.
//! * Sender threads resolve names and send sequenced messages; now and then they send a
//!   `crash` instead. Workers acknowledge every message they process.
//! * Checked afterwards:
//!   1. **no message to a live process is lost**: every message accepted by `send` before
//!      the crash marker of that incarnation was acknowledged;
//!   2. **every crash was restarted per policy**: each service started exactly
//!      `1 + crashes` times and is running again;
//!   3. **nothing leaks**: after stopping and removing every service, no process, name,
//!      monitor, link or watcher is left, the supervisor holds no state, and RSS is back near
//!      its baseline.
//!
//! `fault_short` runs in the default test run (500 workers, 2 s). `fault_full` is the 10 000
//! workers × 30 s version: `cargo test --release --test system_fault -- --ignored --nocapture`.

mod system_support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, unbounded};
use system_support::*;
use wippy::rt::process::EVENTS_TOPIC;
use wippy::rt::{
    Error, Event, Package, Pid, Process, ProcessCx, SpawnOptions, Status, StepOutput, Value,
};
use wippy::services::service::ProcessService;
use wippy::system::supervisor::{
    LifecycleConfig, RestartPolicy, ServiceSpec, Status as SvcStatus, Supervisor,
};

const CRASH: u64 = u64::MAX;

/// Acknowledges `msg` payloads, fails on `crash`, exits normally on CANCEL.
struct Worker {
    acks: Sender<(Pid, u64)>,
}

impl Process for Worker {
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
            let Event::Message(pkg) = ev else { continue };
            match pkg.topic.as_str() {
                "msg" => {
                    let seq = pkg.payloads[0].as_i64().unwrap() as u64;
                    let _ = self.acks.send((cx.pid().clone(), seq));
                }
                "crash" => {
                    out.finish(Err(Error::internal("random crash")));
                    return Ok(());
                }
                EVENTS_TOPIC => {
                    out.finish(Ok(Value::Nil));
                    return Ok(());
                }
                _ => {}
            }
        }
        out.set_status(Status::Idle);
        Ok(())
    }
}

/// Live heap bytes of this test binary, counted by a wrapping global allocator: the leak
/// measure. (RSS is reported too, but glibc keeps freed pages in per-thread arenas, so RSS
/// after a cycle says more about the allocator than about leaks.)
struct Counting;

static LIVE: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to the system allocator with the caller's layout and only
// adds bookkeeping on a global counter; the pointer contracts are System's.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded with the same layout (caller guarantees non-zero size).
        let p = unsafe { std::alloc::System.alloc(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size() as u64, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        // SAFETY: `p` was allocated by `alloc` above with layout `l`.
        unsafe { std::alloc::System.dealloc(p, l) };
        LIVE.fetch_sub(l.size() as u64, Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        // SAFETY: forwarded; `p`/`l` come from this allocator.
        let q = unsafe { std::alloc::System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_add(new as u64, Relaxed);
            LIVE.fetch_sub(l.size() as u64, Relaxed);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_kib() -> u64 {
    LIVE.load(Relaxed) / 1024
}

/// Resident set size in KiB, after returning free heap pages to the OS.
fn rss_kib() -> u64 {
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointers from us.
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4)
        .unwrap_or(0)
}

struct Figures {
    workers: usize,
    sent: u64,
    acked: u64,
    crashes: u64,
    restarts: u64,
    rss_baseline: u64,
    rss_peak: u64,
    rss_after: u64,
    heap_baseline: u64,
    heap_peak: u64,
    heap_after: u64,
}

/// One cycle: register and start every service, flow messages with random crashes for
/// `duration`, let restarts settle, check, then stop and remove everything.
fn cycle(
    rig: &Rig,
    sup: &Arc<Supervisor>,
    workers: usize,
    duration: Duration,
    crash_every: u64,
) -> Figures {
    let (ack_tx, ack_rx) = unbounded::<(Pid, u64)>();
    let spawns: Arc<Vec<AtomicU64>> = Arc::new((0..workers).map(|_| AtomicU64::new(0)).collect());
    let ids: Vec<String> = (0..workers).map(|i| format!("app:w{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let (topo, acks, spawns) = (rig.topo.clone(), ack_tx.clone(), spawns.clone());
        let name = format!("w{i}");
        let svc = ProcessService::new(
            id,
            rig.topo.clone(),
            Arc::new(move |mut opts: SpawnOptions| {
                spawns[i].fetch_add(1, Relaxed);
                opts.name = Some(name.clone());
                topo.handle().spawn(
                    HOST,
                    Box::new(Worker { acks: acks.clone() }),
                    "main",
                    vec![],
                    opts,
                )
            }),
        );
        sup.register(ServiceSpec {
            id: id.clone(),
            service: Arc::new(svc),
            config: LifecycleConfig {
                stable_threshold: Duration::from_millis(50),
                restart: RestartPolicy {
                    initial_delay: Duration::from_millis(2),
                    max_delay: Duration::from_millis(100),
                    backoff_factor: 2.0,
                    jitter: 0.2,
                    max_attempts: 0,
                },
                ..Default::default()
            },
            deps: vec![],
        });
    }
    drop(ack_tx);
    let r = sup.start_services(&ids, true, None);
    assert!(r.failed.is_empty(), "{:?}", r.failed.first());

    let collector = std::thread::spawn(move || {
        let mut acked: HashSet<(Pid, u64)> = HashSet::new();
        while let Ok(a) = ack_rx.recv() {
            acked.insert(a);
        }
        acked
    });
    let stop = AtomicBool::new(false);
    let mut rss_peak = 0;
    let mut heap_peak = 0;
    let logs: Vec<Vec<(Pid, u64)>> = std::thread::scope(|s| {
        let senders: Vec<_> = (0..2u64)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || {
                    let mut log = Vec::new();
                    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (t + 1);
                    let mut seq = t << 48;
                    while !stop.load(Relaxed) {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let i = (rng % workers as u64) as usize;
                        let Ok(pid) = rig.topo.resolve(&format!("w{i}")) else {
                            continue; // restarting: not a live process
                        };
                        let crash = rng.is_multiple_of(crash_every);
                        let (topic, v) = if crash {
                            ("crash", CRASH)
                        } else {
                            seq += 1;
                            ("msg", seq)
                        };
                        let pkg = Package::new(
                            Pid::zero(),
                            pid.clone(),
                            topic,
                            vec![Value::Int(v as i64)],
                        );
                        if rig.handle.send(pkg).is_ok() {
                            log.push((pid, v));
                        }
                        if seq % 64 == 0 {
                            std::thread::yield_now();
                        }
                    }
                    log
                })
            })
            .collect();
        let end = Instant::now() + duration;
        while Instant::now() < end {
            rss_peak = rss_peak.max(rss_kib());
            heap_peak = heap_peak.max(live_kib());
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Relaxed);
        senders.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // Let restarts settle: one restart per crashed incarnation (markers still queued when the
    // senders stopped are processed after), every service running again.
    let crashed: HashSet<&Pid> = logs
        .iter()
        .flatten()
        .filter(|(_, v)| *v == CRASH)
        .map(|(p, _)| p)
        .collect();
    let expect = workers as u64 + crashed.len() as u64;
    wait_until(Duration::from_secs(60), || {
        spawns.iter().map(|s| s.load(Relaxed)).sum::<u64>() >= expect
            && sup.states().iter().all(|s| s.status == SvcStatus::Running)
    });
    std::thread::sleep(Duration::from_millis(200));
    let total_spawns: u64 = spawns.iter().map(|s| s.load(Relaxed)).sum();

    // Stop and remove everything (acks drain as the last workers exit).
    for id in &ids {
        sup.remove(id).unwrap();
    }
    wait_until(Duration::from_secs(30), || {
        rig.handle.processes().is_empty()
    });
    let acked = collector.join().unwrap();

    // 1. No message to a live process lost: a message accepted by `send` must be acked
    // unless its incarnation crashed. With two senders, cross-sender order is undefined, so
    // for a crashed PID only the messages a sender sent before its own crash marker are
    // required — and only when no other sender crashed that PID too.
    let mut crashers: HashMap<&Pid, usize> = HashMap::new();
    let mut sent = 0u64;
    for (pid, v) in logs.iter().flatten() {
        if *v == CRASH {
            *crashers.entry(pid).or_default() += 1;
        } else {
            sent += 1;
        }
    }
    let mut lost = 0u64;
    for log in &logs {
        let mut own: HashMap<&Pid, usize> = HashMap::new();
        for (pid, v) in log {
            if *v == CRASH {
                *own.entry(pid).or_default() += 1;
            }
        }
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
    assert_eq!(lost, 0, "messages to live processes were lost");

    // 2. Every crash restarted per policy: one new start per crashed incarnation.
    let crashes = crashers.len() as u64;
    assert_eq!(
        total_spawns,
        workers as u64 + crashes,
        "each crash must cause exactly one restart"
    );

    // 3. Nothing leaks.
    wait_until(Duration::from_secs(5), || rig.topo.is_quiescent());
    assert!(sup.states().is_empty());
    assert_eq!(rig.topo.graph().edge_count(), 0);
    Figures {
        workers,
        sent,
        acked: acked.len() as u64,
        crashes,
        restarts: total_spawns - workers as u64,
        rss_baseline: 0,
        rss_peak,
        rss_after: 0,
        heap_baseline: 0,
        heap_peak,
        heap_after: 0,
    }
}

/// A warm-up cycle (a quarter of the duration) sets the RSS baseline (allocator arenas, map
/// capacities, pool threads at their high-water marks); the measured cycle must come back to
/// it.
fn run(workers: usize, duration: Duration, crash_every: u64) -> Figures {
    let rig = Rig::new();
    let sup = Supervisor::new(None);
    cycle(&rig, &sup, workers, duration / 4, crash_every);
    let (rss_baseline, heap_baseline) = (rss_kib(), live_kib());
    let mut f = cycle(&rig, &sup, workers, duration, crash_every);
    f.rss_baseline = rss_baseline;
    f.heap_baseline = heap_baseline;
    f.rss_after = rss_kib();
    f.heap_after = live_kib();
    sup.shutdown();
    f
}

fn report(f: &Figures, d: Duration) {
    eprintln!(
        "fault: {} workers, {:?}: sent {} acked {} crashes {} restarts {} | live heap KiB baseline {} peak {} after {} | RSS KiB baseline {} peak {} after {}",
        f.workers,
        d,
        f.sent,
        f.acked,
        f.crashes,
        f.restarts,
        f.heap_baseline,
        f.heap_peak,
        f.heap_after,
        f.rss_baseline,
        f.rss_peak,
        f.rss_after
    );
}

/// The live heap after the measured cycle is back at the warm-up baseline (slack: map
/// capacities and timer heaps that reached a higher high-water mark in the longer cycle).
fn assert_heap_back(f: &Figures) {
    assert!(
        f.heap_after <= f.heap_baseline + f.heap_baseline / 2 + 512,
        "live heap {} KiB after vs {} KiB baseline",
        f.heap_after,
        f.heap_baseline
    );
}

#[test]
fn fault_short() {
    let d = Duration::from_secs(2);
    let f = run(500, d, 97);
    report(&f, d);
    assert!(f.crashes > 10, "the test must actually crash workers");
    assert!(f.acked > 1000);
    assert_heap_back(&f);
}

#[test]
#[ignore = "10 000 workers for 30 s: run explicitly (see the module docs)"]
fn fault_full() {
    let d = Duration::from_secs(30);
    let f = run(10_000, d, 499);
    report(&f, d);
    assert!(f.crashes > 1000);
    assert_heap_back(&f);
}

/// Diagnostic: repeated cycles; live heap must plateau (RSS shows allocator retention).
#[test]
#[ignore = "diagnostic: CRASH_EVERY=2 cargo test --test system_fault fault_cycles -- --ignored --nocapture"]
fn fault_cycles() {
    let rig = Rig::new();
    let sup = Supervisor::new(None);
    let every: u64 = std::env::var("CRASH_EVERY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(97);
    for k in 0..10 {
        let f = cycle(&rig, &sup, 500, Duration::from_secs(2), every);
        eprintln!(
            "cycle {k}: sent {} crashes {} heap {} rss {}",
            f.sent,
            f.crashes,
            live_kib(),
            rss_kib()
        );
    }
}
