-- A scriptable process for the acceptance tests.
--
-- opts: {trap = bool, name = string, report = pid, ignore_cancel = bool, link = pid,
--        monitor = pid, ctx_key = string}
-- Inbox topics: "exit" (return the payload), "fail" (error with the payload), "ping"
-- (reply "pong" with the payload to the sender), "link"/"monitor" (with a pid), "ctx"
-- (reply the ctx value of the payload key), "call" (reply "called" with funcs.call(payload)).
-- Events: forwarded to `report` as a table; CANCEL ends the process with "cancelled"
-- unless ignore_cancel.
local function main(opts)
  opts = opts or {}
  if opts.trap then process.set_options({trap_links = true}) end
  if opts.name then assert(process.registry.register(opts.name)) end
  if opts.link then assert(process.link(opts.link)) end
  if opts.monitor then assert(process.monitor(opts.monitor)) end
  local inbox, events = process.inbox(), process.events()
  if opts.report then process.send(opts.report, "ready", process.pid()) end
  while true do
    local r = channel.select{inbox:case_receive(), events:case_receive()}
    if r.channel == events then
      local ev = r.value
      if opts.report then
        local err = ev.result and ev.result.error
        process.send(opts.report, "event", {
          kind = ev.kind, from = ev.from, reason = ev.reason,
          error = err and err:message() or nil,
          at = ev.at, me = process.pid(),
        })
      end
      if ev.kind == process.event.CANCEL and not opts.ignore_cancel then
        return "cancelled"
      end
    else
      local msg = r.value
      local topic = msg:topic()
      local p = msg:payload()
      local data = p and p:data()
      if topic == "exit" then
        return data
      elseif topic == "fail" then
        error(data or "boom")
      elseif topic == "ping" then
        process.send(msg:from(), "pong", data)
      elseif topic == "link" then
        process.send(msg:from(), "linked", process.link(data) == true)
      elseif topic == "monitor" then
        process.send(msg:from(), "monitored", process.monitor(data) == true)
      elseif topic == "ctx" then
        process.send(msg:from(), "ctx", (ctx.get(data)))
      elseif topic == "call" then
        local v, err = funcs.call(data)
        process.send(msg:from(), "called", v or tostring(err))
      end
    end
  end
end

return { main = main }
