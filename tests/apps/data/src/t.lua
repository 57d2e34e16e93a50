-- Minimal assertions for the data-services acceptance tests: each raises with a readable
-- message.
local t = {}

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function t.eq(got, want, what)
  if got ~= want then
    error((what or "value") .. ": expected " .. show(want) .. ", got " .. show(got), 2)
  end
end

function t.ok(cond, what)
  if not cond then error((what or "condition") .. " is false", 2) end
end

function t.is_nil(v, what)
  if v ~= nil then error((what or "value") .. ": expected nil, got " .. show(v), 2) end
end

function t.contains(s, part, what)
  if type(s) ~= "string" or not string.find(s, part, 1, true) then
    error((what or "string") .. ": " .. show(s) .. " does not contain " .. show(part), 2)
  end
end

-- err must be an error object of `kind` whose message contains `part` (when given).
function t.err(err, kind, part, what)
  if type(err) ~= "userdata" then
    error((what or "error") .. ": expected an error object, got " .. show(err), 2)
  end
  if kind ~= nil and err:kind() ~= kind then
    error((what or "error") .. ": expected kind " .. show(kind) .. ", got " .. show(err:kind()) .. " (" .. err:message() .. ")", 2)
  end
  if part ~= nil and not string.find(err:message(), part, 1, true) then
    error((what or "error") .. ": message " .. show(err:message()) .. " does not contain " .. show(part), 2)
  end
end

-- Compare two arrays of scalars.
function t.list(got, want, what)
  local g, w = {}, {}
  for i, v in ipairs(got) do g[i] = tostring(v) end
  for i, v in ipairs(want) do w[i] = tostring(v) end
  local gs, ws = table.concat(g, ","), table.concat(w, ",")
  if gs ~= ws then
    error((what or "list") .. ": expected {" .. ws .. "}, got {" .. gs .. "}", 2)
  end
end

-- Turn a table of test functions into an entry method: `run("__list")` returns the sorted
-- test names, `run(name)` runs one test (raising on failure) and returns true.
function t.suite(M)
  return function(name)
    if name == "__list" then
      local names = {}
      for k in pairs(M) do names[#names + 1] = k end
      table.sort(names)
      return names
    end
    local f = M[name]
    if not f then error("no such test: " .. tostring(name)) end
    f()
    return true
  end
end

return t
