//! Preemption of a Lua loop that keeps calling `process.spawn`: the child's `init` runs Lua on
//! the spawner's OS thread, so the engine switches the running Lua thread away and back on
//! every call; the time-slice hook must survive those switches (regression: re-arming it on
//! every switch restarted its instruction countdown, so such a loop was never preempted and
//! kept its worker forever).

mod support;

use std::time::{Duration, Instant};

use support::App;
use wippy::rt::Value;

const INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
  - name: spawn_forever
    kind: process.lua
    source: file://p.lua
    method: spawn_forever
  - name: child
    kind: process.lua
    source: file://p.lua
    method: child
  - name: probe
    kind: process.lua
    source: file://p.lua
    method: probe
  - name: sort_with_resumes
    kind: process.lua
    source: file://p.lua
    method: sort_with_resumes
"#;

const P: &str = r#"
local P = {}
function P.spawn_forever()
  while true do process.spawn("app:child", "app:processes") end
end
function P.child() end
function P.probe(x) return x + 1 end
-- table.sort's comparator is a non-yieldable context; each comparison resumes a coroutine,
-- so the thread running the comparator regains control ~300 000 times, long after the step
-- was armed (it runs for tens of milliseconds). About 3M instructions in all: well inside
-- the non-yieldable budget (10 000 periods of 1 000 instructions).
function P.sort_with_resumes(n)
  local tick = coroutine.wrap(function() while true do coroutine.yield() end end)
  local t = {}
  for i = 1, n do t[i] = (i * 7919) % n end
  table.sort(t, function(a, b) tick() return a < b end)
  for i = 2, n do if t[i - 1] > t[i] then return "unsorted" end end
  return #t
end
return P
"#;

#[test]
fn a_spawn_loop_is_preempted() {
    let app = App::yaml(INDEX, &[("p.lua", P)]);
    // More spawn loops than workers (2): unless they are preempted no worker is left for the
    // probe (the harness's exec gives up after 20 s).
    let loops: Vec<_> = (0..3)
        .map(|_| app.spawn("app:spawn_forever", vec![]).expect("spawn loop"))
        .collect();
    std::thread::sleep(Duration::from_millis(30));
    for i in 0..3 {
        assert_eq!(
            app.exec("app:probe", vec![Value::Int(i)]).unwrap(),
            Value::Int(i + 1)
        );
    }
    for pid in &loops {
        assert!(app.sys.handle.is_alive(pid), "preempted, not killed");
        app.sys.handle.terminate(pid).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while loops.iter().any(|p| app.sys.handle.is_alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(loops.iter().all(|p| !app.sys.handle.is_alive(p)));
}

/// A thread that regains control in an armed step gets a hook firing at once
/// (`preempt::restore_running`); where it cannot yield, that firing is not one of the
/// non-yieldable budget's periods (otherwise 10 000 switches inside one C call would raise
/// "instruction budget exceeded" however few instructions ran).
#[test]
fn switch_backs_inside_a_non_yieldable_call_are_not_budget_periods() {
    let app = App::yaml(INDEX, &[("p.lua", P)]);
    assert_eq!(
        app.exec("app:sort_with_resumes", vec![Value::Int(20_000)])
            .unwrap(),
        Value::Int(20_000)
    );
}
