-- error: 2:18: <name> expected near '('
local x: number @(1) = 1
