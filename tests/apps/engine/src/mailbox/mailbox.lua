-- Mailbox routing and backlogs (runtime-internals §11.4, lua-api §3.7): arrival order per
-- subscription, exact topic before the inbox, backlogs kept until something subscribes and
-- routed anew when a subscription goes away, receives taking queued messages.
local M = {}

local function me() return process.pid() end

-- Let the messages sent to ourselves arrive (they are delivered at the next step).
local function settle() time.sleep("1ms") end

function M.large_backlog_in_order()
  local inbox = process.inbox()
  local n = 20000
  for i = 1, n do
    process.send(me(), (i % 3 == 0) and "b" or "a", i)
  end
  settle()
  for i = 1, n do
    local msg = inbox:receive()
    t.eq(msg:payload():data(), i, "message " .. i)
    t.eq(msg:topic(), (i % 3 == 0) and "b" or "a", "topic of " .. i)
  end
  local r = channel.select{inbox:case_receive(), default = true}
  t.eq(r.default, true, "backlog drained")
end

function M.unrouted_then_inbox()
  -- No subscription yet: the messages wait, then reach the inbox in arrival order.
  process.send(me(), "a", 1)
  process.send(me(), "b", 2)
  process.send(me(), "a", 3)
  process.send(me(), "c", 4)
  settle()
  local inbox = process.inbox()
  local got = {}
  for _ = 1, 4 do
    local msg = inbox:receive()
    got[#got + 1] = msg:topic() .. msg:payload():data()
  end
  t.list(got, {"a1", "b2", "a3", "c4"}, "arrival order across topics")
end

function M.unrouted_then_listen()
  process.send(me(), "a", 1)
  process.send(me(), "b", 2)
  process.send(me(), "a", 3)
  process.send(me(), "b", 4)
  settle()
  local b = process.listen("b")
  local inbox = process.inbox()
  t.eq(b:receive(), 2)
  t.eq(b:receive(), 4)
  t.eq(inbox:receive():payload():data(), 1, "other topics to the inbox")
  t.eq(inbox:receive():payload():data(), 3)
  local r = channel.select{inbox:case_receive(), b:case_receive(), default = true}
  t.eq(r.default, true, "nothing left")
end

function M.listen_after_inbox_queued()
  -- T-messages already routed to the (busy) inbox move to a later exact subscription.
  local inbox = process.inbox()
  process.send(me(), "a", 1)
  process.send(me(), "t", 1)
  process.send(me(), "a", 2)
  process.send(me(), "t", 2)
  process.send(me(), "t", 3)
  settle()
  local ch = process.listen("t")
  t.eq(ch:receive(), 1, "first t")
  t.eq(ch:receive(), 2, "second t")
  t.eq(ch:receive(), 3, "third t")
  local m1, m2 = inbox:receive(), inbox:receive()
  t.eq(m1:topic() .. m1:payload():data(), "a1")
  t.eq(m2:topic() .. m2:payload():data(), "a2")
  local r = channel.select{inbox:case_receive(), default = true}
  t.eq(r.default, true, "no t-message left in the inbox")
end

function M.unlisten_returns_backlog()
  local inbox = process.inbox()
  local ch = process.listen("t")
  process.send(me(), "a", 1)
  process.send(me(), "t", 10) -- buffered in the listen channel (capacity 1)
  process.send(me(), "a", 2)
  process.send(me(), "t", 20) -- waits in the subscription's backlog
  process.send(me(), "a", 3)
  process.send(me(), "t", 30)
  settle()
  t.eq(process.unlisten(ch), true)
  local v, ok = ch:receive()
  t.eq(v, 10, "buffered value stays receivable"); t.eq(ok, true)
  v, ok = ch:receive()
  t.eq(ok, false, "closed after the buffer")
  local got = {}
  for _ = 1, 5 do
    local msg = inbox:receive()
    got[#got + 1] = msg:topic() .. msg:payload():data()
  end
  t.list(got, {"a1", "a2", "t20", "a3", "t30"}, "backlog back to the inbox in arrival order")
end

function M.select_default_takes_queued()
  local inbox = process.inbox()
  process.send(me(), "x", 1)
  process.send(me(), "x", 2)
  settle()
  local r = channel.select{inbox:case_receive(), default = true}
  t.is_nil(r.default, "a queued message is ready")
  t.eq(r.ok, true)
  t.ok(r.channel == inbox, "from the inbox")
  t.eq(r.value:payload():data(), 1, "oldest first")
  r = channel.select({inbox:case_receive()}, true)
  t.eq(r.value:payload():data(), 2, "second")
  r = channel.select{inbox:case_receive(), default = true}
  t.eq(r.default, true, "then empty")
  -- events: a zero-buffer subscription channel too
  local events = process.events()
  local other = channel.new(1)
  r = channel.select{events:case_receive(), other:case_receive(), default = true}
  t.eq(r.default, true, "no event queued")
end

function M.receive_takes_queued_in_order()
  -- Mixed coroutines: a receiver arriving while a backlog exists takes the oldest message,
  -- and blocked receivers are served in arrival order.
  local inbox = process.inbox()
  for i = 1, 5 do process.send(me(), "q", i) end
  settle()
  local got = {}
  local done = channel.new(2)
  for w = 1, 2 do
    coroutine.spawn(function()
      for _ = 1, 2 do
        local v = inbox:receive():payload():data() -- (yields: index after it)
        got[#got + 1] = v
      end
      done:send(w)
    end)
  end
  done:receive(); done:receive()
  got[#got + 1] = inbox:receive():payload():data()
  table.sort(got)
  t.list(got, {1, 2, 3, 4, 5}, "every message once")
end

function M.events_not_in_inbox()
  -- @-topics never reach the inbox: an EXIT event of a child waits for process.events().
  local inbox = process.inbox()
  local pid = process.spawn_monitored("process:quick", "engine:processes")
  t.ok(pid ~= nil, "spawned")
  time.sleep("20ms")
  local r = channel.select{inbox:case_receive(), default = true}
  t.eq(r.default, true, "event not delivered to the inbox")
  local ev = process.events():receive()
  t.eq(ev.kind, process.event.EXIT, "the queued event reaches events()")
end

return M
