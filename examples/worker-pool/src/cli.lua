type Result = {id: integer, value: number}

local function main(workers_arg: string?, count_arg: string?): integer
  local workers = tonumber(workers_arg or "4") or 4
  local count = tonumber(count_arg or "100") or 100

  local pids: {string} = {}
  for i = 1, workers do
    local pid, err = process.spawn_monitored("pool:worker", "pool:processes")
    if not pid then
      io.eprint("spawn failed: " .. tostring(err))
      return 1
    end
    pids[i] = pid
  end

  -- Results arrive on their own topic; a collector coroutine sums them into a channel.
  local results = process.listen("result")
  local done = channel.new(1)
  coroutine.spawn(function()
    local sum = 0
    for _ = 1, count do
      local r = results:receive() :: Result
      sum = sum + r.value
    end
    done:send(sum)
  end)

  for n = 1, count do
    process.send(pids[(n - 1) % workers + 1], "job", {id = n, n = n})
  end

  local timeout = time.after("10s")
  local r = channel.select{ done:case_receive(), timeout:case_receive() }
  if r.channel == timeout then
    io.eprint("timed out waiting for results")
    return 1
  end

  io.print(string.format("sum of squares 1..%d over %d workers = %d", count, workers, r.value))
  for _, pid in ipairs(pids) do
    process.cancel(pid, "done")
  end
  -- Wait for every worker to report its exit.
  local events = process.events()
  local exited = 0
  while exited < workers do
    local ev = events:receive()
    if ev.kind == process.event.EXIT then
      exited = exited + 1
    end
  end
  return 0
end

return { main = main }
