-- error: 3:1: ambiguous syntax (function call x new statement) near '('
f()
(g)()
