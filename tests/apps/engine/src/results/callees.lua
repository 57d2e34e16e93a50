local C = {}
function C.two_values() return "first", 42 end
function C.returns_string_error() return "value", "plain failure" end
function C.returns_not_found() return nil, errors.new({message = "no such thing", kind = errors.NOT_FOUND, details = {id = 7}}) end
function C.returns_plain_error_object() return nil, errors.new("kindless") end
function C.raises_object() error(errors.new({message = "raised object", kind = errors.CONFLICT, retryable = true})) end
function C.raises_string() error("raised string") end
function C.returns_wrapped()
  local inner = errors.new({message = "inner", kind = errors.INVALID})
  return nil, errors.wrap(inner, "outer context")
end
function C.second_is_number() return "ok", 5 end
function C.echo(v) return v end
function C.proc_returns_invalid() return nil, errors.new({message = "bad input", kind = errors.INVALID}) end
function C.proc_memory_hog()
  local t = {}
  for i = 1, 1e9 do t[i] = string.rep("x", 1024) .. i end
end
return C
