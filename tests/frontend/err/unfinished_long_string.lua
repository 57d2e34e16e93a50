-- error: 4:1: unfinished long string (starting at line 2) near <eof>
local s = [[abc

