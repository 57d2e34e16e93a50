-- Channel and select semantics (spec lua-api §3.6, runtime-internals §11.6).
local M = {}

function M.buffered_order()
  local ch = channel.new(3)
  t.eq(type(ch), "userdata", "type(ch)")
  t.eq(ch:send(1), true, "send result")
  ch:send(2)
  ch:send(3)
  local got = {}
  for i = 1, 3 do
    local v, ok = ch:receive()
    t.eq(ok, true, "ok " .. i)
    got[i] = v
  end
  t.list(got, {1, 2, 3}, "fifo order")
end

function M.unbuffered_rendezvous()
  local ch = channel.new()
  local done = channel.new(1)
  coroutine.spawn(function()
    local sum = 0
    while true do
      local v, ok = ch:receive()
      if not ok then break end
      sum = sum + v
    end
    done:send(sum)
  end)
  for i = 1, 10 do ch:send(i) end
  ch:close()
  t.eq(done:receive(), 55, "sum")
end

function M.close_drains_then_nil_false()
  local ch = channel.new(2)
  ch:send("a")
  ch:send("b")
  ch:close()
  local v1, ok1 = ch:receive()
  local v2, ok2 = ch:receive()
  local v3, ok3 = ch:receive()
  t.eq(v1, "a"); t.eq(ok1, true)
  t.eq(v2, "b"); t.eq(ok2, true)
  t.is_nil(v3, "after drain"); t.eq(ok3, false, "ok after drain")
  -- a second close is a silent no-op
  t.is_nil(ch:close(), "second close")
end

function M.send_on_closed_raises()
  local ch = channel.new(1)
  ch:close()
  local ok, err = pcall(ch.send, ch, 1)
  t.eq(ok, false, "pcall ok")
  t.contains(tostring(err), "send on closed channel")
end

function M.blocked_sender_gets_nil_err_on_close()
  local ch = channel.new()
  local res = channel.new(1)
  coroutine.spawn(function()
    local r, err = ch:send("x")
    res:send({r = r, err = tostring(err)})
  end)
  -- the spawned task runs first and blocks in send; closing wakes it with nil, err
  ch:close()
  local r = res:receive()
  t.is_nil(r.r, "send result")
  t.contains(r.err, "send on closed channel")
end

function M.blocked_receivers_wake_on_close()
  local ch = channel.new()
  local out = channel.new(2)
  for _ = 1, 2 do
    coroutine.spawn(function()
      local v, ok = ch:receive()
      out:send(ok)
    end)
  end
  ch:close()
  t.eq(out:receive(), false)
  t.eq(out:receive(), false)
end

function M.select_first_ready_in_order()
  local a, b = channel.new(1), channel.new(1)
  a:send("A")
  b:send("B")
  local r = channel.select{ b:case_receive(), a:case_receive() }
  t.ok(r.channel == b, "second-declared ready channel must not win")
  t.eq(r.value, "B"); t.eq(r.ok, true)
  r = channel.select{ b:case_receive(), a:case_receive() }
  t.ok(r.channel == a, "only a is ready now")
  t.eq(r.value, "A")
end

function M.select_default()
  local a = channel.new()
  local r = channel.select{ a:case_receive(), default = true }
  t.eq(r.default, true, "default")
  t.eq(r.ok, true, "ok")
  r = channel.select({ a:case_receive() }, true)
  t.eq(r.default, true, "default as second argument")
end

function M.select_send_case()
  local a = channel.new(1)
  local r = channel.select{ a:case_send(42) }
  t.ok(r.channel == a, "channel")
  t.eq(r.value, 42, "sent value")
  t.eq(r.ok, true)
  t.eq(a:receive(), 42)
end

function M.select_closed_receive()
  local a = channel.new()
  a:close()
  local r = channel.select{ a:case_receive() }
  t.ok(r.channel == a)
  t.is_nil(r.value); t.eq(r.ok, false)
end

function M.select_blocks_until_ready()
  local a, b = channel.new(), channel.new()
  coroutine.spawn(function()
    time.sleep("2ms")
    b:send("late")
  end)
  local r = channel.select{ a:case_receive(), b:case_receive() }
  t.ok(r.channel == b, "b fired")
  t.eq(r.value, "late")
  -- the waiter on a was removed: a later sender on a does not complete the finished select
  local r2 = channel.select{ a:case_send(1), default = true }
  t.eq(r2.default, true, "no receiver left on a")
end

function M.select_wakes_on_close()
  local a = channel.new()
  coroutine.spawn(function() a:close() end)
  local r = channel.select{ a:case_receive() }
  t.eq(r.ok, false)
  t.ok(r.channel == a)
end

function M.wake_order()
  -- sender queued before the receiver it hands off to (upstream order)
  local log = {}
  local ch = channel.new()
  coroutine.spawn(function()
    local v = ch:receive()
    log[#log + 1] = "recv " .. v
  end)
  ch:send("x")
  log[#log + 1] = "sent"
  time.sleep(0)
  t.list(log, {"sent", "recv x"}, "order")
end

function M.many_values_through_buffer()
  local ch = channel.new(4)
  local total = channel.new(1)
  coroutine.spawn(function()
    local s = 0
    for _ = 1, 1000 do s = s + ch:receive() end
    total:send(s)
  end)
  for i = 1, 1000 do ch:send(i) end
  t.eq(total:receive(), 500500)
end

return M
