-- error: 2:3: syntax error near '+'
x + 1
