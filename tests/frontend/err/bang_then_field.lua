-- error: 2:13: unexpected symbol near '.'
local a = x!.y
