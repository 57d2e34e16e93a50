//! Lua engine benchmarks: Lua processes on a 2-worker runtime.
//!
//! Run: `cargo bench --bench lua_engine` (criterion medians go to `docs/benchmarks.md`).
//! The memory report (idle Lua process RSS and Lua heap) is printed first; set
//! `LUA_ENGINE_MEM_ONLY=1` to print only it, `LUA_ENGINE_IDLE=<n>` to change the number of idle
//! processes (default 100000).
//!
//! Cases:
//! * `spawn_exit/trivial_from_rust` — spawn a trivial `process.lua` (`main` returns at once)
//!   through the process manager from a Rust thread and wait for all exits; time per process.
//! * `spawn_exit/trivial_from_lua` — a Lua process spawns N trivial children with
//!   `process.spawn` and waits for their EXIT events... (children report by message).
//! * `pingpong/listen` and `pingpong/inbox` — one round trip between two Lua processes
//!   (`process.send` + receive on a `process.listen` channel / on the inbox with Message
//!   objects and `msg:payload():data()`), measured inside Lua over N round trips.
//! * `funcs_call/trivial` — `funcs.call` of a function that returns its argument, N calls in
//!   a loop inside a Lua process.

/// The `wippy` binary's allocator (decision 0034), so the engine is measured as shipped.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use wippy::config::Config;
use wippy::lua::engine;
use wippy::registry::{Entry, Registry};
use wippy::rt::{
    Builder, Event, HostConfig, Lifecycle, Package, Pid, Process, ProcessCx, Runtime, SpawnOptions,
    Status, StepOutput, Value,
};
use wippy::system::process_manager::{ProcessManager, StartRequest};
use wippy::system::{Factories, Functions, Shutdown, System};

const HOST: &str = "b:processes";

