-- error: 2:12: unexpected symbol near 'fun'
local t = {fun = 1}
