local H = {}
function H.double(x) return x * 2 end
function H.json_ok() return json.encode({a = 1}) == '{"a":1}' end
return H
