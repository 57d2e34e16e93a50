//! Channel operations where the task cannot yield (inside a C function such as `table.sort`'s
//! comparator): an operation that completes at once returns its results; one that would have
//! to wait raises Lua's "attempt to yield across a C-call boundary" and leaves nothing behind
//! — no waiter stays in a channel's queue to take (or supply) a later value.

mod support;

use support::App;
use wippy::rt::Value;

const INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
  - name: main
    kind: process.lua
    source: file://p.lua
    method: main
"#;

const P: &str = r#"
local function sort_with(f)
  return pcall(table.sort, {3, 1, 2}, function(a, b) f() return a < b end)
end

local function main()
  local ch = channel.new()
  local out = {}

  -- Would wait: raises, registers nothing.
  local ok, err = sort_with(function() ch:receive() end)
  out.recv = tostring(ok) .. " " .. tostring(err):match("attempt to yield across a C%-call boundary")
  ok, err = sort_with(function() ch:send("stale") end)
  out.send = tostring(ok) .. " " .. tostring(err):match("attempt to yield across a C%-call boundary")
  ok, err = sort_with(function() channel.select{ch:case_receive()} end)
  out.select = tostring(ok) .. " " .. tostring(err):match("attempt to yield across a C%-call boundary")

  -- Completes at once: works inside the comparator.
  local buf = channel.new(16)
  for i = 1, 16 do buf:send(i) end
  local got = 0
  ok = sort_with(function() local v = buf:receive() got = got + v end)
  out.buffered = tostring(ok) .. " " .. tostring(got > 0)
  ok = sort_with(function() channel.select{buf:case_receive()} end)
  out.select_ready = tostring(ok)
  ok = sort_with(function() buf:send(0) end)
  out.buffered_send = tostring(ok)

  -- The channel works normally afterwards: a task's value reaches this receive (a stale
  -- sender would supply "stale", a stale receiver would swallow the value).
  coroutine.spawn(function() ch:send("fresh") end)
  local other = channel.new(1)
  other:send("mine")
  out.other = other:receive()
  out.ch = ch:receive()
  return out
end
return { main = main }
"#;

#[test]
fn channel_ops_in_a_non_yieldable_call_leave_no_waiter_behind() {
    let app = App::yaml(INDEX, &[("p.lua", P)]);
    let v = app.exec("app:main", vec![]).unwrap();
    let get = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let boundary = "false attempt to yield across a C-call boundary";
    assert_eq!(get("recv").as_deref(), Some(boundary), "{v:?}");
    assert_eq!(get("send").as_deref(), Some(boundary), "{v:?}");
    assert_eq!(get("select").as_deref(), Some(boundary), "{v:?}");
    assert_eq!(get("buffered").as_deref(), Some("true true"), "{v:?}");
    assert_eq!(get("select_ready").as_deref(), Some("true"), "{v:?}");
    assert_eq!(get("buffered_send").as_deref(), Some("true"), "{v:?}");
    assert_eq!(get("other").as_deref(), Some("mine"), "{v:?}");
    assert_eq!(get("ch").as_deref(), Some("fresh"), "{v:?}");
}
