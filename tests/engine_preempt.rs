//! Preemption: a runaway Lua loop is preempted within its budget and the rest of the system
//! keeps serving; long computations still finish with correct results.

mod support;

use std::time::{Duration, Instant};

use support::App;
use wippy::rt::{Kind, Value};

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
  - name: runaway_in_wrap
    kind: process.lua
    source: file://p.lua
    method: runaway_in_wrap
  - name: pingpong
    kind: process.lua
    source: file://p.lua
    method: pingpong
  - name: heavy_sum
    kind: process.lua
    source: file://p.lua
    method: heavy_sum
  - name: channel_storm
    kind: process.lua
    source: file://p.lua
    method: channel_storm
  - name: stuck_in_sort
    kind: process.lua
    source: file://p.lua
    method: stuck_in_sort
"#;

const P: &str = r#"
local P = {}
function P.runaway() while true do end end
function P.runaway_in_wrap()
  local f = coroutine.wrap(function() local x = 0 while true do x = x + 1 end end)
  f()
end
-- 50 round trips with a child task through channels, then the result.
function P.pingpong()
  local a, b = channel.new(), channel.new()
  coroutine.spawn(function()
    while true do
      local v, ok = a:receive()
      if not ok then return end
      b:send(v + 1)
    end
  end)
  local v = 0
  for _ = 1, 50 do a:send(v); v = b:receive() end
  a:close()
  return v
end
function P.heavy_sum(n)
  local s = 0
  for i = 1, n do s = s + i end
  return s
end
function P.channel_storm(n)
  local ch = channel.new(8)
  local out = channel.new(1)
  coroutine.spawn(function()
    local s = 0
    for _ = 1, n do s = s + ch:receive() end
    out:send(s)
  end)
  for i = 1, n do ch:send(i) end
  return out:receive()
end
function P.stuck_in_sort()
  local t = {3, 1, 2}
  table.sort(t, function(a, b) while true do end end)
end
return P
"#;

fn app() -> App {
    App::yaml(INDEX, &[("p.lua", P)])
}

#[test]
fn runaway_processes_do_not_stall_the_workers() {
    let app = app();
    // More runaways than workers (2): without preemption no worker would be left.
    let runaways: Vec<_> = (0..3)
        .map(|_| app.spawn("app:runaway", vec![]).expect("spawn runaway"))
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..5 {
        assert_eq!(app.exec("app:pingpong", vec![]).unwrap(), Value::Int(50));
    }
    let wrapped = app.spawn("app:runaway_in_wrap", vec![]).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(app.exec("app:pingpong", vec![]).unwrap(), Value::Int(50));
    for pid in runaways.iter().chain([&wrapped]) {
        assert!(
            app.sys.handle.is_alive(pid),
            "runaway still running (preempted, not killed)"
        );
        app.sys.handle.terminate(pid).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while runaways.iter().any(|p| app.sys.handle.is_alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        runaways.iter().all(|p| !app.sys.handle.is_alive(p)),
        "terminate reaches a preempted runaway"
    );
}

#[test]
fn long_computations_survive_preemption() {
    let app = app();
    let n = 10_000_000i64;
    assert_eq!(
        app.exec("app:heavy_sum", vec![Value::Int(n)]).unwrap(),
        Value::Int(n * (n + 1) / 2)
    );
    // Long enough to be preempted mid-storm (the hook must never split a channel operation
    // from its marker yield).
    let m = 300_000i64;
    assert_eq!(
        app.exec("app:channel_storm", vec![Value::Int(m)]).unwrap(),
        Value::Int(m * (m + 1) / 2)
    );
}

#[test]
fn runaway_at_a_non_yieldable_point_hits_the_budget() {
    let app = app();
    let e = app.exec("app:stuck_in_sort", vec![]).unwrap_err();
    assert_eq!(e.kind(), &Kind::INTERNAL);
    assert!(e.message().contains("instruction budget exceeded"), "{e:?}");
}
