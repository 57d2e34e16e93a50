-- error: 2:9: unexpected symbol near '<'
local x <const> = 1
