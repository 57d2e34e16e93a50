-- spawn (the trivial process): one message to its parent, then it returns (exits normally).
-- Its own entry file, as the Erlang peer's `spawn(fun() -> Parent ! done end)` carries no
-- driver code: each spawn runs this chunk, which builds only this module's closures.
local M = {}

function M.child(parent)
  process.send(parent, "done")
end

return M
