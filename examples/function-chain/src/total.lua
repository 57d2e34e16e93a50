-- Price every line concurrently with funcs.async, then add them up.
local function run(order: {items: {any}})
  local futures = {}
  for i, item in ipairs(order.items) do
    futures[i] = funcs.async("chain:price", item)
  end
  local sum = 0
  for i, f in ipairs(futures) do
    f:response():receive() -- wait for the result message
    local p, perr = f:result()
    if perr then
      return nil, errors.wrap(perr, "line " .. i)
    end
    sum = sum + p:data()
  end
  return {lines = #order.items, total = sum}
end

return { run = run }
