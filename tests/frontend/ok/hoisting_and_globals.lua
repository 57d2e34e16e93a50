-- Top-level types are hoisted: usable before their declaration, recursive, injected as globals.
local early = Tree:is({value = 1, children = {{value = 2}}})
assert(early)

type Tree = {value: number, children?: {Tree}}

local deep, err = Tree:is({value = 1, children = {{value = "x"}}})
assert(deep == nil and err == "children[1].value: expected number, got string", err)

-- Globals are set only if nil; the chunk's own calls still reach its type.
assert(Tree ~= nil and Tree == __wippy_T.Tree)

type A = {b: B?}
type B = {a: A?}
assert(A:is({b = {a = {b = nil}}}))

-- Built-in names are never injected; calls on them reach the built-in types.
assert(string.format("%d", 3) == "3")
assert(string:is("s") == "s")
assert(integer(5) == 5)
assert(number:kind() == "number")
assert(select(2, boolean:is(1)) == "expected boolean, got number")
