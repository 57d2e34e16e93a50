local __wippy_T=__wippy_types("type Tree = {value: number, children?: {Tree}}\ntype A = {b: B?}\ntype B = {a: A?}",_ENV,function(c,e)return function(s,...)local o,r=c(s,...)if o then return r end e(r,2)end end);-- Top-level types are hoisted: usable before their declaration, recursive, injected as globals.
local early = __wippy_T[1](__wippy_T.Tree,{value = 1, children = {{value = 2}}})
assert(early)

;                                             

local deep, err = __wippy_T[1](__wippy_T.Tree,{value = 1, children = {{value = "x"}}})
assert(deep == nil and err == "children[1].value: expected number, got string", err)

-- Globals are set only if nil; the chunk's own calls still reach its type.
assert(Tree ~= nil and Tree == __wippy_T.Tree)

;               
;               
assert(__wippy_T[1](__wippy_T.A,{b = {a = {b = nil}}}))

-- Built-in names are never injected; calls on them reach the built-in types.
assert(string.format("%d", 3) == "3")
assert(__wippy_T[1](__wippy_T.string,"s") == "s")
assert(__wippy_T.integer(5) == 5)
assert(__wippy_T[2](__wippy_T.number) == "number")
assert(select(2, __wippy_T[1](__wippy_T.boolean,1)) == "expected boolean, got number")
