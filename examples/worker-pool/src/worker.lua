-- A pool worker: square every number it is sent; stop on CANCEL.
local function main(): string
  local inbox = process.inbox()
  local events = process.events()
  while true do
    local r = channel.select{ inbox:case_receive(), events:case_receive() }
    if r.channel == events then
      if r.value.kind == process.event.CANCEL then
        return "stopped"
      end
    else
      local msg = r.value
      local job = msg:payload():data() :: {id: integer, n: number}
      process.send(msg:from(), "result", {id = job.id, value = job.n * job.n})
    end
  end
end

return { main = main }
