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

const PAYLOAD_SENDER: &str = r#"
local function main(to)
  process.send(to, "scalars", 42, 2.0, true, "short", nil)
  process.send(to, "long", string.rep("y", 100))
  process.send(to, "table", {k = "v"})
  process.send(to, "err", errors.new({message = "boom", kind = errors.TIMEOUT}))
  return "sent"
end
return { main = main }
"#;

/// Payload objects built from messages (scalar payloads are finalizer-free objects holding a
/// copy of the Lua value; others own Rust data): every method on both kinds, fresh objects
/// per `payload()` call, and payloads that outlive their message across collections.
const PAYLOAD_RECEIVER: &str = r#"
local function check(c, what)
  if not c then error("check failed: " .. what, 2) end
end

local function churn()
  local keep
  for i = 1, 200000 do keep = {i, tostring(i)} end
  return keep
end

local function main()
  local inbox = process.inbox()
  local r = process.exec("app:payload_sender", "app:processes", process.pid())
  check(r == "sent", "sender")
  local scalars = inbox:receive()
  local long = inbox:receive()
  local tbl = inbox:receive()
  local err = inbox:receive()

  -- Each call builds new objects (no identity between calls).
  local p1, p2 = scalars:payload(), scalars:payload()
  check(p1 ~= p2 and p1[1] ~= p2[1], "fresh objects per call")
  check(type(p1[1]) == "userdata", "payload is userdata")
  check(getmetatable(p1[1]) == false, "payload metatable is protected")

  -- Keep only the payload objects; drop the messages and collect.
  local ps = p1
  local lp, tp, ep = long:payload(), tbl:payload(), err:payload()
  scalars, long, tbl, err, p1, p2 = nil, nil, nil, nil, nil, nil
  churn()

  for pass = 1, 2 do
    check(ps[1]:get_format() == "lua/any", "format")
    check(tostring(ps[1]) == "payload{format=lua/any}", "tostring " .. tostring(ps[1]))
    check(ps[1]:data() == 42 and math.type(ps[1]:data()) == "integer", "int")
    check(ps[1]:unmarshal() == 42, "unmarshal")
    check(ps[2]:data() == 2.0 and math.type(ps[2]:data()) == "float", "float")
    check(ps[3]:data() == true, "bool")
    check(ps[4]:data() == "short", "string")
    check(ps[5]:data() == nil, "nil")
  end

  -- transcode on scalar payloads: encodings are payloads too, and decode back exactly.
  local j = ps[1]:transcode(payload.format.JSON)
  check(j:get_format() == "json/plain" and tostring(j) == "payload{format=json/plain}", "json format")
  check(j:data() == 42 and math.type(j:data()) == "integer", "json decodes")
  check(j:transcode(payload.format.STRING):data() == "42", "json as text")
  check(ps[4]:transcode(payload.format.JSON):data() == "short", "string json")
  check(ps[4]:transcode(payload.format.JSON):transcode(payload.format.STRING):data() == "short", "json string as text")
  check(ps[2]:transcode(payload.format.STRING):data() == "2", "float text")
  check(ps[3]:transcode(payload.format.MSGPACK):data() == true, "msgpack bool")
  check(ps[4]:transcode(payload.format.BYTES):data() == "short", "bytes")
  check(ps[4]:transcode(payload.format.GOLANG):get_format() == "golang/any", "golang")
  check(ps[4]:transcode(payload.format.GOLANG):data() == "short", "golang data")
  local bad, e = ps[1]:transcode("nope/format")
  check(bad == nil and e:kind() == errors.INVALID, "unknown format")
  bad, e = ps[1]:transcode(5)
  check(bad == nil and e:kind() == errors.INVALID, "non-string format")
  bad, e = ps[1]:transcode(payload.format.ERROR)
  check(bad == nil and e:kind() == errors.INVALID, "scalar to error")
  bad, e = payload.new("{"):transcode(payload.format.STRING):transcode(payload.format.JSON):data()
  check(bad == "{", "text stays text")
  bad, e = payload.new("{"):transcode(payload.format.JSON):transcode(payload.format.STRING)
    :transcode(payload.format.LUA)
  check(bad ~= nil and bad:data() == "{", "string through json text")

  -- Owned payloads (long string, table, error).
  check(lp:data() == string.rep("y", 100) and lp:get_format() == "lua/any", "long")
  check(#lp:transcode(payload.format.JSON):data() == 100, "long json")
  local t = tp:data()
  check(type(t) == "table" and t.k == "v", "table")
  t.k = "changed"
  check(tp:data().k == "v", "table read is a copy")
  check(tp:transcode(payload.format.JSON):transcode(payload.format.STRING):data() == '{"k":"v"}', "table json")
  check(ep:get_format() == "golang/error", "error format")
  local ev = ep:data()
  check(ev:kind() == errors.TIMEOUT and ev:message() == "boom", "error value")
  check(tostring(ep) == "payload{format=golang/error}", "error tostring")

  -- Methods check their receiver.
  local ok, msg = pcall(ps[1].data, {})
  check(not ok and tostring(msg):find("payload expected", 1, true), "bad self data: " .. tostring(msg))
  ok, msg = pcall(ps[1].get_format, inbox)
  check(not ok and tostring(msg):find("payload expected", 1, true), "bad self get_format")

  -- payload.new with scalars and tables, and payloads cannot be sent as such.
  local n = payload.new(7)
  check(n:data() == 7 and n:get_format() == "lua/any", "new scalar")
  check(payload.new(nil):data() == nil, "new nil")
  check(payload.new({1, 2}):data()[2] == 2, "new table")
  ps, lp, tp, ep, j, n = nil, nil, nil, nil, nil, nil
  churn()
  return "ok"
end
return { main = main }
"#;

const PAYLOAD_INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
  - name: payload_sender
    kind: process.lua
    source: file://payload_sender.lua
    method: main
  - name: payload_receiver
    kind: process.lua
    source: file://payload_receiver.lua
    method: main
"#;

#[test]
fn payload_objects_outlive_messages_and_keep_every_method() {
    let app = App::yaml(
        PAYLOAD_INDEX,
        &[
            ("payload_sender.lua", PAYLOAD_SENDER),
            ("payload_receiver.lua", PAYLOAD_RECEIVER),
        ],
    );
    match app.exec("app:payload_receiver", vec![]) {
        Ok(v) => assert_eq!(v, Value::str("ok")),
        Err(e) => panic!("receiver failed: {e}"),
    }
}
