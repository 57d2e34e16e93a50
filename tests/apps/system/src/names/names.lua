-- process.registry (LOCAL scope), names as destinations, spawn-or-signal.
local M = {}
local HOST = "system:processes"
local PUPPET = "system:puppet"

local function start(opts, spawn_fn)
  opts = opts or {}
  opts.report = process.pid()
  local ready = process.listen("ready")
  local pid = assert((spawn_fn or process.spawn_monitored)(PUPPET, HOST, opts))
  t.eq(t.recv(ready, "5s", "ready"), pid)
  process.unlisten(ready)
  return pid
end

function M.register_lookup_unregister()
  t.eq(process.registry.register("names.me"), true)
  t.eq(process.registry.register("names.me"), true, "idempotent")
  t.eq(process.registry.lookup("names.me"), process.pid())
  t.eq(process.registry.unregister("names.me"), true)
  t.eq(process.registry.unregister("names.me"), false)
  local pid, err = process.registry.lookup("names.me")
  t.is_nil(pid)
  t.err(err, errors.NOT_FOUND, "name not registered")
end

function M.conflict_and_release_on_exit()
  local events = process.events()
  local other = start({name = "names.taken"})
  t.eq(process.registry.lookup("names.taken"), other)
  local ok, err = process.registry.register("names.taken")
  t.is_nil(ok)
  t.err(err, errors.ALREADY_EXISTS, "name already registered")
  process.send("names.taken", "exit")
  local ev = t.recv(events, "5s", "exit")
  t.eq(ev.from, other)
  local pid, err2 = process.registry.lookup("names.taken")
  t.is_nil(pid, "name released with its process")
  t.err(err2, errors.NOT_FOUND)
  t.eq(process.registry.register("names.taken"), true, "free again")
  process.registry.unregister("names.taken")
end

function M.names_are_destinations()
  local pong = process.listen("pong")
  local pid = start({name = "names.echo"}, process.spawn)
  t.eq(process.send("names.echo", "ping", "hello"), true)
  t.eq(t.recv(pong, "5s", "pong"), "hello")
  t.eq(process.monitor("names.echo"), true)
  t.eq(process.unmonitor("names.echo"), true)
  t.eq(process.cancel("names.echo"), true)
  local ok, err = process.send("names.nobody", "ping", 1)
  t.is_nil(ok)
  t.err(err, errors.NOT_FOUND, "could not resolve 'names.nobody' as PID or registered name")
  local _ = pid
end

function M.register_other_pid_and_argument_orders()
  local pid = start()
  t.eq(process.registry.register("names.a", pid), true, "name, pid")
  t.eq(process.registry.register("names.b", process.registry.LOCAL, pid), true, "name, scope, pid")
  t.eq(process.registry.register("names.c", pid, process.registry.LOCAL), true, "name, pid, scope")
  for _, n in ipairs({"names.a", "names.b", "names.c"}) do
    t.eq(process.registry.lookup(n), pid, n)
  end
  process.send(pid, "exit")
  local events = process.events()
  t.recv(events, "5s", "exit")
  for _, n in ipairs({"names.a", "names.b", "names.c"}) do
    t.is_nil((process.registry.lookup(n)), n .. " released")
  end
end

function M.other_scopes_need_clustering()
  for _, scope in ipairs({process.registry.CONSISTENT, process.registry.EVENTUAL, process.registry.STRONG}) do
    local ok, err = process.registry.register("names.global", scope)
    t.is_nil(ok)
    t.err(err, errors.UNAVAILABLE, "requires clustering")
  end
  local ok, err = process.registry.unregister("names.global", process.registry.EVENTUAL)
  t.is_nil(ok)
  t.err(err, errors.UNAVAILABLE, "requires clustering")
  t.eq(process.registry.LOCAL, 0)
  ok, err = process.registry.register("names.bad", "not-a-pid")
  t.err(err, errors.INVALID, "invalid pid format")
end

-- with_name: the first spawn creates the process, later ones signal it.
function M.spawn_or_signal()
  local events = process.events()
  local pong = process.listen("pong")
  local sp = process.with_context({}):with_name("names.singleton")
  local first = assert(sp:spawn_monitored(PUPPET, HOST, {}))
  local second = assert(sp:with_message("exit", "second"):spawn(PUPPET, HOST, {}))
  t.eq(second, first, "same process")
  local ev = t.recv(events, "5s", "exit")
  t.eq(ev.from, first)
  t.eq(ev.result.value, "second", "the message reached the existing process")
  t.quiet(pong)
end

return M
