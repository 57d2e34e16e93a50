-- Result and error conventions across process/function boundaries (spec lua-api §3.2, §3.5).
local M = {}
local HOST = "engine:processes"

function M.first_value_only()
  local v, err = funcs.call("results:two_values")
  t.is_nil(err)
  t.eq(v, "first", "only the first return value is the result")
end

function M.returned_string_error()
  local v, err = funcs.call("results:returns_string_error")
  t.is_nil(v, "first value discarded")
  t.err(err, errors.INTERNAL, "plain failure")
  t.eq(err:retryable(), false, "string errors are not retryable")
end

function M.returned_error_object_keeps_kind()
  local v, err = funcs.call("results:returns_not_found")
  t.is_nil(v)
  t.err(err, errors.NOT_FOUND, "no such thing")
  t.eq(err:details().id, 7, "details survive")
end

function M.unknown_kind_becomes_internal()
  local v, err = funcs.call("results:returns_plain_error_object")
  t.err(err, errors.INTERNAL, "kindless")
end

function M.raised_error_object()
  local v, err = funcs.call("results:raises_object")
  t.err(err, errors.CONFLICT, "raised object")
  t.eq(err:retryable(), true)
end

function M.raised_string()
  local v, err = funcs.call("results:raises_string")
  t.err(err, errors.INTERNAL, "raised string")
  t.contains(err:message(), "results:raises_string:", "position prefix")
end

function M.wrap_context_dropped()
  local v, err = funcs.call("results:returns_wrapped")
  t.err(err, errors.INVALID)
  t.eq(err:message(), "inner", "the outer wrap context is dropped at the boundary")
end

function M.second_value_non_error_is_success()
  local v, err = funcs.call("results:second_is_number")
  t.is_nil(err)
  t.eq(v, "ok")
end

function M.unknown_function()
  local v, err = funcs.call("results:does_not_exist")
  t.is_nil(v)
  t.err(err, errors.NOT_FOUND, "no handler registered for target")
end

function M.invalid_function_ids()
  local v, err = funcs.call("")
  t.err(err, errors.INVALID, "function ID required")
  v, err = funcs.call("nonamespace")
  t.err(err, errors.INVALID, "namespace required in function ID")
  v, err = funcs.call("ns:")
  t.err(err, errors.INVALID, "name required in function ID")
  local ok = pcall(funcs.call, 42)
  t.eq(ok, false, "non-string id raises")
end

function M.values_cross_as_copies()
  local input = {a = {1, 2, 3}, s = "x", f = 1.5, n = 3}
  local out = funcs.call("results:echo", input)
  t.eq(out.a[3], 3); t.eq(out.s, "x"); t.eq(out.f, 1.5); t.eq(out.n, 3)
  t.eq(math.type(out.n), "integer", "integers stay integers")
  t.eq(math.type(out.f), "float", "floats stay floats")
  t.ok(out ~= input, "a copy, not the same table")
  local fn_out = funcs.call("results:echo", {f = print})
  t.is_nil(fn_out.f, "functions become nil")
  local e_out = funcs.call("results:echo", errors.new({message = "carried", kind = errors.TIMEOUT}))
  t.err(e_out, errors.TIMEOUT, "carried", "error objects survive")
end

function M.process_exit_error_kinds()
  local v, err = process.exec("results:proc_returns_invalid", HOST)
  t.err(err, errors.INVALID, "bad input")
  v, err = process.exec("results:proc_memory_hog", HOST)
  t.err(err, errors.INTERNAL, "not enough memory")
end

function M.number_formatting()
  t.eq(tostring(10 / 2), "5")
  t.eq(tostring(0.1 + 0.2), "0.30000000000000004")
  t.eq(tostring(1e15), "1000000000000000")
  t.eq(tostring(3), "3")
  t.eq(1 / 0 .. "", "+Inf")
  local v = funcs.call("results:echo", 2.0)
  t.eq(tostring(v), "2", "an integral float prints without .0 after crossing")
end

return M
