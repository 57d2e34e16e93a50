-- Generic functions, type parameters with constraints, generic aliases.
local function head<T>(xs: {T}): T?
  return xs[1]
end
assert(head({7, 8}) == 7 and head({}) == nil)

local function kv<K, V>(k: K, v: V): {key: K, value: V}
  return {key = k, value = v}
end
assert(kv("a", 1).value == 1)

type HasName = {name: string}
local function greet<T: HasName>(obj: T): string
  return "Hello, " .. obj.name
end
assert(greet({name = "Alice"}) == "Hello, Alice")

local id = function<T>(x: T): T return x end
assert(id(5) == 5)

local function nested<A, B: {x: Box<A>}>(a: A, b: B): A
  return a
end
assert(nested(1, {x = {value = 1}}) == 1)

type Box<T> = {value: T}
type Pair<A, B> = {first: A, second: B}
type Res<T, E> = {ok: true, value: T} | {ok: false, error: E}

-- Instantiation takes type objects (chunk types or exported ones), as in go-lua.
type S = string
type N = number
assert(Box:kind() == "generic")
local BoxS = Box(S)
assert(BoxS:is({value = "x"}))
local bad, err = BoxS:is({value = 1})
assert(bad == nil and err == "value: expected string, got number", err)

local R = Res(N, S)
assert(R:is({ok = true, value = 1}))
assert(R:is({ok = false, error = "e"}))
local r2, e2 = R:is({ok = false, error = 1})
assert(r2 == nil and e2 == "error: expected string, got number", e2)

local names = {}
for n, c in Pair:tparams() do names[#names + 1] = n end
assert(names[1] == "A" and names[2] == "B")

-- `>>` closing two generic lists.
local nested_box: Box<Box<number>> = {value = {value = 1}}
type BB = Box<Box<number>>
assert(BB:is(nested_box))
