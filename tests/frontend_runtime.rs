//! Run-time type objects on the real VM: validation messages, validators, reflection,
//! comparison, identity, injection rules and types shared between modules.

use mlua::{Lua, Value};
use wippy::lua::frontend::{install_type_runtime, translate};

fn state() -> Lua {
    let lua = Lua::new();
    install_type_runtime(&lua).unwrap();
    lua
}

/// Translate and run `src` as chunk `name`, returning its first result.
fn exec(lua: &Lua, name: &str, src: &str) -> mlua::Result<Value> {
    let t = translate(src, name).map_err(|e| mlua::Error::RuntimeError(e.to_string()))?;
    lua.load(t.code()).set_name(format!("@{name}")).eval()
}

fn run(src: &str) {
    let lua = state();
    if let Err(e) = exec(&lua, "main", src) {
        panic!("{e}");
    }
}

/// `(ok, message)` of `T:is(v)` evaluated in a chunk declaring `decl`.
fn is_msg(decl: &str, value: &str) -> Option<String> {
    let lua = state();
    let src = format!("{decl}\nlocal v, e = T:is({value})\nassert(e == nil or v == nil)\nreturn e");
    match exec(&lua, "m", &src).unwrap() {
        Value::Nil => None,
        Value::String(s) => Some(s.to_str().unwrap().to_owned()),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn primitives() {
    assert_eq!(is_msg("type T = number", "1.5"), None);
    assert_eq!(is_msg("type T = integer", "2.0"), None);
    assert_eq!(
        is_msg("type T = integer", "2.5").unwrap(),
        "expected integer, got number"
    );
    assert_eq!(
        is_msg("type T = string", "1").unwrap(),
        "expected string, got number"
    );
    assert_eq!(
        is_msg("type T = boolean", "nil").unwrap(),
        "expected boolean, got nil"
    );
    assert_eq!(is_msg("type T = any", "nil"), None);
    assert_eq!(
        is_msg("type T = never", "1").unwrap(),
        "expected never, got number"
    );
    assert_eq!(is_msg("type T = table", "{}"), None);
    assert_eq!(
        is_msg("type T = nil", "false").unwrap(),
        "expected nil, got boolean"
    );
}

#[test]
fn literals_and_unions() {
    assert_eq!(is_msg(r#"type T = "on" | "off""#, r#""on""#), None);
    assert_eq!(
        is_msg(r#"type T = "on" | "off""#, r#""x""#).unwrap(),
        r#"expected "on" | "off", got string"#
    );
    assert_eq!(is_msg("type T = 1 | 2", "2.0"), None);
    assert_eq!(
        is_msg("type T = true", "false").unwrap(),
        "expected true, got boolean"
    );
    // One plausible member: its precise message is reported.
    assert_eq!(
        is_msg("type T = number @min(1) | string @min_len(1)", "0").unwrap(),
        "value 0 is less than min 1"
    );
    assert_eq!(
        is_msg("type T = number @min(1) | string @min_len(1)", r#""""#).unwrap(),
        "length 0 is less than min_len 1"
    );
    assert_eq!(
        is_msg("type T = number | string", "{}").unwrap(),
        "expected number | string, got table"
    );
    // Tagged unions pick the member whose literal discriminants match.
    let res = "type T = {ok: true, value: number} | {ok: false, error: string}";
    assert_eq!(
        is_msg(res, "{ok = true, value = 'x'}").unwrap(),
        "value: expected number, got string"
    );
    assert_eq!(
        is_msg(res, "{ok = false, error = 1}").unwrap(),
        "error: expected string, got number"
    );
    assert_eq!(is_msg(res, "{ok = false, error = 'e'}"), None);
}

#[test]
fn records_arrays_maps() {
    let cfg = "type T = {host: string, port: integer, timeout?: number, tags?: {string}, meta?: {[string]: number}}";
    assert_eq!(is_msg(cfg, "{host = 'h', port = 80}"), None);
    assert_eq!(
        is_msg(cfg, "{host = 'h'}").unwrap(),
        "port: expected integer, got nil"
    );
    assert_eq!(
        is_msg(cfg, "{host = 'h', port = 80, timeout = 'x'}").unwrap(),
        "timeout: expected number, got string"
    );
    assert_eq!(
        is_msg(cfg, "{host = 'h', port = 80, tags = {'a', 2}}").unwrap(),
        "tags[2]: expected string, got number"
    );
    assert_eq!(
        is_msg(cfg, "{host = 'h', port = 80, meta = {a = 1, b = 'x'}}").unwrap(),
        "meta.b: expected number, got string"
    );
    assert_eq!(
        is_msg(cfg, "{host = 'h', port = 80, meta = {[1] = 1}}").unwrap(),
        "meta[key]: expected string, got number"
    );
    assert_eq!(is_msg(cfg, "'str'").unwrap(), "expected table, got string");
    assert_eq!(is_msg(cfg, "{host = 'h', port = 80, extra = true}"), None);
    assert_eq!(
        is_msg("type T = {{number}}", "{{1}, {2, 'x'}}").unwrap(),
        "[2][2]: expected number, got string"
    );
    assert_eq!(is_msg("type T = number[]", "{1, 2, 3}"), None);
    let nested = "type T = {user: {name: string, address: {city: string}}}";
    assert_eq!(
        is_msg(nested, "{user = {name = 'a', address = {city = 5}}}").unwrap(),
        "user.address.city: expected string, got number"
    );
    assert_eq!(
        is_msg("type T = {a: number} & {b: string}", "{a = 1}").unwrap(),
        "b: expected string, got nil"
    );
    assert_eq!(
        is_msg("type T = {a: number} & {b: string}", "{a = 1, b = 's'}"),
        None
    );
    assert_eq!(is_msg("type T = (number) -> number", "print"), None);
    assert_eq!(
        is_msg("type T = fun(): ()", "1").unwrap(),
        "expected function, got number"
    );
}

#[test]
fn validators() {
    let user = r#"type T = {
    age: number @min(0) @max(150),
    name: string @min_len(1) @max_len(5),
    email?: string @pattern("^[^@]+@[^@]+$"),
    tags?: {string} @min_len(1),
}"#;
    assert_eq!(is_msg(user, "{age = 30, name = 'bob'}"), None);
    assert_eq!(
        is_msg(user, "{age = -1, name = 'bob'}").unwrap(),
        "age: value -1 is less than min 0"
    );
    assert_eq!(
        is_msg(user, "{age = 151.5, name = 'bob'}").unwrap(),
        "age: value 151.5 is greater than max 150"
    );
    assert_eq!(
        is_msg(user, "{age = 1, name = ''}").unwrap(),
        "name: length 0 is less than min_len 1"
    );
    assert_eq!(
        is_msg(user, "{age = 1, name = 'abcdef'}").unwrap(),
        "name: length 6 is greater than max_len 5"
    );
    assert_eq!(
        is_msg(user, "{age = 1, name = 'a', email = 'nope'}").unwrap(),
        r#"email: value "nope" does not match pattern "^[^@]+@[^@]+$""#
    );
    assert_eq!(is_msg(user, "{age = 1, name = 'a', email = 'a@b'}"), None);
    assert_eq!(
        is_msg(user, "{age = 1, name = 'a', tags = {}}").unwrap(),
        "tags: length 0 is less than min_len 1"
    );
    // Validators on aliases of primitives and arrays.
    assert_eq!(
        is_msg("type T = {string} @min_len(1)", "{}").unwrap(),
        "length 0 is less than min_len 1"
    );
    assert_eq!(
        is_msg("type T = integer @min(-5)", "-6").unwrap(),
        "value -6 is less than min -5"
    );
    assert_eq!(
        is_msg("type T = {number @min(0) @max(100)}", "{85, 101}").unwrap(),
        "[2]: value 101 is greater than max 100"
    );
    // Unknown validators and non-literal arguments are ignored.
    assert_eq!(
        is_msg(
            "local LIMIT = 3\ntype T = number @min(LIMIT) @custom(1)",
            "-100"
        ),
        None
    );
    assert!(
        is_msg("type T = string @pattern(\"(\")", "'x'")
            .unwrap()
            .starts_with("invalid pattern \"(\"")
    );
}

#[test]
fn generics_validate_through_bindings() {
    let decl = "type Box<T> = {value: T}\ntype Tree<T> = {value: T, children?: {Tree<T>}}\ntype S = string\ntype TS = Tree<S>";
    let lua = state();
    exec(
        &lua,
        "g",
        &format!(
            r#"{decl}
assert(TS:is({{value = "a", children = {{{{value = "b"}}}}}}))
local v, e = TS:is({{value = "a", children = {{{{value = 1}}}}}})
assert(e == "children[1].value: expected string, got number", e)
local B = Box(S)
assert(B:kind() == "record" and B:name() == "Box")
local ok, err = pcall(Box, S, S)
assert(not ok and err:find("generic Box expects 1 type arguments, got 2", 1, true), err)
local ok2, err2 = pcall(S, S)
assert(not ok2 and err2:find("type S is not generic", 1, true), err2)
local ok3, err3 = pcall(Box, S, 1)
assert(not ok3 and err3:find("mixed type/value arguments", 1, true), err3)
-- An uninstantiated generic accepts any payload for its parameters.
assert(Box:is({{value = {{}}}}))
"#
        ),
    )
    .unwrap();
}

#[test]
fn cast_raises_at_the_callers_line() {
    let lua = state();
    let err = exec(
        &lua,
        "app",
        "type P = {x: number}\n\nlocal p = P({x = 'a'})\n",
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("app:3: x: expected number, got string"),
        "{msg}"
    );
    // pcall gets a plain string.
    exec(
        &lua,
        "app2",
        r#"type P = {x: number}
local ok, e = pcall(function() local r = P(5) return r end)
assert(not ok and type(e) == "string" and e == "app2:2: expected table, got number", e)
local ok2, e2 = pcall(P)
assert(not ok2 and e2:find("type P expects at least 1 argument", 1, true), e2)
local ok3, e3 = pcall(P, 1, 2)
assert(not ok3 and e3:find("validation expects 1 value, got 2", 1, true), e3)
assert(string("s") == "s" and number(1) == 1 and any(nil) == nil and unknown(1) == 1)
local ok4, e4 = pcall(function() local r = integer(1.5) return r end)
assert(not ok4 and e4 == "app2:9: expected integer, got number", e4)
"#,
    )
    .unwrap();
}

#[test]
fn reflection() {
    run(r#"
type User = {name: string, age?: number, tags: {string}, meta: {[string]: boolean}, cb: (number, string) -> boolean}
type Status = "pending" | "active" | "done"
type Opt = number?
type Fn = (number) -> (string, boolean)
type Box<T: {id: number}> = {value: T}

assert(User:kind() == "record" and User:name() == "User")
local names = {}
for n, t in User:fields() do names[#names + 1] = n .. ":" .. t:kind() end
assert(table.concat(names, ",") == "name:string,age:number,tags:array,meta:map,cb:function", table.concat(names, ","))
assert(User.name == User.name and User.tags:elem():kind() == "string")
assert(User.meta:key():kind() == "string" and User.meta:val():kind() == "boolean")
assert(User.nope == nil)
local ps = {}
for p in User.cb:params() do ps[#ps + 1] = p:kind() end
assert(table.concat(ps, ",") == "number,string")
assert(User.cb:ret():kind() == "boolean")
assert(Fn:ret():kind() == "tuple")
local vs = {}
for v in Status:variants() do vs[#vs + 1] = tostring(v) end
assert(table.concat(vs, ",") == '"pending","active","done"', table.concat(vs, ","))
assert(Opt:kind() == "optional" and Opt:inner():kind() == "number")
assert(Opt:elem() == nil and User:inner() == nil and Status:fields() == nil)
for n, c in Box:tparams() do assert(n == "T" and c:kind() == "record") end
assert(tostring(User) == "User" and tostring(User.tags) == "{string}")
assert(tostring(Fn) == "Fn")
assert(string:name() == "string" and string:kind() == "string")
local U = User -- not a type name at the call site: no rewrite to a method call
local ok, e = pcall(function() return U.is(5) end)
assert(not ok and tostring(e):find("must be called with ':'", 1, true), tostring(e))
"#);
}

#[test]
fn dot_calls_on_type_names_become_method_calls() {
    run(r#"
type P = {x: number}
assert(P.is({x = 1}))
assert(P["is"]({x = 1}))
assert(P.kind() == "record")
assert(string.is("a") == "a")
assert(string.format("%s", "f") == "f")
"#);
}

#[test]
fn equality_subtyping_and_table_keys() {
    // Built-in type objects are reached by calls on their names only (as in go-lua), so plain
    // values come from declarations or reflection.
    run(r#"
type A = {x: number}
type B = {x: number, y: string}
type N = number
type N2 = number
type I = integer
type Nev = never
type S = string
type Any = any
assert(N == N2 and A == A and A ~= B and N ~= I)
assert(I <= N and I < N and not (N < I) and N <= N and not (N < N))
assert(B <= A and not (A <= B))
assert(Nev <= S and S <= Any and not (Any <= S))
type L = "a" | "b"
assert(L <= S and not (S <= L))
type O = number?
assert(N <= O and not (O <= N))
assert(A.x == N)
"#);
    run(r#"
type A = {x: number}
type N = number
local handlers = {}
handlers[N] = "num"
handlers[A] = "a"
assert(handlers[N] == "num" and handlers[A] == "a" and handlers[__wippy_T.A] == "a")
assert(handlers[__wippy_T.N] == "num")
type B = {x: number, y: string}
type K = keyof(B)
assert(K:is("x") and K:is("y") and not K:is("z"))
type F = B["y"]
assert(F:is("s") and not F:is(1))
type C = N extends number ? "yes" : "no"
assert(C:is("yes") and not C:is("no"))
"#);
}

#[test]
fn globals_are_injected_only_if_nil() {
    let lua = state();
    lua.globals().set("Taken", "keep").unwrap();
    exec(
        &lua,
        "g",
        r#"type Taken = {x: number}
type Fresh = {y: number}
assert(Taken == "keep")                 -- existing global kept
assert(Fresh ~= nil)                    -- new global injected
assert(Taken:is({x = 1}))               -- calls on the name still reach this chunk's type
assert(rawget(_G, "string") == string)  -- built-ins never injected
"#,
    )
    .unwrap();
    // A built-in-named declaration neither shadows the built-in nor becomes a global.
    exec(&lua, "b", "type string = number\nassert(string:is('s') == 's')\nassert(type(string.format) == 'function')").unwrap();
}

#[test]
fn types_are_exported_from_libraries_and_used_elsewhere() {
    let lua = state();
    // A library chunk: its return value becomes the import alias global (spec §3.1).
    let lib = exec(
        &lua,
        "lib",
        r#"type Inner = {id: integer @min(1)}
type Config = {name: string, inner: Inner}
return {Config = Config, Inner = Inner}"#,
    )
    .unwrap();
    lua.globals().set("mylib", lib).unwrap();
    exec(
        &lua,
        "user",
        r#"type Wrap = {inner: mylib.Inner, tag: string}
assert(mylib.Config:is({name = "n", inner = {id = 1}}))
local v, e = mylib.Config:is({name = "n", inner = {id = 0}})
assert(e == "inner.id: value 0 is less than min 1", e)
assert(Wrap:is({inner = {id = 2}, tag = "t"}))
local w, e2 = Wrap:is({inner = {id = "x"}, tag = "t"})
assert(e2 == "inner.id: expected integer, got string", e2)
local cfg = mylib.Config({name = "n", inner = {id = 3}})
assert(cfg.inner.id == 3)
type Missing = {x: nolib.Nope}
local m, e3 = Missing:is({x = 1})
assert(e3 == "x: unknown type nolib.Nope", e3)
"#,
    )
    .unwrap();
}

#[test]
fn cyclic_values_and_aliases_terminate() {
    run(r#"
type Node = {next?: Node}
local a = {}
a.next = a
local v, e = Node:is(a)
assert(v == nil and e:find("too deep", 1, true), e)
type Loop1 = Loop2
type Loop2 = Loop1
local v2, e2 = Loop1:is(1)
assert(v2 == nil and e2:find("too deep", 1, true), e2)
"#);
}

#[test]
fn states_without_types_need_no_runtime() {
    let t = translate("local x: number = 1\nreturn x as number", "c").unwrap();
    assert!(!t.needs_type_runtime());
    let lua = Lua::new(); // no install_type_runtime
    let v: i64 = lua.load(t.code()).eval().unwrap();
    assert_eq!(v, 1);
    let t2 = translate("type X = number\nreturn 1", "c").unwrap();
    assert!(t2.needs_type_runtime());
    assert_eq!(t2.declared_types(), ["X".to_owned()]);
}

#[test]
fn interface_type_checks_methods() {
    run(r#"
interface Shape
  function area(self): number
  name: string
end
local sq = {area = function(self) return 4 end, name = "sq"}
assert(Shape:is(sq))
local v, e = Shape:is({area = 1, name = "x"})
assert(e == "area: expected function, got number", e)
"#);
}
