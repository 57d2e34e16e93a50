-- error: 2:6: '=' or 'in' expected near ':'
for i: number = 1, 2 do end
