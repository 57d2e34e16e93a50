//! `process.Message` and Payload objects keep their data as bytes in one block (decision
//! 0115): every scalar comes back exactly at the layout boundaries (string lengths around the
//! inline limit, integer and float extremes, NaN, -0.0, embedded zero bytes, long topics),
//! the sender text comes back right for many senders (the sender-text cache is direct-mapped
//! and must verify what it returns), and payloads outlive their messages across collections.

mod support;

use support::App;
use wippy::rt::Value;

const INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
  - name: shapes
    kind: process.lua
    source: file://shapes.lua
    method: main
  - name: receiver
    kind: process.lua
    source: file://receiver.lua
    method: main
  - name: sender
    kind: process.lua
    source: file://sender.lua
    method: main
  - name: many
    kind: process.lua
    source: file://many.lua
    method: main
"#;

/// Sends every shape to `to` in one message per case, then the count.
const SHAPES: &str = r#"
local function main(to)
  local s40, s41 = string.rep("a", 40), string.rep("b", 41)
  local cases = {
    {"s40", s40}, {"s41", s41}, {"s39z", string.rep("\0", 39)},
    {"zeros", "a\0b\0"}, {"empty", ""},
    {"maxint", math.maxinteger}, {"minint", math.mininteger}, {"zero", 0},
    {"negzero", -0.0}, {"huge", math.huge}, {"nhuge", -math.huge}, {"nan", 0/0},
    {"tiny", 5e-324}, {"false", false}, {"true", true},
    {"four40", s40, s40, s40, s40}, {"five", 1, 2, 3, 4, 5},
    {"mixed", 1, s41, false},
    {string.rep("T", 3000), "long topic"}, {"t\0z", "zero in topic"},
  }
  for _, c in ipairs(cases) do
    process.send(to, c[1], table.unpack(c, 2, #c))
  end
  return #cases
end
return { main = main }
"#;

const RECEIVER: &str = r#"
local function check(c, what)
  if not c then error("check failed: " .. what, 2) end
end

local function churn()
  local keep
  for i = 1, 200000 do keep = {i, tostring(i)} end
  return keep
end

local function same(a, b)
  if a ~= a then return b ~= b end -- NaN
  if math.type(a) ~= math.type(b) then return false end
  if a == 0 and b == 0 and math.type(a) == "float" then return 1/a == 1/b end -- -0.0
  return a == b
end

local function main()
  local inbox = process.inbox()
  local n = process.exec("app:shapes", "app:processes", process.pid())
  local s40, s41 = string.rep("a", 40), string.rep("b", 41)
  local want = {
    s40 = {s40}, s41 = {s41}, s39z = {string.rep("\0", 39)}, zeros = {"a\0b\0"}, empty = {""},
    maxint = {math.maxinteger}, minint = {math.mininteger}, zero = {0}, negzero = {-0.0},
    huge = {math.huge}, nhuge = {-math.huge}, nan = {0/0}, tiny = {5e-324},
    ["false"] = {false}, ["true"] = {true},
    four40 = {s40, s40, s40, s40}, five = {1, 2, 3, 4, 5}, mixed = {1, s41, false},
    [string.rep("T", 3000)] = {"long topic"}, ["t\0z"] = {"zero in topic"},
  }
  local kept = {}
  for i = 1, n do
    local m = inbox:receive()
    local w = want[m:topic()]
    check(w ~= nil, "unexpected topic " .. #m:topic())
    check(tostring(m) == "process.Message{topic=" .. m:topic() .. "}", "tostring")
    for pass = 1, 2 do
      local p = m:payload()
      if #w > 1 then
        check(type(p) == "table" and #p == #w, "payload count " .. m:topic())
      else
        p = {p}
      end
      for j = 1, #w do
        local v = p[j]:data()
        check(same(v, w[j]), "value " .. j .. " of " .. #m:topic() .. ": " .. tostring(v))
        check(p[j]:get_format() == "lua/any", "format")
      end
    end
    kept[#kept + 1] = {m:payload(), w}
  end
  -- The payload objects outlive their messages (collected meanwhile).
  churn()
  for _, k in ipairs(kept) do
    local p, w = k[1], k[2]
    if #w == 1 then p = {p} end
    for j = 1, #w do check(same(p[j]:data(), w[j]), "kept value") end
  end
  return "ok"
end
return { main = main }
"#;

/// Each sender sends its own PID to `to`.
const SENDER: &str = r#"
local function main(to)
  process.send(to, "me", process.pid())
end
return { main = main }
"#;

/// Spawns many senders (more than the 64-slot sender cache) twice over and checks that every
/// message's `from()` is its sender's PID.
const MANY: &str = r#"
local function main()
  local inbox = process.inbox()
  local me = process.pid()
  local total = 0
  for round = 1, 2 do
    for i = 1, 150 do
      process.spawn("app:sender", "app:processes", me)
    end
    for i = 1, 150 do
      local m = inbox:receive()
      local from = m:from()
      if from ~= m:payload():data() then
        error("from " .. from .. " ~= sender " .. tostring(m:payload():data()))
      end
      if m:from() ~= from then error("from not repeatable") end
      total = total + 1
    end
  end
  return total
end
return { main = main }
"#;

fn app() -> App {
    App::yaml(
        INDEX,
        &[
            ("shapes.lua", SHAPES),
            ("receiver.lua", RECEIVER),
            ("sender.lua", SENDER),
            ("many.lua", MANY),
        ],
    )
}

#[test]
fn scalars_round_trip_exactly_at_layout_boundaries() {
    match app().exec("app:receiver", vec![]) {
        Ok(v) => assert_eq!(v, Value::str("ok")),
        Err(e) => panic!("receiver failed: {e}"),
    }
}

#[test]
fn sender_text_is_right_for_many_senders() {
    match app().exec("app:many", vec![]) {
        Ok(v) => assert_eq!(v, Value::Int(300)),
        Err(e) => panic!("many failed: {e}"),
    }
}
