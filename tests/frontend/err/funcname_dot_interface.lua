-- error: 2:14: <name> expected near 'interface'
function obj.interface() end
