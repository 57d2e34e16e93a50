//! Spawn fast path: a process state's finished main thread is reset and reused as the next
//! process's main thread. Nothing of the previous process may show through: arguments,
//! results, the coroutine's status, a main task that failed or left coroutines behind.

mod support;

use support::App;
use wippy::rt::Value;

const INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
  - name: many
    kind: process.lua
    source: file://p.lua
    method: many
  - name: argc
    kind: process.lua
    source: file://p.lua
    method: argc
  - name: fail
    kind: process.lua
    source: file://p.lua
    method: fail
  - name: leave_tasks
    kind: process.lua
    source: file://p.lua
    method: leave_tasks
"#;

const P: &str = r##"
local P = {}
function P.many() return 1, 2, 3, 4, 5, 6, 7, 8 end
function P.argc(...)
  local co, main = coroutine.running()
  local first = ...
  return { n = select("#", ...), first = first, status = coroutine.status(co),
           main = main, yieldable = coroutine.isyieldable() }
end
function P.fail() local t = {1, 2, 3}; error("boom") end
function P.leave_tasks()
  coroutine.spawn(function() channel.new():receive() end)
  return "left"
end
return P
"##;

fn argc(app: &App, args: Vec<Value>) -> (i64, Value, String) {
    let r = app.exec("app:argc", args).expect("argc");
    let n = r.get("n").and_then(Value::as_i64).expect("n");
    let first = r.get("first").cloned().unwrap_or(Value::Nil);
    let status = r
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    assert_eq!(
        r.get("yieldable"),
        Some(&Value::Bool(true)),
        "main task is a coroutine"
    );
    (n, first, status)
}

#[test]
fn reused_main_threads_start_clean() {
    let app = App::yaml(INDEX, &[("p.lua", P)]);
    // Sequential runs: the factory's pool is LIFO, so these mostly share one state.
    for round in 0..20 {
        assert_eq!(app.exec("app:many", vec![]).unwrap(), Value::Int(1));
        assert_eq!(argc(&app, vec![]), (0, Value::Nil, "running".into()));
        assert_eq!(
            argc(&app, vec![Value::Int(round), Value::Int(2)]),
            (2, Value::Int(round), "running".into())
        );
        let e = app.exec("app:fail", vec![]).unwrap_err();
        assert!(e.message().contains("boom"), "{e:?}");
        assert_eq!(
            argc(&app, vec![Value::from("x")]),
            (1, Value::from("x"), "running".into())
        );
        assert_eq!(
            app.exec("app:leave_tasks", vec![]).unwrap(),
            Value::from("left")
        );
        assert_eq!(argc(&app, vec![]), (0, Value::Nil, "running".into()));
    }
}
