-- error: 2:7: <name> expected near 'is'
local is = 1
