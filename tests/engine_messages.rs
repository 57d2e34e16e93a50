//! `process.Message` objects: every payload shape survives delivery unchanged, payloads can be
//! read any number of times, after the sender has exited and across garbage collections
//! (plain messages keep scalars as Lua values, owned ones keep Rust values: both layouts).

mod support;

use support::App;
use wippy::rt::Value;

const INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
  - name: sender
    kind: process.lua
    source: file://sender.lua
    method: main
  - name: receiver
    kind: process.lua
    source: file://receiver.lua
    method: main
"#;

const SENDER: &str = r#"
local function main(to)
  local long = string.rep("x", 100)
  process.send(to, "none")
  process.send(to, "scalars", 42, 1.5, true, "short", nil)
  process.send(to, "one", 7)
  process.send(to, "float", 2.0)
  process.send(to, "long", long)
  process.send(to, "table", {a = {1, 2, 3}, b = "x"})
  process.send(to, "many", 1, 2, 3, 4, 5, 6)
  process.send(to, "mixed", 1, {k = "v"})
  process.send(to, "empty", "")
  process.send(to, string.rep("t", 60), "long topic")
  return "sent"
end
return { main = main }
"#;

const RECEIVER: &str = r#"
local function check(c, what)
  if not c then error("check failed: " .. what, 2) end
end

-- No collectgarbage in the sandbox: allocate enough to run several collection cycles.
local function churn()
  local keep
  for i = 1, 200000 do keep = {i, tostring(i)} end
  return keep
end

local function main()
  local inbox = process.inbox()
  -- The sender runs to completion (and exits) before we read anything.
  local r, err = process.exec("app:sender", "app:processes", process.pid())
  check(r == "sent", "sender result " .. tostring(r) .. " " .. tostring(err))
  local seen = {}
  local msgs = {}
  for i = 1, 10 do
    msgs[i] = inbox:receive()
  end
  churn()

  local sender_pid = msgs[1]:from()
  check(type(sender_pid) == "string" and sender_pid ~= "" and sender_pid ~= process.pid(), "from")

  local m = msgs[1]
  check(m:topic() == "none", "topic none")
  check(m:payload() == nil, "no payload")
  check(m:payload() == nil, "no payload twice")
  check(tostring(m) == "process.Message{topic=none}", "tostring " .. tostring(m))

  m = msgs[2]
  check(m:topic() == "scalars", "topic scalars")
  for pass = 1, 2 do
    local p = m:payload()
    check(type(p) == "table" and #p == 5, "five payloads")
    check(p[1]:data() == 42 and math.type(p[1]:data()) == "integer", "int")
    check(p[2]:data() == 1.5 and math.type(p[2]:data()) == "float", "float")
    check(p[3]:data() == true, "bool")
    check(p[4]:data() == "short", "short string")
    check(p[5]:data() == nil, "nil")
  end
  check(m:from() == sender_pid and m:topic() == "scalars", "repeatable accessors")

  m = msgs[3]
  check(m:payload():data() == 7 and m:payload():data() == 7, "one read twice")

  m = msgs[4]
  local f = m:payload():data()
  check(f == 2.0 and math.type(f) == "float", "integral float stays float")

  m = msgs[5]
  check(m:payload():data() == string.rep("x", 100), "long string")
  check(m:payload():data() == string.rep("x", 100), "long string twice")

  m = msgs[6]
  for pass = 1, 2 do
    local t = m:payload():data()
    check(type(t) == "table" and t.b == "x" and #t.a == 3 and t.a[3] == 3, "table")
    t.b = "changed" -- each read is a fresh copy
  end

  m = msgs[7]
  local p = m:payload()
  check(#p == 6, "six payloads")
  for i = 1, 6 do check(p[i]:data() == i, "many " .. i) end

  m = msgs[8]
  p = m:payload()
  check(#p == 2 and p[1]:data() == 1 and p[2]:data().k == "v", "mixed")

  m = msgs[9]
  check(m:payload():data() == "", "empty string")

  m = msgs[10]
  check(m:topic() == string.rep("t", 60), "long topic")
  check(m:payload():data() == "long topic", "long topic payload")

  -- Methods check their receiver.
  local ok, e = pcall(m.topic, {})
  check(not ok and tostring(e):find("process.Message expected", 1, true), "bad self topic")
  ok, e = pcall(m.payload, inbox)
  check(not ok and tostring(e):find("process.Message expected", 1, true), "bad self payload")
  check(getmetatable(m) == false, "metatable is protected")

  -- Collected messages (owned ones run their finalizer) leave the process healthy.
  msgs = nil
  churn()
  return "ok"
end
return { main = main }
"#;

#[test]
fn message_payloads_survive_delivery_and_repeated_reads() {
    let app = App::yaml(INDEX, &[("sender.lua", SENDER), ("receiver.lua", RECEIVER)]);
    match app.exec("app:receiver", vec![]) {
        Ok(v) => assert_eq!(v, Value::str("ok")),
        Err(e) => panic!("receiver failed: {e}"),
    }
}
