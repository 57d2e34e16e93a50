-- fanin: S senders each send M messages to one receiver (the driver).
-- Every message carries (sender index << 32) | sequence number, so the receiver can prove
-- that each message arrived exactly once and in per-sender order.
-- Timed: from before the first sender is spawned until the last message arrived (as in the
-- Erlang peer).
local M = {}

function M.sender(to, index, m)
  local base = index << 32
  for i = 1, m do
    process.send(to, "m", base | i)
  end
end

-- Driver. p = {host, senders = S, messages = M}.
function M.driver(p)
  local s, m = p.senders, p.messages
  local total = s * m
  local me = process.pid()
  local inbox = process.inbox()
  local expect = {}
  for i = 1, s do expect[i] = 1 end
  local t0 = bench.now()
  for i = 1, s do
    local pid, err = process.spawn("bench:fanin_sender", p.host, me, i, m)
    if not pid then error(err) end
  end
  local received, out_of_order, other = 0, 0, 0
  while received < total do
    local msg = inbox:receive()
    if msg:topic() == "m" then
      received = received + 1
      local v = msg:payload():data()
      local from, seq = v >> 32, v & 0xffffffff
      if expect[from] == seq then
        expect[from] = seq + 1
      else
        out_of_order = out_of_order + 1
      end
      if received & 8191 == 0 then bench.progress(received) end
    else
      other = other + 1
    end
  end
  local t1 = bench.now()
  local complete = 0
  for i = 1, s do
    if expect[i] == m + 1 then complete = complete + 1 end
  end
  return {
    ops = total, t0 = t0, t1 = t1, received = received,
    out_of_order = out_of_order, complete_senders = complete, unexpected = other,
  }
end

return M
