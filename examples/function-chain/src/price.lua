local function run(item: any): (number?, any)
  local valid, err = funcs.call("chain:validate", item)
  if err then
    return nil, err
  end
  return mathlib.round2(valid.qty * valid.unit)
end

return { run = run }
