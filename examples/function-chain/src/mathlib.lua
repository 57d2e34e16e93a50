type Item = {sku: string @min_len(1), qty: integer @min(1), unit: number @min(0)}

local function round2(x: number): number
  return math.floor(x * 100 + 0.5) / 100
end

return { Item = Item, round2 = round2 }
