-- spawn: N trivial processes are spawned; each sends "done" to the driver and exits.
-- Timed: from before the first spawn until the N-th "done" arrived (the Erlang peer's
-- spawn_exit figure measures the same span).
local M = {}

-- The trivial process is `bench:spawn_child` (spawn_child.lua).

-- Driver. p = {host = <host id>, procs = N}. Returns the counts it saw.
function M.driver(p)
  local n, host = p.procs, p.host
  local me = process.pid()
  local inbox = process.inbox()
  local t0 = bench.now()
  for i = 1, n do
    local pid, err = process.spawn("bench:spawn_child", host, me)
    if not pid then error(err) end
    if i & 1023 == 0 then bench.progress(i) end
  end
  local done, other = 0, 0
  while done < n do
    local msg = inbox:receive()
    if msg:topic() == "done" then
      done = done + 1
      if done & 1023 == 0 then bench.progress(n + done) end
    else
      other = other + 1
    end
  end
  local t1 = bench.now()
  return {ops = n, t0 = t0, t1 = t1, spawned = n, done = done, unexpected = other}
end

return M
