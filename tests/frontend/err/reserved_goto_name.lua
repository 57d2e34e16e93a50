-- error: 2:7: <name> expected near 'goto'
local goto = 1
