-- Lua 5.3 operator set and precedence.
assert(7 // 2 == 3 and -7 // 2 == -4 and 7 % 3 == 1)
assert(math.type(7 / 7) == "float")
assert(5 & 3 == 1 and 5 | 3 == 7 and 5 ~ 3 == 6 and ~0 == -1)
assert(1 << 4 == 16 and 256 >> 4 == 16)
assert(1 | 2 ~ 3 & 4 << 1 == 3)       -- | < ~ < & < shift
assert(2 ^ 3 ^ 2 == 512)               -- right associative
assert(-2 ^ 2 == -4)                   -- unary binds looser than ^
assert("a" .. "b" .. "c" == "abc")
assert(1 .. 2 == "12")
assert(not nil == true and not 1 == false)
assert(1 + 2 * 3 - 4 / 2 == 5)
assert(3 > 2 == true)
assert((1 < 2) == true and "a" < "b")
assert(#"abc" == 3 and #{1, 2} == 2)
assert(1 and 2 or 3) assert((nil and 1 or 3) == 3)
local t = {f = function(self, x) return x end}
assert(t:f(5) == 5 and t.f(t, 6) == 6)
assert(("x"):rep(3) == "xxx")
assert(0x10 == 16 and 0xff == 255 and 1e2 == 100 and .5 == 0.5 and 3. == 3)
