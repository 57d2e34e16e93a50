-- Assertions and helpers for the system acceptance tests; each assertion raises with a
-- readable message.
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

-- The next value of `ch` within `timeout` (a duration string, default 5s), or raise.
function t.recv(ch, timeout, what)
  local r = channel.select{ch:case_receive(), time.after(timeout or "5s"):case_receive()}
  if r.channel ~= ch then error((what or "receive") .. ": timed out after " .. (timeout or "5s"), 2) end
  return r.value, r.ok
end

-- Nothing arrives on `ch` within `timeout`.
function t.quiet(ch, timeout, what)
  local r = channel.select{ch:case_receive(), time.after(timeout or "50ms"):case_receive()}
  if r.channel == ch then
    local v = r.value
    local shown = type(v) == "table" and (tostring(v.kind) .. " from " .. tostring(v.from)) or show(v)
    error((what or "channel") .. ": unexpected value " .. shown, 2)
  end
end

-- The message of the error carried by an EXIT / LINK_DOWN event (nil for a normal exit).
function t.exit_error(ev)
  local e = ev.result and ev.result.error
  if e == nil then return nil end
  if type(e) == "userdata" then return e:message() end
  return tostring(e)
end

return t
