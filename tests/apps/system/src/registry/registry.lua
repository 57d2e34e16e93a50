-- The registry module: reads, snapshots, versions, changes applied from Lua.
local M = {}

local function ids(entries)
  local out = {}
  for _, e in ipairs(entries) do out[e.id] = e end
  return out
end

local function count(entries) return #entries end

function M.get_and_find()
  local e, err = registry.get("system:puppet")
  t.is_nil(err)
  t.eq(e.id, "system:puppet")
  t.eq(e.kind, "process.lua")
  t.eq(type(e.meta), "table")
  t.eq(e.data.method, "main")
  local none, err2 = registry.get("system:nope")
  t.is_nil(none)
  t.err(err2, errors.NOT_FOUND, "entry not found: system:nope")
  local found = ids(registry.find({[".kind"] = "process.lua", [".ns"] = "system"}))
  t.ok(found["system:puppet"] and found["system:runner"], "process entries")
  local tests = registry.find({["meta.suite"] = "registry", ["meta.type"] = "test"})
  t.ok(count(tests) >= 6, "registry tests found: " .. count(tests))
  t.eq(count(registry.find({["~meta.suite"] = "^regis"})), count(tests), "regex")
  t.eq(count(registry.find({["^meta.suite"] = "regi"})), count(tests), "prefix")
  t.eq(count(registry.find({["$meta.suite"] = "istry"})), count(tests), "suffix")
  t.eq(count(registry.find({[".name"] = "get_*", [".ns"] = "registry"})), 1, "name glob")
  -- Keys of a nested meta table are ignored (upstream quirk): everything matches.
  local all = registry.snapshot():entries()
  t.eq(count(registry.find({meta = {suite = "registry"}})), count(all), "nested meta ignored")
  t.eq(count(registry.find({kind = "process.lua"})), count(all), "bare kind ignored")
end

function M.parse_id()
  local id = registry.parse_id("app.ns:some.name")
  t.eq(id.ns, "app.ns")
  t.eq(id.name, "some.name")
  id = registry.parse_id("bare")
  t.eq(id.ns, "")
  t.eq(id.name, "bare")
end

