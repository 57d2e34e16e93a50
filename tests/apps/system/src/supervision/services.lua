-- Processes run as supervised services by the supervision suite.
local REC = "supervision.recorder"

local function log(tag, what)
  -- A process service counts as running once it is spawned, before its first step has
  -- registered a name: wait for the recorder's name, or the message is dropped (no such name).
  while not process.registry.lookup(REC) do time.sleep("1ms") end
  process.send(REC, "log", {tag = tag, what = what, at = time.now():unix_nano()})
end

-- Keeps a log of {tag, what, at}; "get" replies with it on topic "log".
local function recorder()
  assert(process.registry.register(REC))
  local inbox, events = process.inbox(), process.events()
  local entries = {}
  while true do
    local r = channel.select{inbox:case_receive(), events:case_receive()}
    if r.channel == events then
      if r.value.kind == process.event.CANCEL then return "stopped" end
    else
      local msg = r.value
      if msg:topic() == "log" then
        entries[#entries + 1] = msg:payload():data()
      elseif msg:topic() == "get" then
        process.send(msg:from(), "log", entries)
      end
    end
  end
end

-- Crashes right after recording its start.
local function flaky(tag)
  log(tag, "start")
  error("crash " .. tag)
end

-- Records its start and returns normally.
local function oneshot(tag)
  log(tag, "start")
  return "done"
end

-- Records its start and fails with a returned string: non-retryable.
local function badconf(tag)
  log(tag, "start")
  return nil, "bad config"
end

-- Records start and stop (on CANCEL).
local function dep(tag)
  log(tag, "start")
  local events = process.events()
  while true do
    local e = events:receive()
    if e.kind == process.event.CANCEL then
      log(tag, "stop")
      return "stopped"
    end
  end
end

return { recorder = recorder, flaky = flaky, oneshot = oneshot, badconf = badconf, dep = dep }
