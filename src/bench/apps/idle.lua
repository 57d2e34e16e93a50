-- idle: P processes kept alive, each blocked receiving on its inbox. The driver reads the
-- resident set before spawning and once every process has reported that it is parked;
-- per-process bytes = (RSS with P processes - baseline) / P.
--
-- The processes form a chain (each knows the one spawned before it), so the driver keeps
-- no table of P pids that would be counted as per-process memory: "stop" goes to the last
-- one and every process passes it on before it acknowledges and exits.
local M = {}

-- The parked process is `bench:idle_proc` (idle_proc.lua).

local function await(inbox, topic, n, progress_base)
  local got, other = 0, 0
  while got < n do
    local msg = inbox:receive()
    if msg:topic() == topic then
      got = got + 1
      if got & 1023 == 0 then bench.progress(progress_base + got) end
    else
      other = other + 1
    end
  end
  return got, other
end

-- Driver. p = {host, procs = P}.
function M.driver(p)
  local n = p.procs
  local me = process.pid()
  local inbox = process.inbox()
  local rss_base = bench.rss()
  local last = ""
  local t0 = bench.now()
  for _ = 1, n do
    local pid, err = process.spawn("bench:idle_proc", p.host, me, last)
    if not pid then error(err) end
    last = pid
  end
  local up, other1 = await(inbox, "up", n, 0)
  local t1 = bench.now()
  local rss_full = bench.rss()
  process.send(last, "stop")
  local acks, other2 = await(inbox, "ack", n, n)
  return {
    ops = n, t0 = t0, t1 = t1, up = up, acks = acks, unexpected = other1 + other2,
    rss_base = rss_base, rss_full = rss_full,
  }
end

return M