function M.snapshots()
  local snap = registry.snapshot()
  local entries = snap:entries()
  t.ok(#entries > 10, "entries")
  t.eq(snap:get("system:t").kind, "library.lua")
  local _, err = snap:get("nope:nope")
  t.err(err, errors.NOT_FOUND)
  local ns = snap:namespace("registry")
  for _, e in ipairs(ns) do t.eq(registry.parse_id(e.id).ns, "registry") end
  t.eq(#snap:find({[".ns"] = "registry"}), #ns)
  t.eq(snap:version():id(), registry.current_version():id())
  t.eq(snap:version():string(), "v" .. snap:version():id(), "upstream's v<id> form")
  local _, err2 = registry.snapshot_at(0)
  t.err(err2, errors.INVALID)
  local _, err3 = registry.snapshot_at(99999)
  t.err(err3, errors.NOT_FOUND)
end

local HELLO = [[
local function greet(name) return "hello " .. name end
return { greet = greet }
]]

-- Hot-add a function.lua entry, call it, update it, delete it.
function M.hot_add_function()
  local before = registry.current_version():id()
  local changes = registry.snapshot():changes()
  local same = changes:create({
    id = "dyn:hello", kind = "function.lua", meta = {},
    data = {source = HELLO, method = "greet"},
  })
  t.ok(same == changes, "create returns the same Changes")
  t.eq(#changes:ops(), 1)
  t.eq(changes:ops()[1].kind, "entry.create")
  local v, err = changes:apply()
  t.is_nil(err)
  t.ok(v:id() > before, "new version")
  t.eq(v:previous():id(), before, "previous")
  t.eq(funcs.call("dyn:hello", "bob"), "hello bob")
  -- Update the code at run time.
  local upd = registry.snapshot():changes():update({
    id = "dyn:hello", kind = "function.lua", meta = {},
    data = {source = HELLO:gsub("hello ", "hi "), method = "greet"},
  })
  assert(upd:apply())
  t.eq(funcs.call("dyn:hello", "bob"), "hi bob")
  assert(registry.snapshot():changes():delete("dyn:hello"):apply())
  local r, err2 = funcs.call("dyn:hello", "bob")
  t.is_nil(r)
  t.err(err2, errors.NOT_FOUND, "no handler registered for target")
end

function M.versions_and_apply_version()
  local v1 = registry.current_version()
  assert(registry.snapshot():changes():create({id = "dyn:cfg", kind = "app.config", data = {x = 1}}):apply())
  local v2 = registry.current_version()
  t.ok(v2:id() > v1:id())
  t.eq(registry.get("dyn:cfg").data.x, 1)
  t.eq(registry.apply_version(v1), true, "back to v1")
  t.eq(registry.current_version():id(), v1:id())
  local gone, err = registry.get("dyn:cfg")
  t.is_nil(gone)
  t.err(err, errors.NOT_FOUND)
  t.eq(registry.apply_version(v2:id()), true, "forward again by id")
  t.eq(registry.get("dyn:cfg").data.x, 1)
  local hist = registry.history()
  local seen = {}
  for _, v in ipairs(hist:versions()) do seen[v:id()] = true end
  t.ok(seen[v1:id()] and seen[v2:id()], "history lists both")
  t.eq(hist:get_version(v2:id()):id(), v2:id())
  local old = hist:snapshot_at(v1)
  t.is_nil((old:get("dyn:cfg")), "v1 snapshot has no dyn:cfg")
  t.ok(#registry.versions() >= 2)
  local ok, e2 = registry.apply_version(999999)
  t.eq(ok, false)
  t.ok(e2 ~= nil, "unknown version fails")
  assert(registry.snapshot():changes():delete("dyn:cfg"):apply())
end

-- One rejected entry rolls the whole change back.
function M.rejected_change_rolls_back()
  local before = registry.current_version():id()
  local changes = registry.snapshot():changes()
  changes:create({id = "dyn:ok", kind = "function.lua", data = {source = HELLO, method = "greet"}})
  changes:create({id = "dyn:bad", kind = "process.service", data = {process = "system:puppet", host = "node:control"}})
  local v, err = changes:apply()
  t.is_nil(v)
  t.contains(tostring(err), "invalid host: node:control")
  t.eq(registry.current_version():id(), before, "no new version")
  t.is_nil((registry.get("dyn:ok")), "dyn:ok rolled back")
  local r, e2 = funcs.call("dyn:ok", "x")
  t.is_nil(r)
  t.err(e2, errors.NOT_FOUND)
  -- Bad entries are refused by the Changes methods.
  local c = registry.snapshot():changes()
  local x, e3 = c:create({kind = "app.config"})
  t.is_nil(x)
  t.err(e3, errors.INVALID)
  local y, e4 = c:create({id = "dyn:k", kind = 5})
  t.is_nil(y)
  t.err(e4, errors.INVALID)
  local z, e5 = c:apply()
  t.is_nil(z)
  t.err(e5, errors.INVALID, "no changes to apply")
end

function M.build_delta()
  local from = {
    {id = "d:a", kind = "app.config", data = {v = 1}},
    {id = "d:b", kind = "app.config", data = {v = 1}},
  }
  local to = {
    {id = "d:b", kind = "app.config", data = {v = 2}},
    {id = "d:c", kind = "app.config", data = {v = 1}},
  }
  local ops = registry.build_delta(from, to)
  local kinds = {}
  for _, op in ipairs(ops) do kinds[op.entry.id] = op.kind end
  t.eq(kinds["d:a"], "entry.delete")
  t.eq(kinds["d:b"], "entry.update")
  t.eq(kinds["d:c"], "entry.create")
  t.eq(#ops, 3)
end

return M
