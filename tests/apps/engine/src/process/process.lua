-- The process global (spec lua-api §3.7, runtime-internals §11.4).
local M = {}
local HOST = "engine:processes"

function M.identity()
  local pid = process.pid()
  t.eq(type(pid), "string")
  t.ok(pid:match("^{.+|0x%x+}$") ~= nil, "pid format " .. pid)
  t.eq(process.id(), "process:identity", "process.id() is the entry id")
  t.ok(process.inbox() == process.inbox(), "inbox identity")
  t.ok(process.events() == process.events(), "events identity")
  t.ok(process.listen("x") == process.listen("x"), "listen identity")
  t.eq(type(process.inbox()), "userdata")
end

function M.send_to_self_inbox()
  t.eq(process.send(process.pid(), "greet", {n = 1}, "two"), true, "send result")
  local msg = process.inbox():receive()
  t.eq(msg:topic(), "greet")
  t.eq(msg:from(), process.pid(), "from")
  local p = msg:payload()
  t.eq(type(p), "table", "two payloads → array")
  t.eq(p[1]:data().n, 1)
  t.eq(p[2]:data(), "two")
  t.contains(tostring(msg), "process.Message{topic=greet}")
end

function M.single_payload_message()
  process.send(process.pid(), "one", 42)
  local msg = process.inbox():receive()
  t.eq(msg:payload():data(), 42)
  process.send(process.pid(), "none")
  msg = process.inbox():receive()
  t.is_nil(msg:payload(), "no payload")
end

function M.listen_raw_values()
  local ch = process.listen("vals")
  process.send(process.pid(), "vals", "a")
  process.send(process.pid(), "vals", 1, 2)
  process.send(process.pid(), "vals")
  t.eq(ch:receive(), "a")
  local two = ch:receive()
  t.list(two, {1, 2}, "several payloads → array")
  t.is_nil(ch:receive(), "none → nil")
  local mch = process.listen("msgs", {message = true})
  process.send(process.pid(), "msgs", "m")
  t.eq(mch:receive():payload():data(), "m", "message mode")
end

function M.listen_errors()
  local ch, err = process.listen("")
  t.is_nil(ch); t.err(err, errors.INVALID, "topic cannot be empty")
  ch, err = process.listen("@pid/inbox")
  t.is_nil(ch); t.err(err, errors.INVALID, "cannot listen to @ topics")
end

function M.unlisten()
  local ch = process.listen("u")
  t.eq(process.unlisten(ch), true)
  local v, ok = ch:receive()
  t.eq(ok, false, "unlisten closes the channel")
  local r, err = process.unlisten(channel.new())
  t.eq(r, false); t.ok(err ~= nil, "error for a non-subscription channel")
  -- messages for the topic now fall back to the inbox
  process.send(process.pid(), "u", 5)
  t.eq(process.inbox():receive():topic(), "u")
end

function M.queued_before_subscribe()
  process.send(process.pid(), "early", "first")
  process.send(process.pid(), "early", "second")
  time.sleep("1ms")
  local ch = process.listen("early")
  t.eq(ch:receive(), "first")
  t.eq(ch:receive(), "second")
end

function M.inbox_fallback_and_exact_topic()
  local ch = process.listen("exact")
  process.send(process.pid(), "other", 1)
  process.send(process.pid(), "exact", 2)
  t.eq(ch:receive(), 2, "exact topic goes to its listener")
  t.eq(process.inbox():receive():topic(), "other", "other topics go to the inbox")
end

function M.send_errors()
  local r, err = process.send(process.pid(), "@pid/inbox", 1)
  t.is_nil(r); t.err(err, errors.INVALID, "cannot send to @ topics")
  r, err = process.send(process.pid())
  t.is_nil(r); t.err(err, errors.INVALID, "send requires at least destination and topic arguments")
  r, err = process.send("nobody", "x")
  t.is_nil(r); t.err(err, errors.NOT_FOUND, "could not resolve 'nobody' as PID or registered name")
  local ok = pcall(process.send, 42, "x")
  t.eq(ok, false, "non-string destination raises")
end

function M.send_to_dead_process()
  local pid = process.spawn("process:quick", HOST)
  time.sleep("20ms")
  local r, err = process.send(pid, "x", 1)
  t.is_nil(r); t.err(err, errors.NOT_FOUND, "process not found")
end

function M.spawn_and_message()
  local pid, err = process.spawn("process:echo", HOST)
  t.is_nil(err)
  t.ok(type(pid) == "string" and pid ~= process.pid(), "child pid")
  process.send(pid, "ping", "hello")
  local msg = process.inbox():receive()
  t.eq(msg:topic(), "pong")
  t.eq(msg:from(), pid)
  t.eq(msg:payload():data(), "hello")
end

function M.spawn_errors()
  local pid, err = process.spawn("process:nope", HOST)
  t.is_nil(pid); t.err(err, errors.NOT_FOUND, "factory not found")
  pid, err = process.spawn("process:echo", "no:host")
  t.is_nil(pid); t.err(err, errors.NOT_FOUND, "host not found")
  pid, err = process.spawn("process:echo")
  t.is_nil(pid); t.err(err, errors.INVALID, "spawn requires at least id and host arguments")
  pid, err = process.spawn("process:bad_init", HOST)
  t.is_nil(pid); t.err(err, nil, "init failed on purpose")
end

function M.exec_results()
  local v, err = process.exec("process:adder", HOST, 2, 3)
  t.is_nil(err); t.eq(v, 5)
  v, err = process.exec("process:quick", HOST)
  t.is_nil(v); t.is_nil(err)
  v, err = process.exec("process:failing", HOST)
  t.is_nil(v); t.err(err, errors.INTERNAL, "exec child failed")
  v, err = process.exec("adder", HOST)
  t.is_nil(v); t.err(err, errors.INVALID, "invalid process ID format (namespace:name required)")
end

function M.cancel_event()
  local pid = process.spawn("process:waits_cancel", HOST)
  time.sleep("1ms")
  t.eq(process.cancel(pid, "enough"), true)
  local msg = process.inbox():receive()
  t.eq(msg:topic(), "cancelled")
  t.eq(msg:payload():data(), "enough")
end

function M.options()
  local o = process.get_options()
  t.eq(o.trap_links, false)
  local ok, err = process.set_options({trap_links = true})
  t.eq(ok, true); t.is_nil(err)
  t.eq(process.get_options().trap_links, true)
  ok, err = process.set_options({trap_links = "yes"})
  t.eq(ok, false); t.err(err, errors.INVALID, "trap_links must be a boolean")
  ok, err = process.set_options({bogus = 1})
  t.eq(ok, false); t.err(err, errors.INVALID, "option bogus is not supported")
  ok, err = process.set_options("x")
  t.eq(ok, false); t.err(err, errors.INVALID, "options parameter must be a table")
end

function M.event_constants()
  t.eq(process.event.CANCEL, "pid.cancel")
  t.eq(process.event.EXIT, "pid.exit")
  t.eq(process.event.LINK_DOWN, "pid.link.down")
end

function M.terminate_child()
  local pid = process.spawn("process:forever", HOST)
  t.eq(process.terminate(pid), true)
  time.sleep("20ms")
  local r, err = process.send(pid, "x")
  t.is_nil(r); t.err(err, errors.NOT_FOUND, "process not found")
end

return M