/// Counts process exits and wakes a waiter at a target.
///
/// The condvar is signalled only once the waiter's target is reached: `Condvar::notify_all`
/// is a futex syscall even with nobody waiting, and one per exit would be the harness's cost,
/// not the runtime's.
struct Exits {
    n: AtomicU64,
    /// The count a waiter waits for (`u64::MAX`: nobody waits).
    target: AtomicU64,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Default for Exits {
    fn default() -> Self {
        Exits {
            n: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }
}

impl Lifecycle for Exits {
    fn on_complete(&self, _pid: &Pid, _r: &Result<Value, wippy::rt::Error>) {
        let n = self.n.fetch_add(1, Ordering::SeqCst) + 1;
        // Store-buffering pair with `wait_for` (target store, then count load; both SeqCst):
        // either the waiter sees the count or this sees the target and signals under the lock.
        if n >= self.target.load(Ordering::SeqCst) {
            let _g = self.lock.lock().unwrap();
            self.cv.notify_all();
        }
    }
}

impl Exits {
    fn wait_for(&self, target: u64) {
        self.target.store(target, Ordering::SeqCst);
        let mut g = self.lock.lock().unwrap();
        while self.n.load(Ordering::SeqCst) < target {
            g = self
                .cv
                .wait_timeout(g, Duration::from_millis(50))
                .unwrap()
                .0;
        }
        self.target.store(u64::MAX, Ordering::SeqCst);
    }
}

struct Bench {
    sys: Arc<System>,
    pm: Arc<ProcessManager>,
    exits: Arc<Exits>,
    _rt: Runtime,
}

fn lua(id: &str, kind: &str, source: &str, method: &str, modules: &[&str]) -> Entry {
    let mut data = Value::Map(Vec::new());
    data.insert("source", Value::from(source));
    data.insert("method", Value::from(method));
    data.insert(
        "modules",
        Value::Array(modules.iter().map(|m| Value::from(*m)).collect()),
    );
    Entry::new(id, kind).with_data(data)
}

const SRC: &str = r#"
local M = {}
function M.trivial() end
function M.spawner(n)
  local me = process.pid()
  local done = process.listen("done")
  for _ = 1, n do process.spawn("b:reporter", "b:processes", me) end
  for _ = 1, n do done:receive() end
end
function M.reporter(parent) process.send(parent, "done", true) end
function M.pong(ping)
  local ch = process.listen("ping")
  while true do
    local v = ch:receive()
    if v == nil then return end
    process.send(ping, "pong", v)
  end
end
function M.ping_listen(n)
  local ch = process.listen("pong")
  local pong = process.spawn("b:pong", "b:processes", process.pid())
  local t0 = os.clock()
  for i = 1, n do
    process.send(pong, "ping", i)
    ch:receive()
  end
  local dt = os.clock() - t0
  process.send(pong, "ping")
  return dt
end
function M.pong_inbox()
  local inbox = process.inbox()
  while true do
    local msg = inbox:receive()
    local v = msg:payload():data()
    if v == false then return end
    process.send(msg:from(), "pong", v)
  end
end
function M.ping_inbox(n)
  local inbox = process.inbox()
  local pong = process.spawn("b:pong_inbox", "b:processes")
  local t0 = os.clock()
  for i = 1, n do
    process.send(pong, "ping", i)
    inbox:receive():payload():data()
  end
  local dt = os.clock() - t0
  process.send(pong, "ping", false)
  return dt
end
function M.noop(x) return x end
function M.caller(n)
  local t0 = os.clock()
  for i = 1, n do funcs.call("b:noop", i) end
  return os.clock() - t0
end
return M
"#;

/// The idle process of the memory report: its own minimal chunk (a state caches the compiled
/// chunk of the entry it runs, so a big shared chunk would be counted per process).
const IDLE_SRC: &str = "return { main = function() process.inbox():receive() end }";

fn setup() -> Bench {
    // `LUA_ENGINE_WORKERS=1` (profiling aid): the same cases on one worker.
    let workers = std::env::var("LUA_ENGINE_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let rt = Builder::new().workers(workers).build().expect("runtime");
    let exits = Arc::new(Exits::default());
    rt.handle().add_lifecycle(exits.clone());
    let sys = Arc::new(System {
        handle: rt.handle(),
        registry: Arc::new(Registry::default()),
        config: Arc::new(Config::defaults()),
        factories: Arc::new(Factories::new()),
        functions: Arc::new(Functions::new()),
        shutdown: Arc::new(Shutdown::new()),
    });
    sys.handle.add_host(HOST, HostConfig::default()).unwrap();
    let e = engine::install(&sys);
    e.factory.prewarm(1024).unwrap();
    sys.handle.dispatcher().freeze();
    sys.handle.app_context().seal();
    let p = |m: &str, mods: &[&str]| lua(&format!("b:{m}"), "process.lua", SRC, m, mods);
    let entries = vec![
        p("trivial", &[]),
        p("spawner", &[]),
        p("reporter", &[]),
        p("pong", &[]),
        p("ping_listen", &[]),
        p("pong_inbox", &[]),
        p("ping_inbox", &[]),
        lua("b:idle", "process.lua", IDLE_SRC, "main", &[]),
        p("caller", &["funcs"]),
        lua("b:noop", "function.lua", SRC, "noop", &[]),
    ];
    sys.registry.load_state(entries).expect("entries");
    let pm = ProcessManager::of(&sys).unwrap();
    Bench {
        sys,
        pm,
        exits,
        _rt: rt,
    }
}

impl Bench {
    fn start(&self, id: &str, input: Vec<Value>) -> Pid {
        self.pm
            .start(StartRequest {
                host: HOST.into(),
                source: id.into(),
                input,
                ..StartRequest::default()
            })
            .expect("start")
    }

    /// Run `id` to completion and return its result.
    fn exec(&self, id: &str, input: Vec<Value>) -> Value {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.pm
            .start_watched(
                StartRequest {
                    host: HOST.into(),
                    source: id.into(),
                    input,
                    ..StartRequest::default()
                },
                Box::new(move |r| {
                    let _ = tx.send(r.clone());
                }),
            )
            .expect("start");
        rx.recv().unwrap().expect("process result")
    }
}

fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0)
        * 4096
}

fn memory_report(b: &Bench) {
    let n: usize = std::env::var("LUA_ENGINE_IDLE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    // Warm the allocator and state pool so the delta is the processes' own footprint.
    for _ in 0..1000 {
        b.start("b:trivial", vec![]);
    }
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_bytes();
    let t0 = Instant::now();
    let pids: Vec<Pid> = (0..n).map(|_| b.start("b:idle", vec![])).collect();
    let spawn_time = t0.elapsed();
    // Let every process run its first step and block in `inbox:receive()`.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let idle = b.sys.handle.stats().processes;
        if idle >= n || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_bytes();
    println!(
        "mem: idle Lua process (blocked in inbox:receive), RSS per process ({n} live): {:>7} B",
        (after - before) / n
    );
    println!(
        "mem: spawning {n} idle Lua processes: {:.2} µs per process",
        spawn_time.as_secs_f64() * 1e6 / n as f64
    );
    let t1 = Instant::now();
    for p in &pids {
        let _ = b.sys.handle.terminate(p);
    }
    let target = b.exits.n.load(Ordering::SeqCst);
    let _ = target;
    while b.sys.handle.stats().processes > 1 {
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "mem: terminating {n} idle Lua processes: {:.2} µs per process",
        t1.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}

/// Spawn `iters` trivial processes from this (non-worker) thread and wait for all exits.
fn spawn_from_rust(b: &Bench, iters: u64) -> Duration {
    let base = b.exits.n.load(Ordering::SeqCst);
    let t0 = Instant::now();
    for _ in 0..iters {
        black_box(b.start("b:trivial", vec![]));
    }
    b.exits.wait_for(base + iters);
    t0.elapsed()
}

fn spawn_exit(c: &mut Criterion, b: &Bench) {
    let mut g = c.benchmark_group("spawn_exit");
    g.sample_size(20);
    g.bench_function("trivial_from_rust", |bn| {
        bn.iter_custom(|iters| spawn_from_rust(b, iters))
    });
    g.bench_function("trivial_from_lua", |bn| {
        bn.iter_custom(|iters| {
            let t0 = Instant::now();
            b.exec("b:spawner", vec![Value::Int(iters as i64)]);
            t0.elapsed()
        })
    });
    g.finish();
}

fn from_lua_seconds(v: Value, iters: u64) -> Duration {
    let secs = v.as_f64().unwrap_or(0.0);
    let _ = iters;
    Duration::from_secs_f64(secs.max(0.0))
}

/// Native (Rust) processes doing the same ping-pong: the runtime's own cost, for reference.
struct NativePing {
    n: u64,
    pong: Option<Pid>,
    left: u64,
}

impl Process for NativePing {
    fn init(
        &mut self,
        cx: &mut ProcessCx<'_>,
        _: &str,
        _: Vec<Value>,
    ) -> Result<(), wippy::rt::Error> {
        let pong = cx.handle().spawn(
            HOST,
            Box::new(NativePong),
            "main",
            vec![],
            SpawnOptions::default(),
        )?;
        self.pong = Some(pong);
        self.left = self.n;
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        ev: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), wippy::rt::Error> {
        let got = ev.iter().filter(|e| matches!(e, Event::Message(_))).count() as u64;
        ev.clear();
        let pong = self.pong.clone().unwrap();
        if self.left == self.n || got > 0 {
            if self.left == 0 {
                let _ = cx
                    .handle()
                    .send(Package::new(cx.pid().clone(), pong, "stop", vec![]));
                out.finish(Ok(Value::Nil));
                return Ok(());
            }
            self.left -= 1;
            cx.handle().send(Package::new(
                cx.pid().clone(),
                pong,
                "ping",
                vec![Value::Int(1)],
            ))?;
        }
        out.set_status(Status::Idle);
        Ok(())
    }
}

struct NativePong;

impl Process for NativePong {
    fn init(
        &mut self,
        _: &mut ProcessCx<'_>,
        _: &str,
        _: Vec<Value>,
    ) -> Result<(), wippy::rt::Error> {
        Ok(())
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        ev: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), wippy::rt::Error> {
        for e in ev.drain(..) {
            if let Event::Message(p) = e {
                if p.topic == "stop" {
                    out.finish(Ok(Value::Nil));
                    return Ok(());
                }
                let _ =
                    cx.handle()
                        .send(Package::new(cx.pid().clone(), p.from, "pong", p.payloads));
            }
        }
        out.set_status(Status::Idle);
        Ok(())
    }
}

fn pingpong(c: &mut Criterion, b: &Bench) {
    let mut g = c.benchmark_group("pingpong");
    g.sample_size(20);
    g.bench_function("native_rust_processes", |bn| {
        bn.iter_custom(|iters| {
            let t0 = Instant::now();
            let (_pid, w) = b
                .sys
                .handle
                .spawn_watched(
                    HOST,
                    Box::new(NativePing {
                        n: iters,
                        pong: None,
                        left: 0,
                    }),
                    "main",
                    vec![],
                    SpawnOptions::default(),
                )
                .unwrap();
            w.wait().unwrap();
            t0.elapsed()
        })
    });
    g.bench_function("listen", |bn| {
        bn.iter_custom(|iters| {
            from_lua_seconds(
                b.exec("b:ping_listen", vec![Value::Int(iters as i64)]),
                iters,
            )
        })
    });
    g.bench_function("inbox", |bn| {
        bn.iter_custom(|iters| {
            from_lua_seconds(
                b.exec("b:ping_inbox", vec![Value::Int(iters as i64)]),
                iters,
            )
        })
    });
    g.finish();
}

fn funcs_call(c: &mut Criterion, b: &Bench) {
    let mut g = c.benchmark_group("funcs_call");
    g.sample_size(20);
    g.bench_function("trivial", |bn| {
        bn.iter_custom(|iters| {
            from_lua_seconds(b.exec("b:caller", vec![Value::Int(iters as i64)]), iters)
        })
    });
    g.finish();
}

fn all(c: &mut Criterion) {
    let b = setup();
    spawn_exit(c, &b);
    pingpong(c, &b);
    funcs_call(c, &b);
}

criterion_group!(benches, all);

fn main() {
    if let Ok(spec) = std::env::var("LUA_ENGINE_RUN") {
        // Profiling aid: `LUA_ENGINE_RUN=ping_inbox:200000` runs one entry once
        // (`LUA_ENGINE_SAMPLE=1` also prints the peak number of live processes).
        let (id, n) = spec.split_once(':').unwrap_or((spec.as_str(), "100000"));
        let b = setup();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = std::env::var_os("LUA_ENGINE_SAMPLE").map(|_| {
            let h = b.sys.handle.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut max = 0;
                while !stop.load(Ordering::Relaxed) {
                    max = max.max(h.stats().processes);
                    std::thread::sleep(Duration::from_micros(200));
                }
                max
            })
        });
        let iters: u64 = n.parse().unwrap_or(100_000);
        if id == "from_rust" {
            // `LUA_ENGINE_RUN=from_rust:200000`: the `trivial_from_rust` loop once.
            let d = spawn_from_rust(&b, iters);
            println!("{id} {n}: {d:?}");
        } else {
            let t0 = Instant::now();
            let r = b.exec(&format!("b:{id}"), vec![Value::Int(iters as i64)]);
            println!("{id} {n}: {:?} (result {r:?})", t0.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(s) = sampler {
            println!("max live processes: {}", s.join().unwrap());
            for (i, w) in b.sys.handle.stats().per_worker.iter().enumerate() {
                println!(
                    "worker {i}: executed {} stolen {} parks {}",
                    w.executed, w.stolen, w.parks
                );
            }
        }
        return;
    }
    let b = setup();
    memory_report(&b);
    drop(b);
    if std::env::var_os("LUA_ENGINE_MEM_ONLY").is_some() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
