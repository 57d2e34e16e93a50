local C = {}
local calls = 0
function C.square(x) return x * x end
function C.nothing() end
function C.slow_echo(v) time.sleep("5ms"); return v end
function C.fails() return nil, errors.new({message = "nope", kind = errors.INVALID}) end
function C.read_ctx(k) return ctx.get(k) end
function C.counter() calls = calls + 1; return calls end
function C.chain(n) if n == 0 then return 1 end return 2 * funcs.call("timefuncs:chain", n - 1) end
function C.static_wait(parent, i)
  local go = process.listen("go")
  process.send(parent, "ready", process.pid())
  go:receive()
  return i
end
function C.my_pid() return process.pid() end
return C
