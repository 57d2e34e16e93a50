-- error: 2:26: '>' expected near '='
local b: Box<Box<number> = nil
