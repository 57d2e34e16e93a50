-- error: 2:15: <name> expected near 'fun'
local f = obj:fun()
