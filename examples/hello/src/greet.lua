type Greeting = {text: string @min_len(1), shout: boolean?}

local function run(who: string?): string
  local g: Greeting = Greeting({text = "hi " .. (who or "there")})
  return g.text
end

return { run = run }
