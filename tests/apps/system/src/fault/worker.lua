-- Registers w<i>, reports its start, acknowledges every "msg", crashes on "crash",
-- exits on CANCEL.
local function main(i)
  local name = "w" .. i
  assert(process.registry.register(name))
  process.send("fault.collector", "started", i)
  local inbox, events = process.inbox(), process.events()
  while true do
    local r = channel.select{inbox:case_receive(), events:case_receive()}
    if r.channel == events then
      if r.value.kind == process.event.CANCEL then return "stopped" end
    else
      local m = r.value
      if m:topic() == "crash" then error("random crash") end
      process.send("fault.collector", "ack", m:payload():data())
    end
  end
end

return { main = main }
