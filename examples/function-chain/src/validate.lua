local function run(item: any)
  local ok, err = mathlib.Item:is(item)
  if not ok then
    return nil, errors.new({message = "invalid item: " .. tostring(err), kind = errors.INVALID})
  end
  return item
end

return { run = run }
