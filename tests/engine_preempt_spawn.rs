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
"#;

const P: &str = r#"
local P = {}
function P.spawn_forever()
  while true do process.spawn("app:child", "app:processes") end
end
function P.child() end
function P.probe(x) return x + 1 end
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
