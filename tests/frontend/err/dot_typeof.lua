-- error: 2:13: <name> expected near 'typeof'
local x = t.typeof
