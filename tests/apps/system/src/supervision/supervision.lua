-- process.service supervision: restart policy, exits, dependency order, bus events.
local M = {}
local REC = "supervision.recorder"

-- The recorder's log entries with `tag` (optionally `what`).
local function entries(tag, what)
  -- The recorder registers its name in its first step, which may come after ours.
  while not process.registry.lookup(REC) do time.sleep("1ms") end
  local reply = process.listen("log")
  process.send(REC, "get")
  local all = t.recv(reply, "5s", "recorder")
  process.unlisten(reply)
  local out = {}
  for _, e in ipairs(all) do
    if (tag == nil or e.tag == tag) and (what == nil or e.what == what) then out[#out + 1] = e end
  end
  return out
end

-- Poll until `n` entries match (or fail after `timeout` seconds).
local function wait_entries(tag, what, n, timeout)
  local deadline = time.now():unix() + (timeout or 10)
  while true do
    local es = entries(tag, what)
    if #es >= n then return es end
    if time.now():unix() > deadline then
      error("waited for " .. n .. " " .. tostring(tag) .. " " .. tostring(what) .. ", got " .. #es, 2)
    end
    time.sleep("20ms")
  end
end

-- Restarts wait initial_delay × 2^(n-1) (50, 100, 200, 400 ms), then give up (5 attempts).
function M.backoff_grows_until_max_attempts()
  local starts = wait_entries("flaky", "start", 5)
  local gaps = {}
  for i = 2, #starts do
    gaps[#gaps + 1] = (starts[i].at - starts[i - 1].at) / 1e6
  end
  -- Lower bounds prove the growth (a constant delay, upstream's bug, fails gap 4 >= 400 ms);
  -- the upper bounds only catch gross errors (the machine is shared).
  for i, g in ipairs(gaps) do
    local want = 50 * 2 ^ (i - 1)
    t.ok(g >= want - 1, string.format("gap %d = %.1f ms >= %d ms", i, g, want))
    t.ok(g < want + 1500, string.format("gap %d = %.1f ms < %d ms", i, g, want + 1500))
  end
  time.sleep("900ms")
  t.eq(#entries("flaky", "start"), 5, "no attempt after max_attempts")
end

function M.normal_exit_is_not_restarted()
  wait_entries("oneshot", "start", 1)
  time.sleep("300ms")
  t.eq(#entries("oneshot", "start"), 1)
end

function M.non_retryable_error_is_not_restarted()
  wait_entries("badconf", "start", 1)
  time.sleep("300ms")
  t.eq(#entries("badconf", "start"), 1)
end

-- service.start / service.stop bus commands: dependencies start first, dependents stop first.
function M.dependency_order()
  -- The supervisor's own start order, from its state events: a dependent starts only after
  -- its dependency is running. (The services' "start" log lines come from the processes'
  -- first steps, which may run in any order once they are spawned.)
  local sub = events.subscribe("supervisor", "service.update")
  local ch = sub:channel()
  events.send("supervisor", "service.start", "supervision:d1")
  local deps = {d1 = {"d2"}, d2 = {"d3"}, d3 = {}}
  local order, running = {}, {}
  while #order < 3 or not running["supervision:d1"] do
    local ev = t.recv(ch, "5s", "service.update")
    local name = ev.path and ev.path:match("^supervision:(d%d)$")
    if name and ev.data.status == "starting" then
      for _, dep in ipairs(deps[name]) do
        t.eq(running["supervision:" .. dep], true, name .. " started before " .. dep .. " ran")
      end
      order[#order + 1] = name
    elseif name and ev.data.status == "running" then
      running[ev.path] = true
    end
  end
  sub:close()
  t.eq(table.concat(order, ","), "d3,d2,d1", "start order")
  local starts = wait_entries("d1", "start", 1)
  events.send("supervisor", "service.stop", "supervision:d3")
  wait_entries("d3", "stop", 1)
  order = {}
  for _, e in ipairs(entries(nil, "stop")) do
    if e.tag == "d1" or e.tag == "d2" or e.tag == "d3" then order[#order + 1] = e.tag end
  end
  t.eq(table.concat(order, ","), "d1,d2,d3", "stop order")
  local _ = starts
end

function M.state_changes_on_the_bus()
  local sub = events.subscribe("supervisor", "service.update")
  local ch = sub:channel()
  events.send("supervisor", "service.start", "supervision:watched")
  local seen = {}
  while true do
    local ev = t.recv(ch, "5s", "service.update")
    if ev.path == "supervision:watched" then
      seen[#seen + 1] = ev.data.status
      t.eq(ev.data.desired, "running")
      t.eq(type(ev.data.retry_count), "number")
      if ev.data.status == "running" then break end
    end
  end
  t.eq(table.concat(seen, ","), "starting,running")
  sub:close()
  events.send("supervisor", "service.stop", "supervision:watched")
  wait_entries("watched", "stop", 1)
end

-- The supervisor's view from Lua (system.supervisor).
function M.supervisor_state_from_lua()
  wait_entries("flaky", "start", 5)
  local deadline = time.now():unix() + 5
  local st
  repeat
    st = system.supervisor.state("supervision:flaky")
    if st.status == "failed" and st.details:find("gave up", 1, true) then break end
    time.sleep("20ms")
  until time.now():unix() > deadline
  t.eq(st.status, "failed")
  t.eq(st.retry_count, 5)
  t.eq(st.desired, "running")
  t.contains(st.details, "gave up after 5 attempts")
  t.eq(system.supervisor.state("supervision:recorder_svc").status, "running")
  t.is_nil(system.supervisor.state("supervision:nope"))
  local ids = {}
  for _, s in ipairs(system.supervisor.states()) do ids[s.id] = s.status end
  t.eq(ids["supervision:oneshot"], "exited")
  t.eq(ids["supervision:badconf"], "exited")
  t.eq(ids["system:processes"], "running", "the host is a service too")
end

return M
