-- error: 2:12: <name> expected near 'is'
function M.is() end
