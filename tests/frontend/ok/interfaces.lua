-- interface blocks: erased as statements, hoisted as run-time types at top level.
interface Reader
  function read(self, n: number): string?
  function close(self): ()
end
interface Named
  function name(self): string
end
interface NamedReader: Reader, Named
  function reset(self)
end

local r = {
  read = function(self, n) return nil end,
  close = function(self) end,
}
assert(Reader:is(r))
assert(Reader:kind() == "interface")
local bad, err = Reader:is({read = function() end})
assert(bad == nil and err == "close: expected function, got nil", err)
local nr = {read = r.read, close = r.close, name = function() return "n" end, reset = function() end}
assert(NamedReader:is(nr))
local nr2, e2 = NamedReader:is({read = r.read, close = r.close, reset = function() end})
assert(nr2 == nil and e2 == "name: expected function, got nil", e2)

local function use(x: Reader): Reader? return x end
assert(use(r) == r)

do
  interface Local
    function f(self)
  end
end
assert(Local == nil)  -- nested declarations have no run-time value
