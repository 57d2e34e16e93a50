-- Every type form parses (spec 4.3 "Type expressions"); run-time meaning is checked elsewhere.
type Mode = "on" | "off"
type Num = 1 | 2.5 | true | false | nil
type Both = {a: number} & {b: string}
type Opt = number?
type OptOpt = {x: string?}?
type Arr1 = {string}
type Arr2 = string[]
type Arr3 = number[][]
type Map1 = {[string]: number}
type Rec = {name: string, age?: number, extra?: {[string]: string},}
type Empty = {}
type Fn1 = (number, string) -> boolean
type Fn2 = ((a: number, b: number) -> number)
type Fn3 = () -> ()
type Fn4 = (...any) -> (number, string)
type Fn5 = fun(x: number): string
type Fn6 = fun()
type Fn7 = fun(a: number, ...string): (boolean, string?)
type Fn8 = (cb: (number) -> number) -> (number) -> number
type RO1 = readonly {number}
type RO2 = readonly {[string]: number}
type RO3 = readonly {x: number}
type Iface = interface {close: () -> (), name: string}
type Keys = keyof(Rec)
type Field = Rec["name"]
type Cond = Mode extends string ? "s" : "n"
type Qual = string.Nope
type Gen = Map1 | Arr1 | Fn1
type KwFields = {type: string, is: boolean, as: number, keyof: string, extends: string, typeof: string, readonly: boolean, interface: string, asserts: string}
local sample = {1, 2}
type Sample = typeof(sample)
type Validated = {string} @min_len(1)
type Ids = number @min(1) | string @min_len(1)
type Wrap = {inner: Rec, tag: Mode, extra?: {[string]: string}}
type Multi =
    {ok: true, value: number}
    | {ok: false, error: string}

local function check(x: unknown): asserts x is string
  assert(type(x) == "string")
end
check("s")
local function is_str(x: any): asserts x
end
local function tuple(): (number, string?)
  return 1
end
assert(tuple() == 1)

assert(Mode:is("on") and not Mode:is("x"))
assert(Arr2:kind() == "array" and Map1:kind() == "map" and Rec:kind() == "record")
assert(Fn1:kind() == "function" and Opt:kind() == "optional" and Mode:kind() == "union")
assert(Both:kind() == "intersection" and Num:kind() == "union" and Empty:kind() == "record")
