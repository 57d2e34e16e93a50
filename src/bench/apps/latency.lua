-- latency: receivers for an open-loop message load, and CPU-heavy background processes.
--
-- The load comes from the harness (a native thread outside the worker pool): message i is
-- due at start + i/rate and carries that scheduled time; a receiver records
-- now - scheduled (bench.latency), so a late sender, a busy worker or a slow wake-up all
-- count (no coordinated omission).
local M = {}

-- Records the delivery latency of every "m" message; on "stop" returns how many it saw.
function M.receiver()
  local inbox = process.inbox()
  local seen = 0
  while true do
    local msg = inbox:receive()
    local topic = msg:topic()
    if topic == "m" then
      bench.latency(msg:payload():data())
      seen = seen + 1
    elseif topic == "stop" then
      return seen
    end
  end
end

-- Background CPU load: never blocks; works in rounds of `work` iterations and polls for a
-- "stop" message without blocking between rounds. `kind` picks the mix:
--   "arith"  - integer arithmetic (a pure interpreter loop),
--   "tables" - allocates and fills small tables (GC pressure),
--   "strings" - builds and hashes strings.
-- Returns the number of rounds completed.
--
-- The poll uses a `listen` channel (buffer 1): the engine moves a queued message into it at
-- the start of the process's next step (a preempted hog gets one per time slice), so a
-- non-blocking select sees it. (A non-blocking select on the zero-buffer inbox never takes a
-- message that is still queued in the mailbox.)
function M.hog(kind, work)
  local stop = process.listen("stop")
  local rounds, acc = 0, 0
  while true do
    if kind == "tables" then
      local keep = {}
      for i = 1, work // 8 do
        local t = {i, i + 1, x = i}
        keep[(i & 63) + 1] = t
        acc = acc + #t
      end
    elseif kind == "strings" then
      for i = 1, work // 16 do
        local s = "k" .. i .. ":" .. acc
        acc = acc + #s
      end
    else
      for i = 1, work do
        acc = (acc * 1103515245 + 12345 + i) & 0x7fffffff
      end
    end
    rounds = rounds + 1
    local r = channel.select({stop:case_receive()}, true)
    if not r.default then
      return {rounds = rounds, acc = acc}
    end
  end
end

return M
