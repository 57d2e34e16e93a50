-- error: 2:18: <name> expected near 'as'
local function f(as) end
