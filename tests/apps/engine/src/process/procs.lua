local P = {}

function P.quick() end

function P.adder(a, b) return a + b end

function P.failing() error("exec child failed") end

function P.echo()
  local msg = process.inbox():receive()
  process.send(msg:from(), "pong", msg:payload():data())
end

function P.waits_cancel()
  local parent
  local ev = process.events():receive()
  -- reply to whoever cancelled us
  process.send(ev.from, "cancelled", ev.reason)
  return "stopped"
end

function P.forever()
  while true do time.sleep("1s") end
end

return P
