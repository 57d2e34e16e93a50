-- idle (the parked process): report "up", block receiving on the inbox; on "stop" pass it
-- on to the process spawned before this one (`prev`), acknowledge and exit.
--
-- Kept apart from the driver (idle.lua) as a real application keeps one process per entry
-- file: every live process instantiates the prototypes of its own entry's chunk, so bundling
-- the driver's code here would count the driver's bytecode once per idle process.
local M = {}

function M.proc(driver, prev)
  local inbox = process.inbox()
  process.send(driver, "up")
  local msg = inbox:receive()
  if prev ~= "" then process.send(prev, "stop") end
  process.send(driver, "ack")
end

return M
