-- call: funcs.call of a trivial function from a process, M times, one call at a time.
local M = {}

-- The callee (a function.lua entry on its default pool).
function M.target(x)
  return x + 1
end

-- Driver. p = {host, messages = M}.
function M.driver(p)
  local m = p.messages
  local ok, wrong, failed = 0, 0, 0
  local first_err
  local t0 = bench.now()
  for i = 1, m do
    local r, err = funcs.call("bench:call_target", i)
    if err then
      failed = failed + 1
      first_err = first_err or tostring(err)
    elseif r == i + 1 then
      ok = ok + 1
    else
      wrong = wrong + 1
    end
    if i & 1023 == 0 then bench.progress(i) end
  end
  local t1 = bench.now()
  return {ops = m, t0 = t0, t1 = t1, ok = ok, wrong = wrong, failed = failed, unexpected = 0, error = first_err}
end

return M
