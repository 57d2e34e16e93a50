-- State model: modules, imports, require, read-only shared tables (spec lua-api §3.1, §3.3).
local M = {}

function M.require_is_global_lookup()
  t.ok(require("json") == json, "listed module via require")
  t.ok(require("helpers") == helpers, "import alias via require")
  local ok, err = pcall(require, "nonexistent")
  t.eq(ok, false)
  t.contains(err, "module 'nonexistent' not found")
end

function M.imports_bind_library_values()
  t.eq(helpers.double(4), 8)
  t.eq(helpers.json_ok(), true, "library sees its own modules")
  t.eq(enc.encode({1}), "[1]", "built-in module imported under an alias")
end

function M.library_state_is_per_process()
  -- the library chunk runs once per state: its table is shared within the state
  helpers.counter = (helpers.counter or 0) + 1
  t.eq(helpers.counter, 1)
end

function M.shared_tables_are_read_only()
  local ok, err = pcall(function() string.upper = nil end)
  t.eq(ok, false)
  t.contains(err, "read-only")
  ok = pcall(function() table.x = 1 end)
  t.eq(ok, false)
end

function M.globals_are_per_process()
  my_global = "mine"
  t.eq(_G.my_global, "mine")
end

function M.absent_functions()
  t.is_nil(load, "load")
  t.is_nil(loadstring, "loadstring")
  t.is_nil(dofile, "dofile")
  t.is_nil(debug, "debug")
  t.eq(type(unpack), "function", "5.1 unpack alias")
end

function M.channel_and_process_always_present()
  t.eq(type(channel.new), "function")
  t.eq(type(process.pid), "function")
  t.eq(type(coroutine.spawn), "function")
  t.eq(type(errors.new), "function")
end

return M
