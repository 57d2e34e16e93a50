-- Tasks, runtime yields through pcall / user coroutines / metamethods / iterators
-- (spec runtime-internals §11.1, §11.3; lua-api §3.1.7, §3.6).
local M = {}

function M.spawn_runs_first()
  local log = {}
  local th = coroutine.spawn(function() log[#log + 1] = "child" end)
  log[#log + 1] = "parent"
  t.eq(type(th), "thread", "spawn returns the thread")
  t.list(log, {"child", "parent"}, "spawned task runs first")
end

function M.spawned_tasks_interleave_on_blocking()
  local log = {}
  local ch = channel.new()
  coroutine.spawn(function()
    log[#log + 1] = "a1"
    ch:receive()
    log[#log + 1] = "a2"
  end)
  log[#log + 1] = "main1"
  ch:send(true)
  log[#log + 1] = "main2"
  time.sleep(0)
  t.list(log, {"a1", "main1", "main2", "a2"}, "order")
end

function M.yield_inside_pcall()
  local ok, r = pcall(function()
    time.sleep("1ms")
    return "after sleep"
  end)
  t.eq(ok, true, "pcall ok")
  t.eq(r, "after sleep")
  -- pcall directly around a blocking function
  local ok2 = pcall(time.sleep, "1ms")
  t.eq(ok2, true, "pcall(time.sleep)")
  -- error raised after a yield inside pcall is caught
  local ok3, e3 = pcall(function()
    time.sleep("1ms")
    error("late failure")
  end)
  t.eq(ok3, false)
  t.contains(e3, "late failure")
end

function M.yield_inside_xpcall()
  local handled
  local ok, r = xpcall(function()
    local ch = channel.new(1)
    coroutine.spawn(function() ch:send(7) end)
    local v = ch:receive()
    time.sleep("1ms")
    error("x" .. v)
  end, function(e) handled = e; return "handled" end)
  t.eq(ok, false)
  t.eq(r, "handled")
  t.contains(handled, "x7")
end

function M.yield_inside_coroutine_wrap()
  -- a generator whose body blocks: the whole process suspends, the user's resume
  -- only sees the generator's own yields
  local gen = coroutine.wrap(function()
    for i = 1, 3 do
      time.sleep("1ms")
      coroutine.yield(i * 10)
    end
    return "done"
  end)
  t.list({gen(), gen(), gen(), gen()}, {10, 20, 30, "done"}, "generator values")
end

function M.yield_inside_coroutine_resume()
  local ch = channel.new(1)
  coroutine.spawn(function() ch:send("hello") end)
  local co = coroutine.create(function(a)
    local v = ch:receive()
    local b = coroutine.yield(a .. ":" .. v)
    time.sleep("1ms")
    return b * 2
  end)
  local ok, r = coroutine.resume(co, "x")
  t.eq(ok, true); t.eq(r, "x:hello")
  t.eq(coroutine.status(co), "suspended")
  local ok2, r2 = coroutine.resume(co, 21)
  t.eq(ok2, true); t.eq(r2, 42)
  t.eq(coroutine.status(co), "dead")
  local ok3, e3 = coroutine.resume(co)
  t.eq(ok3, false)
  t.contains(e3, "dead coroutine")
end

function M.nested_user_coroutines()
  local outer = coroutine.wrap(function()
    local inner = coroutine.wrap(function()
      time.sleep("1ms")
      coroutine.yield("inner")
      return "inner done"
    end)
    local a = inner()
    time.sleep("1ms")
    coroutine.yield(a)
    return inner()
  end)
  t.eq(outer(), "inner")
  t.eq(outer(), "inner done")
end

function M.wrap_error_propagates()
  local f = coroutine.wrap(function()
    time.sleep("1ms")
    error("inside wrap")
  end)
  local ok, e = pcall(f)
  t.eq(ok, false)
  t.contains(e, "inside wrap")
end

function M.yield_inside_metamethod()
  local ch = channel.new(1)
  local obj = setmetatable({}, {
    __index = function(_, k)
      time.sleep("1ms")
      return "got " .. k
    end,
    __add = function(a, b)
      ch:send(1)
      return ch:receive() + 41
    end,
  })
  t.eq(obj.key, "got key", "__index")
  t.eq(obj + 1, 42, "__add")
end

function M.yield_inside_iterator()
  local ch = channel.new(3)
  ch:send(1); ch:send(2); ch:send(3); ch:close()
  local function values(c)
    return function()
      local v, ok = c:receive()
      if ok then return v end
    end
  end
  local sum = 0
  for v in values(ch) do
    time.sleep(0)
    sum = sum + v
  end
  t.eq(sum, 6)
end

function M.bare_yield_in_task_continues()
  local log = {}
  coroutine.spawn(function()
    log[#log + 1] = "child"
  end)
  local r = coroutine.yield("ignored")
  log[#log + 1] = "main"
  t.is_nil(r, "bare yield resumes with no values")
  t.list(log, {"child", "main"})
end

function M.isyieldable_in_task()
  t.eq(coroutine.isyieldable(), true)
  local co = coroutine.running()
  t.eq(type(co), "thread")
end

function M.process_level()
  -- behaviours that end the process: checked through process.exec of helper entries
  local v, err = process.exec("coroutines:ends_with_main", "engine:processes")
  t.is_nil(err, "main returning kills blocked tasks")
  t.eq(v, "main done")
  v, err = process.exec("coroutines:child_error", "engine:processes")
  t.is_nil(v)
  t.err(err, errors.INTERNAL, "child task failed", "error in a spawned coroutine fails the process")
  v, err = process.exec("coroutines:deadlock", "engine:processes")
  t.err(err, nil, "deadlock: all coroutines blocked with no pending operations", "deadlock")
end

return M
