-- A typical small process entry (~2 KB): a message loop with a few helpers.
local json = require("json")

local M = {}

local function validate(req)
  if type(req) ~= "table" then
    return nil, errors.new({ message = "request must be a table", kind = errors.INVALID })
  end
  if not req.id or type(req.id) ~= "number" then
    return nil, errors.new({ message = "id is required", kind = errors.INVALID })
  end
  return true
end

local function summarize(items)
  local total, count, names = 0, 0, {}
  for _, item in ipairs(items or {}) do
    total = total + (item.price or 0) * (item.qty or 1)
    count = count + 1
    names[#names + 1] = tostring(item.name)
  end
  return { total = total, count = count, names = table.concat(names, ",") }
end

local function handle(state, topic, payload)
  if topic == "add" then
    local ok, err = validate(payload)
    if not ok then return nil, err end
    state.items[#state.items + 1] = payload
    return #state.items
  elseif topic == "summary" then
    return summarize(state.items)
  elseif topic == "reset" then
    state.items = {}
    return true
  end
  return nil, "unknown topic: " .. tostring(topic)
end

function M.main(...)
  local state = { items = {}, started = os.time() }
  local args = { ... }
  for i, a in ipairs(args) do
    local r, err = handle(state, a.topic, a.payload)
    if err then
      print("failed", i, tostring(err))
    end
  end
  return summarize(state.items)
end

function M.format(v)
  return string.format("%s=%s", tostring(v.k), tostring(v.v))
end

return M
