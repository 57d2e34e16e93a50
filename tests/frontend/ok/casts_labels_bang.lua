-- Casts (`as`, `::`), labels (`::name::`), goto and postfix `!`.
type Point = {x: number, y: number}
local v: any = {x = 1, y = 2}
local p = v as Point
local q = v :: Point
assert(p == v and q == v)
local pt = ({x = 1, y = 2} as Point)
assert(pt.x == 1)

-- `as` and `!` bind tighter than any binary operator; `::` just below them.
local a, b = 2, 3
assert(a + b as number == 5)
assert(a * b :: number == 6)
assert(-a as number == -2)
assert(2 ^ b as number == 8)
local maybe: {field: number}? = {field = 4}
assert((maybe!).field == 4)
assert(maybe! ~= nil)
local s = "x"
assert(#s! == 1)

-- Labels versus casts.
local i = 0
::top::
i = i + 1
if i < 3 then goto top end
assert(i == 3)
:: spaced ::
for k = 1, 3 do
  if k == 2 then goto continue end
  i = i + 10
  ::continue::
end
assert(i == 23)

-- A statement ending in an erased cast followed by `(`: a new statement, not a call.
local called = false
local function mark() called = true end
local y = v as Point
(mark)()
assert(called and y == v)
local z = v!
;(mark)()
assert(z == v)
