-- Price every line concurrently with funcs.async, then add them up.
local function run(order: {items: {any}})
  local futures = {}
  for i, item in ipairs(order.items) do
    futures[i] = funcs.async("chain:price", item)
  end
  local sum = 0
  for i, f in ipairs(futures) do
    local v = f:response():receive()
    if errors.is(v, errors.INVALID) or type(v) ~= "userdata" then
      return nil, errors.wrap(v, "line " .. i)
    end
    sum = sum + v:data()
  end
  return {lines = #order.items, total = sum}
end

return { run = run }
