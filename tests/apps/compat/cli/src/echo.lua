local function main(...)
  local s = registry.get("app:settings").data
  io.print("args=" .. table.concat({...}, ","))
  io.print(string.format("greeting=%s answer=%s(%s) who=%s", s.greeting, tostring(s.answer), math.type(s.answer), s.who))
  return 0
end
return { main = main }
