-- error: 2:11: unfinished string near '"abc'
local s = "abc
