-- ring: K processes in a ring (the driver and K-1 nodes) pass a token L laps; K*L hops.
-- Timed: the laps only (the ring is built before t0, as in the Erlang peer).
local M = {}

-- A ring node: forwards every token to `next_pid`. On "stop" it adds its own forward count
-- to the running totals carried by the stop message and passes them on, then exits.
function M.node(next_pid)
  local inbox = process.inbox()
  local forwarded = 0
  while true do
    local msg = inbox:receive()
    local topic = msg:topic()
    if topic == "token" then
      forwarded = forwarded + 1
      process.send(next_pid, "token", msg:payload():data())
    elseif topic == "stop" then
      local s = msg:payload():data()
      local lo, hi = s.min, s.max
      if lo < 0 or forwarded < lo then lo = forwarded end
      if forwarded > hi then hi = forwarded end
      process.send(next_pid, "stop", {sum = s.sum + forwarded, min = lo, max = hi, nodes = s.nodes + 1})
      return forwarded
    end
  end
end

-- Driver. p = {host, procs = K, laps = L}.
function M.driver(p)
  local k, laps = p.procs, p.laps
  if k < 2 then error("ring needs at least 2 processes") end
  local inbox = process.inbox()
  -- Build from the end: the last node sends back to the driver.
  local first = process.pid()
  for _ = 1, k - 1 do
    local pid, err = process.spawn("bench:ring_node", p.host, first)
    if not pid then error(err) end
    first = pid
  end
  local completed, wrong, other = 0, 0, 0
  local t0 = bench.now()
  for lap = 1, laps do
    process.send(first, "token", lap)
    while true do
      local msg = inbox:receive()
      if msg:topic() == "token" then
        if msg:payload():data() == lap then completed = completed + 1 else wrong = wrong + 1 end
        break
      end
      other = other + 1
    end
    bench.progress(lap)
  end
  local t1 = bench.now()
  process.send(first, "stop", {sum = 0, min = -1, max = 0, nodes = 0})
  local totals
  while true do
    local msg = inbox:receive()
    if msg:topic() == "stop" then totals = msg:payload():data(); break end
    other = other + 1
  end
  return {
    ops = k * laps, t0 = t0, t1 = t1,
    laps = completed, wrong_token = wrong, unexpected = other,
    nodes = totals.nodes, forwarded = totals.sum,
    min_forwarded = totals.min, max_forwarded = totals.max,
  }
end

return M
