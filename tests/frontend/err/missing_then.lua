-- error: 2:6: 'then' expected near 'x'
if a x end
