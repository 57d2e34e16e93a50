-- The events module: bus events as channels, events.send.
local M = {}

function M.custom_events_by_prefix()
  local sub = events.subscribe("acme.*")
  local ch = sub:channel()
  t.ok(sub:channel() == ch, "same channel each call")
  t.eq(events.send("acme.orders", "created", "o-1", {n = 1}), true)
  local ev = t.recv(ch, "5s", "event")
  t.eq(ev.system, "acme.orders")
  t.eq(ev.kind, "created")
  t.eq(ev.path, "o-1")
  t.eq(ev.data.n, 1)
  events.send("acme.deep.system", "k", "p")
  t.eq(t.recv(ch, "5s", "prefix match").system, "acme.deep.system")
  events.send("other", "created", "o-2", 1)
  t.quiet(ch, "100ms")
  events.send("acme.x", "nodata", "p")
  t.is_nil(t.recv(ch, "5s").data, "data absent")
  t.eq(sub:close(), true)
end

function M.kind_filter_and_exact_system()
  local sub = events.subscribe("acme.orders", "deleted")
  local ch = sub:channel()
  events.send("acme.orders", "created", "o-1")
  events.send("acme.orders.sub", "deleted", "o-1")
  events.send("acme.orders", "deleted", "o-2")
  local ev = t.recv(ch, "5s", "deleted")
  t.eq(ev.path, "o-2")
  t.quiet(ch, "100ms")
  sub:close()
end

function M.close_closes_the_channel()
  local sub = events.subscribe("close.test")
  local ch = sub:channel()
  t.eq(sub:close(), true)
  t.eq(sub:close(), true, "idempotent")
  local v, ok = ch:receive()
  t.is_nil(v)
  t.eq(ok, false)
  events.send("close.test", "k", "p")
end

function M.registry_events()
  local sub = events.subscribe("registry", "entry.*")
  local ch = sub:channel()
  assert(registry.snapshot():changes():create({id = "evt:one", kind = "app.config", data = {a = 1}}):apply())
  local ev = t.recv(ch, "5s", "entry.create")
  t.eq(ev.kind, "entry.create")
  t.eq(ev.path, "evt:one")
  t.eq(ev.data.kind, "app.config")
  assert(registry.snapshot():changes():delete("evt:one"):apply())
  t.eq(t.recv(ch, "5s", "entry.delete").kind, "entry.delete")
  sub:close()
end

function M.errors()
  local s, err = events.subscribe("")
  t.is_nil(s)
  t.err(err, errors.INVALID, "system is required")
  local ok, e2 = events.send("a", "", "p")
  t.is_nil(ok)
  t.err(e2, errors.INVALID, "kind is required")
  ok, e2 = events.send("a", "k")
  t.err(e2, errors.INVALID, "path is required")
  t.eq(pcall(events.send, 1, "k", "p"), false, "non-string raises")
end

return M
