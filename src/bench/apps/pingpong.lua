-- pingpong: two processes, M round trips. The driver sends "ping" and waits for "pong"
-- before the next ping, so exactly one message is in flight at a time.
local M = {}

-- Replies "pong" to every "ping"; on "stop" reports how many pings it saw and exits.
function M.pong()
  local inbox = process.inbox()
  local pings = 0
  while true do
    local msg = inbox:receive()
    local topic = msg:topic()
    if topic == "ping" then
      pings = pings + 1
      process.send(msg:from(), "pong")
    elseif topic == "stop" then
      process.send(msg:from(), "count", pings)
      return pings
    end
  end
end

-- Driver. p = {host, messages = M}.
function M.driver(p)
  local m = p.messages
  local pong, err = process.spawn("bench:pingpong_pong", p.host)
  if not pong then error(err) end
  local inbox = process.inbox()
  local pongs, other = 0, 0
  local t0 = bench.now()
  for i = 1, m do
    process.send(pong, "ping")
    local msg = inbox:receive()
    if msg:topic() == "pong" then pongs = pongs + 1 else other = other + 1 end
    if i & 4095 == 0 then bench.progress(i) end
  end
  local t1 = bench.now()
  process.send(pong, "stop")
  local pings = -1
  while true do
    local msg = inbox:receive()
    if msg:topic() == "count" then pings = msg:payload():data(); break end
    other = other + 1
  end
  return {ops = m, t0 = t0, t1 = t1, pongs = pongs, pings = pings, unexpected = other}
end

return M
