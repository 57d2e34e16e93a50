//! Messages handed to a blocked `inbox:receive()` are built when the receiver resumes
//! (decision 0127): the receive returns a complete Message wherever it blocked — directly in
//! the main function, inside a user coroutine, under `pcall`, in a `coroutine.spawn` task —
//! for plain and owned payloads.

mod support;

use support::App;
use wippy::rt::Value;

const INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
  - name: echo
    kind: process.lua
    source: file://echo.lua
    method: main
  - name: receiver
    kind: process.lua
    source: file://receiver.lua
    method: main
"#;

/// Waits for `go` messages and answers each with the payloads it names.
const ECHO: &str = r#"
local function main()
  local inbox = process.inbox()
  while true do
    local m = inbox:receive()
    local to, kind = m:payload():data(), m:topic()
    if kind == "stop" then return "stopped" end
    if kind == "scalar" then
      process.send(to, "scalar", 42)
    elseif kind == "string" then
      process.send(to, "string", "hello")
    elseif kind == "table" then
      process.send(to, "table", {a = {1, 2, 3}, b = "x"})
    elseif kind == "many" then
      process.send(to, "many", 1, 2, 3, 4, 5, 6)
    else
      process.send(to, "none")
    end
  end
end
return { main = main }
"#;

const RECEIVER: &str = r#"
local function check(c, what)
  if not c then error("check failed: " .. what, 2) end
end

local echo
local inbox

-- Ask the echo process for `kind`, then block on the inbox (the answer comes later).
local function ask(kind, recv)
  process.send(echo, kind, process.pid())
  local m = recv()
  check(m ~= nil and type(m) == "userdata", kind .. ": got a message")
  check(m:topic() == kind, kind .. ": topic " .. tostring(m:topic()))
  check(m:from() == echo, kind .. ": from")
  return m
end

local function verify(m, kind)
  if kind == "scalar" then
    check(m:payload():data() == 42, "scalar payload")
  elseif kind == "string" then
    check(m:payload():data() == "hello", "string payload")
  elseif kind == "table" then
    local t = m:payload():data()
    check(type(t) == "table" and t.b == "x" and t.a[3] == 3, "table payload")
  elseif kind == "many" then
    local ps = m:payload()
    check(#ps == 6 and ps[6]:data() == 6, "many payloads")
  else
    check(m:payload() == nil, "no payload")
  end
  check(tostring(m) == "process.Message{topic=" .. kind .. "}", "tostring")
end

local kinds = { "scalar", "string", "table", "many", "none" }

local function main()
  inbox = process.inbox()
  echo = process.spawn("app:echo", "app:processes")
  local direct = function() return inbox:receive() end
  for _, k in ipairs(kinds) do
    verify(ask(k, direct), k)
  end
  -- Inside a user coroutine.
  for _, k in ipairs(kinds) do
    local m = coroutine.wrap(function() return ask(k, direct) end)()
    verify(m, k)
  end
  -- Under pcall.
  for _, k in ipairs(kinds) do
    local ok, m = pcall(ask, k, direct)
    check(ok, "pcall receive: " .. tostring(m))
    verify(m, k)
  end
  -- In a spawned task, while main waits on a channel.
  local done = channel.new(1)
  coroutine.spawn(function()
    for _, k in ipairs(kinds) do
      verify(ask(k, direct), k)
    end
    done:send(true)
  end)
  check(done:receive() == true, "spawned task finished")
  process.send(echo, "stop", process.pid())
  return "ok"
end
return { main = main }
"#;

#[test]
fn blocked_receives_get_complete_messages() {
    let app = App::yaml(INDEX, &[("echo.lua", ECHO), ("receiver.lua", RECEIVER)]);
    match app.exec("app:receiver", vec![]) {
        Ok(v) => assert_eq!(v, Value::from("ok")),
        Err(e) => panic!("receiver failed: {e}"),
    }
}
