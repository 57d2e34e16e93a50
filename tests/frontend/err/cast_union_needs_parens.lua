-- error: 2:25: unexpected symbol near '?'
local y = x as number | ?
