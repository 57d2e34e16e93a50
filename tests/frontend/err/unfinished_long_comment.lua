-- error: 4:1: unfinished long comment (starting at line 2) near <eof>
--[==[ comment ]]
]=]
