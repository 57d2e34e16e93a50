-- Two versions of a long-running process for the upgrade suite.
local function v1()
  assert(process.registry.register("upgrade.target"))
  local inbox = process.inbox()
  while true do
    local msg = inbox:receive()
    local topic, p = msg:topic(), msg:payload()
    local data = p and p:data()
    if topic == "ping" then
      process.send(msg:from(), "pong", "v1")
    elseif topic == "upgrade" then
      process.upgrade(data.to, data.arg)
      error("upgrade returned")
    end
  end
end

local function v2(arg)
  local inbox = process.inbox()
  while true do
    local msg = inbox:receive()
    local topic, p = msg:topic(), msg:payload()
    if topic == "ping" then
      process.send(msg:from(), "pong", "v2:" .. tostring(arg))
    elseif topic == "fail" then
      error("v2 failed")
    elseif topic == "exit" then
      return "v2 done"
    end
  end
end

return { v1 = v1, v2 = v2 }
