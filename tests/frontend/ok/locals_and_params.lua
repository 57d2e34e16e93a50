-- Typed locals, parameters, varargs and returns (spec 4.3 LocalStat/ParList/RetAnnot).
local count: number = 0
local name: string, age: integer = "ann", 42
local maybe: string?
assert(count == 0 and name == "ann" and age == 42 and maybe == nil)

local function g(n: number, s: string?): boolean
  return n > 0 and s == nil
end
assert(g(1) == true and g(1, "x") == false)

local function total(...: number): number
  local t = 0
  for _, v in ipairs({...}) do t = t + v end
  return t
end
assert(total(1, 2, 3) == 6)

local function pair(a: number, ...): (number, number)
  return a, select("#", ...)
end
local p1, p2 = pair(5, "a", "b")
assert(p1 == 5 and p2 == 2)

local function nothing(): ()
end
assert(select("#", nothing()) == 0)

local function two(): number, string
  return 1, "x"
end
local n1, s1 = two()
assert(n1 == 1 and s1 == "x")

local function maybe_fail(ok: boolean): (string?, error?)
  if ok then return "yes", nil end
  return nil, "no"
end
assert(maybe_fail(true) == "yes" and select(2, maybe_fail(false)) == "no")

local inc: (number) -> number = function(v: number): number return v + 1 end
assert(inc(1) == 2)

local function apply(cb: (number) -> number, v: number): (number) -> number
  assert(cb(v) == v + 1)
  return cb
end
assert(apply(inc, 3) == inc)

local M = {}
function M.add(a: number, b: number): number return a + b end
function M:scale(k: number): number return self.base * k end
M.base = 10
assert(M.add(1, 2) == 3 and M:scale(3) == 30)

local f = function(x: string): string return x .. "!" end
assert(f("hi") == "hi!")

-- Lines are preserved exactly.
expect_line(60)
local function multi_line(
  a: number,
  b: {
    name: string,
    tags: {string},
  }
): number
  expect_line(68)
  return a
end
assert(multi_line(1, {name = "x", tags = {}}) == 1)
expect_line(72)
