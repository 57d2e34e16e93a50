local function main(order_json: string?): integer
  local order, err = json.decode(order_json or '{"items":[{"sku":"a","qty":2,"unit":1.25},{"sku":"b","qty":1,"unit":10}]}')
  if err then
    io.eprint("bad order: " .. tostring(err))
    return 2
  end
  local result, call_err = funcs.call("chain:total", order)
  if call_err then
    io.eprint("pricing failed: " .. tostring(call_err))
    return 1
  end
  local text = json.encode(result)
  io.print(text)
  return 0
end

return { main = main }
