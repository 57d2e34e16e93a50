-- Monitor / link / cancel / terminate acceptance tests (spec lua-api §3.7).
local M = {}
local HOST = "system:processes"
local PUPPET = "system:puppet"

-- Spawn a puppet reporting to us and wait until its main runs.
local function puppet(opts, spawn_fn)
  opts = opts or {}
  opts.report = opts.report or process.pid()
  local ready = process.listen("ready")
  local pid, err = (spawn_fn or process.spawn)(PUPPET, HOST, opts)
  assert(pid, err)
  local got = t.recv(ready, "5s", "ready")
  process.unlisten(ready)
  t.eq(got, pid, "ready pid")
  return pid
end

local function event_of(events, kind)
  local ev = t.recv(events, "5s", kind)
  t.eq(ev.kind, kind, "event kind")
  return ev
end

function M.monitor_normal_exit()
  local events = process.events()
  local pid = puppet({}, process.spawn_monitored)
  process.send(pid, "exit", 42)
  local ev = event_of(events, process.event.EXIT)
  t.eq(ev.from, pid, "from")
  t.eq(ev.result.value, 42, "result.value")
  t.is_nil(ev.result.error, "result.error")
  t.eq(type(ev.at), "number", "at")
  t.quiet(events)
end

function M.monitor_error_exit()
  local events = process.events()
  local pid = puppet({}, process.spawn_monitored)
  process.send(pid, "fail", "kaboom")
  local ev = event_of(events, process.event.EXIT)
  t.contains(t.exit_error(ev), "kaboom", "error")
  t.is_nil(ev.result.value, "value")
end

function M.monitor_terminate()
  local events = process.events()
  local pid = puppet({}, process.spawn_monitored)
  t.eq(process.terminate(pid), true, "terminate")
  local ev = event_of(events, process.event.EXIT)
  t.eq(t.exit_error(ev), "process terminated")
end

function M.monitor_cancel_with_reason()
  local events = process.events()
  local reports = process.listen("event")
  local pid = puppet({}, process.spawn_monitored)
  t.eq(process.cancel(pid, "stop now"), true, "cancel")
  local rep = t.recv(reports, "5s", "cancel report")
  t.eq(rep.kind, process.event.CANCEL)
  t.eq(rep.reason, "stop now")
  t.eq(rep.from, process.pid(), "canceller")
  local ev = event_of(events, process.event.EXIT)
  t.eq(ev.result.value, "cancelled")
  t.is_nil(ev.result.error)
end

function M.monitor_existing_then_unmonitor()
  local events = process.events()
  local pid = puppet()
  t.eq(process.monitor(pid), true, "monitor")
  local ok, err = process.monitor(pid)
  t.is_nil(ok)
  t.err(err, errors.INTERNAL, "already monitoring pid")
  t.eq(process.unmonitor(pid), true, "unmonitor")
  t.eq(process.unmonitor(pid), true, "unmonitor again")
  process.send(pid, "exit")
  t.quiet(events, "100ms")
end

function M.monitor_dead_pid_fails()
  local events = process.events()
  local pid = puppet({}, process.spawn_monitored)
  process.send(pid, "exit")
  event_of(events, process.event.EXIT)
  local ok, err = process.monitor(pid)
  t.is_nil(ok)
  t.err(err, errors.INTERNAL, "pid not registered")
  ok, err = process.link(pid)
  t.is_nil(ok)
  t.err(err, errors.INTERNAL, "pid not registered")
  ok, err = process.terminate(pid)
  t.is_nil(ok)
  t.err(err, errors.INTERNAL, "process not found")
end

function M.unresolvable_destinations()
  local ok, err = process.monitor("no.such.name")
  t.is_nil(ok)
  t.err(err, errors.NOT_FOUND, "could not resolve 'no.such.name' as PID or registered name")
  ok, err = process.cancel("no.such.name")
  t.err(err, errors.NOT_FOUND, "could not resolve")
  ok, err = process.terminate("{system:nohost|0x00042}")
  t.err(err, errors.INTERNAL, "host not found")
  ok, err = process.monitor()
  t.err(err, errors.INVALID, "monitor requires a destination argument")
  local raised = pcall(process.link, 42)
  t.eq(raised, false, "non-string destination raises")
end

function M.link_normal_exit_sends_nothing()
  assert(process.set_options({trap_links = true}))
  local events = process.events()
  local pid = puppet({}, process.spawn_linked)
  process.send(pid, "exit", "fine")
  t.quiet(events, "100ms")
  process.set_options({trap_links = false})
end

function M.link_abnormal_exit_trapped()
  assert(process.set_options({trap_links = true}))
  local events = process.events()
  local pid = puppet({}, process.spawn_linked)
  process.send(pid, "fail", "went wrong")
  local ev = event_of(events, process.event.LINK_DOWN)
  t.eq(ev.from, pid, "from")
  t.contains(t.exit_error(ev), "went wrong")
  process.set_options({trap_links = false})
end

function M.link_terminate_is_abnormal()
  assert(process.set_options({trap_links = true}))
  local events = process.events()
  local pid = puppet({}, process.spawn_linked)
  process.terminate(pid)
  local ev = event_of(events, process.event.LINK_DOWN)
  t.eq(t.exit_error(ev), "process terminated")
  process.set_options({trap_links = false})
