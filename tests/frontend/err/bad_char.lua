-- error: 2:7: unexpected symbol near '$'
local $x = 1
