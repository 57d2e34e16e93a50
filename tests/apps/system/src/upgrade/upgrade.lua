-- process.upgrade: hot swap keeping PID, mailbox, names and links.
local M = {}
local HOST = "system:processes"

function M.upgrade_keeps_pid_mailbox_links()
  assert(process.set_options({trap_links = true}))
  local events = process.events()
  local pong = process.listen("pong", {message = true})
  local pid = assert(process.spawn_linked_monitored("upgrade:v1", HOST))
  process.send(pid, "ping")
  local m = t.recv(pong, "5s", "v1 pong")
  t.eq(m:payload():data(), "v1")
  -- The upgrade and a ping queued right behind it: the ping is answered by the new code.
  process.send(pid, "upgrade", {to = "upgrade:v2", arg = "carried"})
  process.send(pid, "ping")
  m = t.recv(pong, "5s", "v2 pong")
  t.eq(m:payload():data(), "v2:carried", "new code, queued message kept")
  t.eq(m:from(), pid, "same pid")
  t.eq(process.registry.lookup("upgrade.target"), pid, "name kept")
  -- Link and monitor kept: the upgraded process failing reaches us as LINK_DOWN + EXIT.
  process.send(pid, "fail")
  local kinds = {}
  for _ = 1, 2 do
    local ev = t.recv(events, "5s", "event")
    t.eq(ev.from, pid)
    kinds[ev.kind] = t.exit_error(ev)
  end
  t.contains(kinds[process.event.EXIT], "v2 failed")
  t.contains(kinds[process.event.LINK_DOWN], "v2 failed")
  process.set_options({trap_links = false})
end

function M.upgrade_to_unknown_entry_fails_the_process()
  local events = process.events()
  local pid = assert(process.spawn_monitored("upgrade:v1", HOST))
  process.send(pid, "upgrade", {to = "upgrade:nope"})
  local ev = t.recv(events, "5s", "exit")
  t.contains(t.exit_error(ev), "upgrade")
end

function M.functions_cannot_upgrade()
  local ok, err = process.upgrade(nil)
  t.is_nil(ok)
  t.err(err, errors.INVALID, "only available to processes")
end

return M
