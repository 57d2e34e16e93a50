-- error: 2:7: decimal escape too large near '\256'
s = "a\256"
