//! Time slices and the yield queue: a process woken by a message is served within about a
//! slice even when every worker is shared with runaway Lua loops (`docs/scheduler.md` §2,
//! decision 0085). The bounds are generous (the machine is shared and noisy): they catch a
//! scheduler that serves woken processes only every 61 slices, or a preemption that is lost,
//! not a slow machine. Performance figures come from `wippy bench latency`.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{App, HOST};
use wippy::rt::{Package, Pid, SpawnOptions, Value};

const INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
  - name: runaway
    kind: process.lua
    source: file://p.lua
    method: runaway
  - name: receiver
    kind: process.lua
    source: file://p.lua
    method: receiver
    modules: [time]
"#;

const P: &str = r#"
local P = {}
-- Never blocks, never calls anything that yields: only preemption takes its worker away.
function P.runaway()
  local x = 0
  while true do x = (x * 1103515245 + 12345) & 0x7fffffff end
end
-- Counts "m" messages and the largest delay between the send (payload: unix ns) and the
-- receive; "stop" returns {n=, max_ns=}.
function P.receiver()
  local inbox = process.inbox()
  local n, worst = 0, 0
  while true do
    local msg = inbox:receive()
    if msg:topic() == "stop" then return {n = n, max_ns = worst} end
    local d = time.now():unix_nano() - msg:payload():data()
    if d > worst then worst = d end
    n = n + 1
  end
end
return P
"#;

fn unix_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i64
}

fn start(app: &App, entry: &str) -> (Pid, wippy::rt::ExitWatch) {
    let factory = app.sys.factories.require(entry).expect("factory");
    let process = factory.create().expect("create");
    let opts = SpawnOptions {
        source: Some(entry.to_string()),
        ..SpawnOptions::default()
    };
    app.sys
        .handle
        .spawn_watched(HOST, process, factory.default_method(), vec![], opts)
        .expect("spawn")
}

/// Messages sent from outside the worker pool (as the reactor or a handler thread sends) to a
/// process whose every possible worker is running runaway loops.
#[test]
fn woken_process_is_served_between_time_slices_of_runaways() {
    let app = App::yaml(INDEX, &[("p.lua", P)]);
    let workers = app.sys.handle.workers();
    // Two runaways per worker: each worker always has another CPU-bound process queued, so
    // a woken process competes with both the running one and the queued ones.
    let runaways: Vec<_> = (0..2 * workers)
        .map(|_| start(&app, "app:runaway"))
        .collect();
    let (rx, watch) = start(&app, "app:receiver");
    std::thread::sleep(Duration::from_millis(50));

    let sends = 200;
    for _ in 0..sends {
        app.sys
            .handle
            .send(Package::new(
                Pid::zero(),
                rx.clone(),
                "m",
                vec![Value::Int(unix_ns())],
            ))
            .expect("send");
        std::thread::sleep(Duration::from_millis(2));
    }
    app.sys
        .handle
        .send(Package::new(Pid::zero(), rx.clone(), "stop", vec![]))
        .expect("send stop");
    let r = watch
        .wait_timeout(Duration::from_secs(10))
        .expect("receiver exits in time")
        .expect("receiver result");
    assert_eq!(r.get("n").and_then(Value::as_i64), Some(sends));
    let worst = r.get("max_ns").and_then(Value::as_i64).expect("max_ns");
    // A slice is 500 µs; the old scheduler (woken processes behind 61 slices of 10 ms) took
    // over 100 ms here. 100 ms leaves room for a loaded CI machine.
    assert!(
        worst < 100_000_000,
        "a message waited {} ms behind runaway loops",
        worst / 1_000_000
    );

    for (pid, w) in &runaways {
        assert!(
            app.sys.handle.is_alive(pid),
            "runaway preempted, not killed"
        );
        app.sys.handle.terminate(pid).expect("terminate");
        let deadline = Instant::now() + Duration::from_secs(5);
        assert!(
            w.wait_timeout(deadline - Instant::now()).is_some(),
            "terminate reaches a preempted runaway"
        );
    }
}
