-- The acceptance test runner: each argument is the id of a `meta.type: test` function.
local function main(...)
  local ids = {...}
  local failed = {}
  local passed = 0
  for _, id in ipairs(ids) do
    local ok, res, err = pcall(funcs.call, id)
    if not ok then
      failed[#failed + 1] = {id = id, error = "raised: " .. tostring(res)}
    elseif err then
      failed[#failed + 1] = {id = id, error = tostring(err)}
    else
      passed = passed + 1
    end
  end
  return {passed = passed, failed = failed}
end

return { main = main }
