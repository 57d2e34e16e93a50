local P = {}

function P.ends_with_main()
  coroutine.spawn(function()
    channel.new():receive() -- blocks forever
  end)
  time.sleep("1ms")
  return "main done"
end

function P.child_error()
  coroutine.spawn(function()
    time.sleep("1ms")
    error("child task failed")
  end)
  time.sleep("50ms")
  return "unreachable"
end

function P.deadlock()
  channel.select{}
end

return P
