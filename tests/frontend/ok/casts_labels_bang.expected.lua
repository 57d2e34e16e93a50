__wippy_types("type Point = {x: number, y: number}",_ENV,function(c,e)return function(s,...)local o,r=c(s,...)if o then return r end e(r,2)end end);-- Casts (`as`, `::`), labels (`::name::`), goto and postfix `!`.
;                                  
local v      = {x = 1, y = 2}
local p = v         
local q = v         
assert(p == v and q == v)
local pt = ({x = 1, y = 2}         )
assert(pt.x == 1)

-- `as` and `!` bind tighter than any binary operator; `::` just below them.
local a, b = 2, 3
assert(a + b           == 5)
assert(a * b           == 6)
assert(-a           == -2)
assert(2 ^ b           == 8)
local maybe                   = {field = 4}
assert((maybe ).field == 4)
assert(maybe  ~= nil)
local s = "x"
assert(#s  == 1)

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
local y = v         
;(mark)()
assert(called and y == v)
local z = v 
;(mark)()
assert(z == v)
