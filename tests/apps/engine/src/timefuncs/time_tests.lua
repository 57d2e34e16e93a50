-- time.sleep / after / timer / ticker (spec lua-api §3.8.1).
local M = {}

local function elapsed_ms(t0) return (time.now():unix_nano() - t0:unix_nano()) / 1e6 end

function M.sleep_blocks()
  local t0 = time.now()
  local r = time.sleep("20ms")
  t.is_nil(r, "sleep returns nothing")
  t.ok(elapsed_ms(t0) >= 19, "slept at least 20ms, got " .. elapsed_ms(t0))
  time.sleep(5 * time.MILLISECOND)
  time.sleep(1000000) -- nanoseconds
end

function M.sleep_bad_argument()
  local r, err = time.sleep("soon")
  t.is_nil(r)
  t.err(err, errors.INVALID)
  r, err = time.sleep({})
  t.err(err, errors.INVALID)
  t.is_nil(time.sleep(0), "zero just yields")
  t.is_nil(time.sleep(-5), "negative just yields")
end

function M.after_delivers_once_then_closes()
  local ch = time.after("5ms")
  local v, ok = ch:receive()
  t.eq(ok, true)
  t.eq(type(v), "userdata", "a Time value")
  t.ok(v:unix() > 1600000000, "plausible time")
  local v2, ok2 = ch:receive()
  t.is_nil(v2); t.eq(ok2, false, "closed after one value")
  local bad, err = time.after(0)
  t.is_nil(bad); t.err(err, errors.INVALID)
end

function M.after_as_select_timeout()
  local never = channel.new()
  local timeout = time.after("10ms")
  local r = channel.select{ never:case_receive(), timeout:case_receive() }
  t.ok(r.channel == timeout, "timeout fired")
end

function M.timer_stop_and_reset()
  local tm = time.timer("1h")
  t.ok(tm:response() == tm:channel(), "same channel")
  t.ok(tm:response() == tm:response(), "same channel each call")
  t.eq(tm:stop(), true, "stopped a pending timer")
  local _, ok = tm:response():receive()
  t.eq(ok, false, "channel closed by stop")
  t.eq(tm:stop(), false, "nothing pending any more")
  local tm2 = time.timer("1h")
  t.eq(tm2:reset("5ms"), true, "was pending")
  local v, ok2 = tm2:response():receive()
  t.eq(ok2, true)
  local ok3 = pcall(tm2.reset, tm2, 0)
  t.eq(ok3, false, "reset with a non-positive duration raises")
end

function M.ticker_ticks_and_stops()
  local tk = time.ticker("5ms")
  local n = 0
  for _ = 1, 3 do
    local v, ok = tk:response():receive()
    t.eq(ok, true)
    n = n + 1
  end
  t.eq(n, 3)
  t.eq(tk:stop(), true)
  local _, ok = tk:channel():receive()
  t.eq(ok, false, "closed after stop")
end

function M.sleeps_in_parallel_tasks()
  local done = channel.new(3)
  local log = {}
  for i = 1, 3 do
    coroutine.spawn(function()
      log[#log + 1] = "start"
      time.sleep("10ms")
      log[#log + 1] = "end"
      done:send(i)
    end)
  end
  for _ = 1, 3 do done:receive() end
  t.list(log, {"start", "start", "start", "end", "end", "end"}, "sleeping tasks overlap")
end

return M
