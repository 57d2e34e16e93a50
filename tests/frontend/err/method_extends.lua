-- error: 2:3: <name> expected near 'extends'
t:extends()
