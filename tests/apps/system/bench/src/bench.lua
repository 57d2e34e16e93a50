local function find_n(n, filter)
  local r
  for _ = 1, n do r = registry.find(filter) end
  return #r
end

local function get_n(n, id)
  local e
  for _ = 1, n do e = registry.get(id) end
  return e.kind
end

-- Spawn a monitored child, make it exit, wait for its EXIT; n times.
local function monitor_exit_n(n)
  local events = process.events()
  for _ = 1, n do
    local pid = process.spawn_monitored("bench:child", "bench:processes")
    process.send(pid, "go")
    local ev = events:receive()
    assert(ev.kind == process.event.EXIT)
  end
  return n
end

local function lookup_n(n, name)
  assert(process.registry.register(name))
  local p
  for _ = 1, n do p = process.registry.lookup(name) end
  process.registry.unregister(name)
  return p
end

local function child()
  process.inbox():receive()
end

return { find_n = find_n, get_n = get_n, monitor_exit_n = monitor_exit_n, lookup_n = lookup_n, child = child }