end

function M.link_cancel_is_normal()
  assert(process.set_options({trap_links = true}))
  local events = process.events()
  local pid = puppet({}, process.spawn_linked)
  process.cancel(pid)
  t.quiet(events, "150ms")
  process.set_options({trap_links = false})
end

function M.link_untrapped_kills_the_linked_process()
  local events = process.events()
  local b = puppet()
  local a = puppet({link = b}, process.spawn_monitored)
  process.send(b, "fail", "b died")
  local ev = event_of(events, process.event.EXIT)
  t.eq(ev.from, a, "A exits")
  t.eq(t.exit_error(ev), "linked process failed")
end

function M.spawn_linked_monitored_gets_both()
  assert(process.set_options({trap_links = true}))
  local events = process.events()
  local pid = puppet({}, process.spawn_linked_monitored)
  process.send(pid, "fail", "both")
  local kinds = {}
  for _ = 1, 2 do
    local ev = t.recv(events, "5s", "event")
    kinds[ev.kind] = t.exit_error(ev)
  end
  t.contains(kinds[process.event.EXIT], "both")
  t.contains(kinds[process.event.LINK_DOWN], "both")
  process.set_options({trap_links = false})
end

function M.unlink_prevents_link_down()
  assert(process.set_options({trap_links = true}))
  local events = process.events()
  local pid = puppet()
  t.eq(process.link(pid), true)
  t.eq(process.link(pid), true, "idempotent")
  t.eq(process.unlink(pid), true)
  process.send(pid, "fail", "nobody cares")
  t.quiet(events, "100ms")
  process.set_options({trap_links = false})
end

function M.options()
  t.eq(process.get_options().trap_links, false)
  t.eq(process.set_options({trap_links = true}), true)
  t.eq(process.get_options().trap_links, true)
  local ok, err = process.set_options({trap_links = "yes"})
  t.eq(ok, false)
  t.err(err, errors.INVALID, "trap_links must be a boolean")
  ok, err = process.set_options({upgradable = true})
  t.err(err, errors.INVALID, "option upgradable is not supported")
  ok, err = process.set_options(5)
  t.err(err, errors.INVALID, "options parameter must be a table")
  process.set_options({trap_links = false})
  t.eq(process.get_options().trap_links, false)
end

-- A deadline escalates to terminate when the process ignores the CANCEL.
function M.cancel_deadline_forms()
  for _, arg in ipairs({50, "50ms", {reason = "hurry", deadline = 50}, time.parse_duration("50ms")}) do
    local events = process.events()
    local reports = process.listen("event")
    local pid = puppet({ignore_cancel = true}, process.spawn_monitored)
    t.eq(process.cancel(pid, arg), true, "cancel")
    local rep = t.recv(reports, "5s", "cancel report")
    t.eq(rep.kind, process.event.CANCEL)
    if type(arg) == "table" then t.eq(rep.reason, "hurry") end
    local ev = event_of(events, process.event.EXIT)
    t.eq(t.exit_error(ev), "process terminated", "escalated")
    process.unlisten(reports)
  end
  -- Reason then deadline.
  local events = process.events()
  local pid = puppet({ignore_cancel = true}, process.spawn_monitored)
  t.eq(process.cancel(pid, "later", 30), true)
  t.eq(t.exit_error(event_of(events, process.event.EXIT)), "process terminated")
  -- A bad second argument.
  local ok, err = process.cancel(pid, true)
  t.is_nil(ok)
  t.err(err, errors.INVALID, "second argument")
end

-- A process that honours CANCEL before the deadline is not terminated.
function M.cancel_deadline_honoured()
  local events = process.events()
  local pid = puppet({}, process.spawn_monitored)
  t.eq(process.cancel(pid, "10s"), true)
  local ev = event_of(events, process.event.EXIT)
  t.eq(ev.result.value, "cancelled")
  t.is_nil(ev.result.error)
end

function M.terminate_by_name()
  local events = process.events()
  local pid = puppet({name = "topology.victim"}, process.spawn_monitored)
  t.eq(process.terminate("topology.victim"), true)
  local ev = event_of(events, process.event.EXIT)
  t.eq(ev.from, pid)
  t.eq(t.exit_error(ev), "process terminated")
end

-- Function executions have PIDs registered in the topology: they can be monitored.
function M.function_calls_can_be_monitored()
  local events = process.events()
  local got = process.listen("fnpid")
  local fut = funcs.async("topology:slow_fn_impl_entry", process.pid())
  local fpid = t.recv(got, "5s", "function pid")
  t.eq(process.monitor(fpid), true, "monitor a running function call")
  local ev = t.recv(events, "5s", "function EXIT")
  t.eq(ev.kind, process.event.EXIT)
  t.eq(ev.from, fpid)
  t.eq(ev.result.value, "slow done")
  local _ = fut
end

-- Called by function_calls_can_be_monitored: tells the caller its PID, then takes a while.
function M.slow_fn_impl(caller)
  process.send(caller, "fnpid", process.pid())
  time.sleep("100ms")
  return "slow done"
end

return M
