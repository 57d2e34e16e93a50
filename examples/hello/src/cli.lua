local function main(...): integer
  local msg, err = funcs.call("demo:greet", (...))
  if err then
    io.eprint("greet failed: " .. tostring(err))
    return 1
  end
  io.print(msg)
  return 0
end

return { main = main }
