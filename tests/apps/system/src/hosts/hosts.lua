-- process.host from Lua: the max_processes limit and live updates of the host entry.
local M = {}
local PUPPET = "system:puppet"

local function host_entry(max)
  return {
    id = "hosts:small", kind = "process.host", meta = {},
    data = {host = {workers = 2, max_processes = max}, lifecycle = {auto_start = true}},
  }
end

function M.max_processes_is_a_real_limit()
  local a = assert(process.spawn(PUPPET, "hosts:small", {}))
  local b = assert(process.spawn(PUPPET, "hosts:small", {}))
  local c, err = process.spawn(PUPPET, "hosts:small", {})
  t.is_nil(c)
  t.err(err, "LimitExceeded", "max processes limit exceeded")
  -- Live update of the entry: a higher limit applies at once; running processes stay.
  assert(registry.snapshot():changes():update(host_entry(3)):apply())
  local c2 = assert(process.spawn(PUPPET, "hosts:small", {}))
  local pong = process.listen("pong")
  for _, pid in ipairs({a, b, c2}) do
    process.send(pid, "ping", pid)
    t.eq(t.recv(pong, "5s", "pong"), pid, "alive after the update")
  end
  local d, err2 = process.spawn(PUPPET, "hosts:small", {})
  t.is_nil(d)
  t.err(err2, "LimitExceeded")
  for _, pid in ipairs({a, b, c2}) do process.send(pid, "exit") end
  assert(registry.snapshot():changes():update(host_entry(2)):apply())
end

return M
