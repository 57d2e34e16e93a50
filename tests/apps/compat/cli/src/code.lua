local function main(n)
  return tonumber(n)
end
return { main = main }
