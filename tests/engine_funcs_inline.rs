//! `funcs.call` fast path (pool.rs, "Inline first step"; decision 0100): calls that end in
//! their first step resume the caller at once, calls that block continue as processes under
//! the same PID. The exit cleanup of inline executions (names, monitors) is tested with the
//! full system in `system_funcs_inline.rs`.

mod support;

use support::App;
use wippy::rt::Value;

const INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
  - name: terminal
    kind: terminal.host
  - name: echo
    kind: process.lua
    source: file://echo.lua
    method: main
  - name: caller
    kind: process.lua
    source: file://caller.lua
    method: main
    modules: [funcs, time]
  - name: noop
    kind: function.lua
    source: file://fns.lua
    method: noop
  - name: counter
    kind: function.lua
    source: file://fns.lua
    method: counter
    pool: {type: inline}
  - name: ping
    kind: function.lua
    source: file://fns.lua
    method: ping
  - name: sleepy
    kind: function.lua
    source: file://fns.lua
    method: sleepy
    modules: [time]
  - name: chain
    kind: function.lua
    source: file://fns.lua
    method: chain
    modules: [funcs]
  - name: boom
    kind: function.lua
    source: file://fns.lua
    method: boom
  - name: my_pid
    kind: function.lua
    source: file://fns.lua
    method: my_pid
  - name: burst
    kind: function.lua
    source: file://fns.lua
    method: burst
  - name: sink
    kind: process.lua
    source: file://sink.lua
    method: main
"#;

const FNS: &str = r#"
local M = {}
local calls = 0
function M.noop(x) return x end
function M.counter() calls = calls + 1; return calls end
-- Hands its PID out, then blocks for the answer: the PID must be routable from the start.
function M.ping(echo, i)
  local inbox = process.inbox()
  process.send(echo, "ping", i)
  return inbox:receive():payload():data()
end
function M.sleepy(v) time.sleep("2ms"); return v end
function M.chain(n) if n == 0 then return 1 end return 2 * funcs.call("app:chain", n - 1) end
function M.boom() error("kaboom") end
function M.my_pid() return process.pid() end
-- Sends a run of messages in its inline step, yields (so it continues as a process), sends more.
function M.burst(sink, n)
  for i = 1, n do process.send(sink, "n", i) end
  coroutine.yield()
  for i = n + 1, 2 * n do process.send(sink, "n", i) end
  return true
end
return M
"#;

const ECHO: &str = r#"
return { main = function()
  local inbox = process.inbox()
  while true do
    local m = inbox:receive()
    if m:topic() == "stop" then return 0 end
    process.send(m:from(), "pong", m:payload():data())
  end
end }
"#;

const SINK: &str = r#"
return { main = function(parent, total)
  local inbox = process.inbox()
  for i = 1, total do
    local v = inbox:receive():payload():data()
    if v ~= i then process.send(parent, "order", "message " .. i .. " was " .. tostring(v)); return end
  end
  process.send(parent, "order", "ok")
end }
"#;

const CALLER: &str = r#"
local M = {}
function M.main(case, n)
  if case == "noop" then
    local sum = 0
    for i = 1, n do sum = sum + funcs.call("app:noop", i) end
    return sum
  elseif case == "counter" then
    local last
    for _ = 1, n do last = funcs.call("app:counter") end
    return last
  elseif case == "ping" then
    local echo = process.spawn("app:echo", "app:processes")
    local sum = 0
    for i = 1, n do
      local v, err = funcs.call("app:ping", echo, i)
      assert(v, tostring(err))
      sum = sum + v
    end
    process.send(echo, "stop")
    return sum
  elseif case == "sleepy" then
    local sum = 0
    for i = 1, n do sum = sum + funcs.call("app:sleepy", i) end
    return sum
  elseif case == "chain" then
    return funcs.call("app:chain", n)
  elseif case == "boom" then
    local v, err = funcs.call("app:boom")
    assert(v == nil)
    return tostring(err)
  elseif case == "burst" then
    local inbox = process.inbox()
    local sink = process.spawn("app:sink", "app:processes", process.pid(), 2 * n)
    local done = false
    coroutine.spawn(function()
      assert(funcs.call("app:burst", sink, n))
      done = true
    end)
    -- Keep the step that ran the inline step busy: the call continues elsewhere meanwhile.
    local x = 0
    for i = 1, 300000 do x = x + i end
    local r = inbox:receive():payload():data()
    while not done do time.sleep("1ms") end
    return r
  elseif case == "pids" then
    local seen = {}
    for _ = 1, n do
      local p = funcs.call("app:my_pid")
      assert(not seen[p], "a PID per execution")
      seen[p] = true
      assert(string.find(p, "app:my_pid#lua.", 1, true), p)
    end
    return n
  end
end
return M
"#;

fn app() -> App {
    App::yaml(
        INDEX,
        &[
            ("fns.lua", FNS),
            ("echo.lua", ECHO),
            ("caller.lua", CALLER),
            ("sink.lua", SINK),
        ],
    )
}

fn run(app: &App, case: &str, n: i64) -> Value {
    app.exec("app:caller", vec![Value::from(case), Value::Int(n)])
        .unwrap_or_else(|e| panic!("{case}: {e} {e:?}"))
}

#[test]
fn calls_that_end_at_once() {
    let app = app();
    assert_eq!(run(&app, "noop", 500), Value::Int(500 * 501 / 2));
    // Module-level state persists in the (single) worker across inline calls.
    assert_eq!(run(&app, "counter", 300), Value::Int(300));
    assert_eq!(run(&app, "pids", 50), Value::Int(50));
}

#[test]
fn calls_that_block_after_handing_out_their_pid() {
    let app = app();
    // Many rounds: a reply racing the end of the first step must never be lost.
    assert_eq!(run(&app, "ping", 400), Value::Int(400 * 401 / 2));
}

#[test]
fn messages_of_the_inline_step_are_not_overtaken() {
    let app = app();
    for _ in 0..5 {
        assert_eq!(run(&app, "burst", 300), Value::from("ok"));
    }
}

#[test]
fn deferred_operations_and_nesting() {
    let app = app();
    assert_eq!(run(&app, "sleepy", 20), Value::Int(210));
    assert_eq!(run(&app, "chain", 10), Value::Int(1024));
}

#[test]
fn errors() {
    let app = app();
    let msg = run(&app, "boom", 1);
    assert!(
        msg.as_str().is_some_and(|s| s.contains("kaboom")),
        "{msg:?}"
    );
}
