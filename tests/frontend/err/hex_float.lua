-- error: 2:5: malformed number near '0x1p4'
x = 0x1p4
