-- error: 2:1: break outside a loop at line 2 near 'break'
break
