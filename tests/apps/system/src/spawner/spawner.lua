-- The immutable spawner builder and context propagation (ctx module).
local M = {}
local HOST = "system:processes"
local PUPPET = "system:puppet"

local function ask(pid, topic, data)
  local reply = process.listen(topic == "ctx" and "ctx" or topic)
  process.send(pid, topic, data)
  local v = t.recv(reply, "5s", topic)
  process.unlisten(reply)
  return v
end

local function ready_pid(pid)
  return pid
end

function M.context_reaches_the_child()
  local sp = process.with_context({tenant = "acme", level = 3})
  local pid = assert(sp:spawn(PUPPET, HOST, {}))
  t.eq(ask(pid, "ctx", "tenant"), "acme")
  t.eq(ask(pid, "ctx", "level"), 3)
  process.send(pid, "exit")
end

function M.builders_are_immutable()
  local base = process.with_context({a = 1})
  local more = base:with_context({b = 2})
  t.ok(base ~= more, "a new spawner")
  local p1 = assert(base:spawn(PUPPET, HOST, {}))
  local p2 = assert(more:spawn(PUPPET, HOST, {}))
  t.eq(ask(p1, "ctx", "a"), 1)
  t.is_nil(ask(p1, "ctx", "b"), "base does not see b")
  t.eq(ask(p2, "ctx", "a"), 1)
  t.eq(ask(p2, "ctx", "b"), 2)
  process.send(p1, "exit")
  process.send(p2, "exit")
end

function M.messages_and_variants()
  local events = process.events()
  local sp = process.with_options({note = "x"}):with_message("exit", 7)
  local pid = assert(sp:spawn_monitored(PUPPET, HOST, {}))
  local ev = t.recv(events, "5s", "exit")
  t.eq(ev.from, pid)
  t.eq(ev.result.value, 7)
  assert(process.set_options({trap_links = true}))
  pid = assert(sp:with_message("fail", "linked"):spawn_linked(PUPPET, HOST, {}))
  -- The first message ("exit") wins: normal exit, no LINK_DOWN.
  t.quiet(events, "100ms")
  pid = assert(process.with_context({}):with_message("fail", "bad"):spawn_linked_monitored(PUPPET, HOST, {}))
  local kinds = {}
  for _ = 1, 2 do kinds[t.recv(events, "5s").kind] = true end
  t.ok(kinds[process.event.EXIT] and kinds[process.event.LINK_DOWN], "both events")
  process.set_options({trap_links = false})
end

function M.spawn_errors()
  local sp = process.with_context({})
  local pid, err = sp:spawn("system:nope", HOST)
  t.is_nil(pid)
  t.err(err, errors.NOT_FOUND, "factory not found")
  pid, err = process.spawn_linked("system:puppet")
  t.err(err, errors.INVALID, "spawn_linked requires at least id and host arguments")
  local ok = pcall(function() return sp:with_actor(nil) end)
  t.eq(ok, false, "nil actor raises")
  ok = pcall(function() return sp:with_message("@pid/inbox", 1) end)
  t.eq(ok, false, "@ topics raise")
  ok = pcall(process.with_context, "x")
  t.eq(ok, false, "non-table raises")
end

-- Context travels down spawns and function calls, read-only.
function M.context_propagates_through_calls()
  local sp = process.with_context({trace = "t-42"})
  local pid = assert(sp:spawn(PUPPET, HOST, {}))
  local reply = process.listen("called")
  process.send(pid, "call", "spawner:read_ctx")
  t.eq(t.recv(reply, "5s", "call"), "t-42")
  process.send(pid, "exit")
end

-- Called by the puppet through funcs.call: reads the propagated context.
function M.read_ctx_impl()
  return ctx.get("trace")
end

local _ = ready_pid
-- Argument errors name Lua's types ("number" for integers and floats, as luaL_typeerror).
function M.argument_errors_name_lua_types()
  local ok, e = pcall(process.with_context, 42)
  t.eq(ok, false)
  t.ok(tostring(e):match("bad argument #1 to 'with_context' %(table expected, got number%)$") ~= nil, tostring(e))
  ok, e = pcall(process.with_context, 4.5)
  t.ok(tostring(e):match("%(table expected, got number%)$") ~= nil, tostring(e))
  ok, e = pcall(process.with_context)
  t.ok(tostring(e):match("%(table expected, got no value%)$") ~= nil, tostring(e))
end

return M
