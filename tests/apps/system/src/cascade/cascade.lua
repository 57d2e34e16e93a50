-- Link cascades through chains and stars of processes.
local M = {}
local HOST = "system:processes"
local PUPPET = "system:puppet"

local function start(opts)
  opts = opts or {}
  opts.report = process.pid()
  local ready = process.listen("ready")
  local pid = assert(process.spawn_monitored(PUPPET, HOST, opts))
  t.eq(t.recv(ready, "5s", "ready"), pid)
  process.unlisten(ready)
  return pid
end

-- Collect `n` EXIT events: {pid = error message or false}.
local function exits(events, n)
  local out, count = {}, 0
  while count < n do
    local ev = t.recv(events, "10s", "exit " .. count)
    if ev.kind == process.event.EXIT then
      out[ev.from] = t.exit_error(ev) or false
      count = count + 1
    end
  end
  return out
end

function M.chain_goes_down_both_ways()
  local N = 20
  local events = process.events()
  local pids = {}
  for i = 1, N do
    pids[i] = start({link = pids[i - 1]})
  end
  process.send(pids[N // 2], "fail", "root cause")
  local got = exits(events, N)
  local root, linked = 0, 0
  for _, pid in ipairs(pids) do
    local e = got[pid]
    if e and string.find(e, "root cause", 1, true) then root = root + 1
    elseif e == "linked process failed" then linked = linked + 1 end
  end
  t.eq(root, 1, "root cause exits")
  t.eq(linked, N - 1, "cascaded exits")
end

function M.star_hub_takes_every_leaf_down()
  local LEAVES = 30
  local events = process.events()
  local hub = start()
  local leaves = {}
  for i = 1, LEAVES do leaves[i] = start({link = hub}) end
  process.send(leaves[7], "fail", "leaf broke")
  local got = exits(events, LEAVES + 1)
  t.eq(got[hub], "linked process failed", "hub")
  local linked = 0
  for i, pid in ipairs(leaves) do
    if i ~= 7 then
      t.eq(got[pid], "linked process failed", "leaf " .. i)
      linked = linked + 1
    end
  end
  t.eq(linked, LEAVES - 1)
end

function M.trapping_hub_survives_a_leaf()
  local LEAVES = 10
  local events = process.events()
  local reports = process.listen("event")
  local hub = start({trap = true})
  local leaves = {}
  for i = 1, LEAVES do leaves[i] = start({link = hub}) end
  process.send(leaves[3], "fail", "one leaf")
  local got = exits(events, 1)
  t.ok(got[leaves[3]], "the failing leaf exits")
  local rep = t.recv(reports, "5s", "hub LINK_DOWN report")
  t.eq(rep.kind, process.event.LINK_DOWN)
  t.eq(rep.me, hub)
  t.eq(rep.from, leaves[3])
  t.quiet(events, "100ms", "nobody else exits")
  -- The hub failing itself still cascades to the remaining leaves.
  process.send(hub, "fail", "hub broke")
  got = exits(events, LEAVES)
  for i, pid in ipairs(leaves) do
    if i ~= 3 then t.eq(got[pid], "linked process failed", "leaf " .. i) end
  end
end

-- Monitors do not cascade: a watcher of a failed process is told, not killed.
function M.monitors_do_not_cascade()
  local events = process.events()
  local target = start()
  local watcher = start({monitor = target})
  process.send(target, "fail", "x")
  local got = exits(events, 1)
  t.ok(got[target])
  t.quiet(events, "100ms")
  process.send(watcher, "exit")
  got = exits(events, 1)
  t.eq(got[watcher], false, "watcher exits normally")
end

return M
