-- 5.1 string escapes: \x, \z, \u and unknown escapes drop the backslash.
assert("\65\066\0671" == "ABC1")
assert("a\tb" == "a" .. string.char(9) .. "b")
assert("\a\b\f\n\r\v" == string.char(7, 8, 12, 10, 13, 11))
assert("\\" == string.char(92) and "\"" == '"' and '\'' == "'")
assert("x41" == "x41")
assert("z  a" == "z  a")
assert("u{48}" == "u{48}")
assert("d+" == "d+" and "%d+" == "%d+")
assert("." == "." and ("a.b"):gsub(".", "/") == "///")
assert("line1\
line2" == "line1\nline2")
assert([[
raw\d]] == "raw\\d")
assert([==[a]]b]==] == "a]]b")
assert(#"\0" == 1)
local pattern = "^[%w-_]+$"
assert(("a-b_c"):match(pattern))
