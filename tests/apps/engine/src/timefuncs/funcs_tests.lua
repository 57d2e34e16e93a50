-- funcs.call / async / new, context, pools (spec lua-api §3.8.3, runtime-internals §11.8).
local M = {}

function M.call_basic()
  local v, err = funcs.call("timefuncs:square", 7)
  t.is_nil(err); t.eq(v, 49)
  local r = funcs.call("timefuncs:nothing")
  t.is_nil(r, "no result → nil")
end

function M.call_inside_pcall()
  local ok, v, err = pcall(funcs.call, "timefuncs:square", 3)
  t.eq(ok, true); t.eq(v, 9); t.is_nil(err)
end

function M.call_blocking_callee()
  local v = funcs.call("timefuncs:slow_echo", "x")
  t.eq(v, "x")
end

function M.async_future()
  local f = funcs.async("timefuncs:slow_echo", "later")
  t.eq(f:is_complete(), false)
  local r, err = f:result()
  t.is_nil(r); t.is_nil(err, "pending result is nil, nil")
  t.ok(f:response() == f:channel(), "same channel")
  local p, ok = f:response():receive()
  t.eq(ok, true)
  t.eq(p:data(), "later", "the channel yields a Payload")
  t.eq(f:is_complete(), true)
  local res = f:result()
  t.eq(res:data(), "later")
  local _, ok2 = f:response():receive()
  t.eq(ok2, false, "closed after the result")
  local e, has = f:error()
  t.is_nil(e); t.eq(has, false)
end

function M.async_failure()
  local f = funcs.async("timefuncs:fails")
  local v, ok = f:channel():receive()
  t.eq(ok, true)
  t.err(v, errors.INVALID, "nope", "the channel yields the error object")
  local r, err = f:result()
  t.is_nil(r); t.err(err, errors.INVALID, "nope")
  local e, has = f:error()
  t.eq(has, true); t.err(e, errors.INTERNAL, "nope", "error() forces Internal")
end

function M.async_cancel()
  local f = funcs.async("timefuncs:slow_echo", "x")
  t.eq(f:cancel(), true)
  t.eq(f:is_canceled(), true)
  local r, err = f:result()
  t.is_nil(r); t.err(err, errors.CANCELED, "canceled")
  local _, ok = f:response():receive()
  t.eq(ok, false, "channel closed by cancel")
end

function M.many_async_calls()
  local fs = {}
  for i = 1, 20 do fs[i] = funcs.async("timefuncs:square", i) end
  local sum = 0
  for i = 1, 20 do
    fs[i]:response():receive()
    sum = sum + fs[i]:result():data()
  end
  t.eq(sum, 2870)
end

function M.context_propagates()
  local ex = funcs.new():with_context({user = "ann", n = 1})
  local v = ex:call("timefuncs:read_ctx", "user")
  t.eq(v, "ann")
  local ex2 = ex:with_context({n = 2})
  t.eq(ex2:call("timefuncs:read_ctx", "n"), 2, "merged over inherited values")
  t.eq(ex:call("timefuncs:read_ctx", "n"), 1, "executors are immutable")
  local f = ex:async("timefuncs:read_ctx", "user")
  f:response():receive()
  t.eq(f:result():data(), "ann", "async inherits the executor context")
  local missing, err = funcs.call("timefuncs:read_ctx", "user")
  t.is_nil(missing); t.err(err, errors.NOT_FOUND, "key not found: user")
end

function M.inline_pool_keeps_module_state()
  -- an inline pool has one worker: module-level state persists between calls
  local a = funcs.call("timefuncs:counter")
  local b = funcs.call("timefuncs:counter")
  t.eq(b, a + 1, "same warm state")
end

function M.chain_of_calls()
  t.eq(funcs.call("timefuncs:chain", 3), 8, "recursive function calls")
end

function M.static_pool_runs_concurrently()
  -- each call reports in and waits for "go": a pool running them one at a time would never
  -- see all four report, and the timeout below would fail the test
  local ready = process.listen("ready")
  local fs = {}
  for i = 1, 4 do fs[i] = funcs.async("timefuncs:static_wait", process.pid(), i) end
  local callees = {}
  local timeout = time.after("5s")
  for _ = 1, 4 do
    local r = channel.select{ ready:case_receive(), timeout:case_receive() }
    t.ok(r.channel == ready, "all four calls run at the same time")
    callees[#callees + 1] = r.value
  end
  for _, pid in ipairs(callees) do process.send(pid, "go", true) end
  local sum = 0
  for i = 1, 4 do
    fs[i]:response():receive()
    sum = sum + fs[i]:result():data()
  end
  t.eq(sum, 10)
end

function M.function_has_its_own_pid()
  local pid = funcs.call("timefuncs:my_pid")
  t.ok(pid ~= process.pid(), "a call runs as its own process")
  t.contains(pid, "timefuncs:my_pid#lua.", "on the pool host")
end

return M
