-- `type` is an ordinary name; dialect words stay legal only where go-lua allows them.
assert(type(1) == "number")
local msg = {type = "event", is = true, as = 1, readonly = 2, interface = 3, asserts = 4, keyof = 5, extends = 6}
assert(msg.type == "event" and msg.is and msg.as == 1 and msg.readonly == 2)
assert(msg.interface == 3 and msg.asserts == 4)
msg.type = "other"
assert(msg["keyof"] == 5 and msg["extends"] == 6 and msg["typeof"] == nil)
local type_ = type
local function kind_of(v) return type_(v) end
assert(kind_of("x") == "string")

local obj = {}
function obj:is(v) return v == 1 end
function obj:as() return "as" end
obj.interface = function(x) return x end
function obj:readonly() return true end
function obj:asserts() return true end
assert(obj:is(1) and obj:as() == "as" and obj.interface(2) == 2 and obj:readonly() and obj:asserts())
assert(obj.is(obj, 1))

-- `type` as a local/global name and as a call.
local type_name = type({})
assert(type_name == "table")
do
  local type = function() return "shadowed" end
  assert(type() == "shadowed")
end
