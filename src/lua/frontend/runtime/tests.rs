//! Unit tests of the type runtime on a real Lua state.

use mlua::Lua;

use super::super::translate;
use super::install_type_runtime;

fn run(src: &str) -> mlua::Result<()> {
    let lua = Lua::new();
    install_type_runtime(&lua)?;
    let t = translate(src, "t").map_err(|e| mlua::Error::RuntimeError(e.to_string()))?;
    lua.load(t.code()).set_name("=t").exec()
}

#[test]
fn record_is_and_cast() {
    run(r#"
type Point = {x: number, y: number}
local p, err = Point:is({x = 1, y = 2})
assert(p and err == nil)
local q, e2 = Point:is({x = 1})
assert(q == nil and e2 == "y: expected number, got nil", e2)
local ok, e3 = pcall(Point, {x = "a", y = 1})
assert(not ok and e3:find("x: expected number, got string", 1, true), e3)
assert(Point({x = 1, y = 2}).x == 1)
"#)
    .unwrap();
}

/// The raw fast path and the safe checker agree: fast `valid` ⇒ safe `Ok`, safe `Ok` ⇒ fast not
/// `invalid`.
#[test]
fn fast_path_agrees_with_safe_checker() {
    use super::check;
    use super::fast;
    use super::object::TypeObj;

    let types = [
        "{a: number}",
        "{a: integer, b?: string}",
        "{a: number @min(0) @max(10), s?: string @min_len(2) @pattern(\"^x\")}",
        "{number}",
        "{string} @min_len(1)",
        "{[string]: number}",
        "{[number]: {x: boolean}}",
        "{tag: \"a\", v: number} | {tag: \"b\", w: string}",
        "{a: number} & {b: number}",
        "{next?: Node}",
        "Box<number>",
        "{f: (number) -> number, g?: fun()}",
        "{a: 1 | 2.5 | true | nil}",
        "{a: table, b: userdata?, c: thread?, e: error?}",
        "{a: Unknown}",
        "{a: keyof({x: number})}",
        "{a: any, b: never?}",
        "{x: number[]}",
        "{a: {b: {c: {d: string}}}}",
    ];
    let values = [
        "{}",
        "{a = 1}",
        "{a = 1.5}",
        "{a = 11}",
        "{a = -1}",
        "{a = 'x'}",
        "{a = 1, b = 'str'}",
        "{a = 1, s = 'xy'}",
        "{a = 1, s = 'yy'}",
        "{a = 1, s = 'x'}",
        "{1, 2, 3}",
        "{1, 'x'}",
        "{'a'}",
        "{x = 1, y = 2}",
        "{[1] = {x = true}}",
        "{[1] = {x = 1}}",
        "{tag = 'a', v = 1}",
        "{tag = 'b', w = 1}",
        "{a = 1, b = 2}",
        "{next = {next = {}}}",
        "{value = 1}",
        "{value = 'x'}",
        "{f = print}",
        "{f = print, g = 1}",
        "{a = true}",
        "{a = 2.5}",
        "{a = {}, b = io and io.stdout or nil}",
        "{a = 'x'}",
        "{x = {1, 2}}",
        "{x = {1, nil, 'z'}}",
        "{a = {b = {c = {d = 's'}}}}",
        "{a = {b = {c = {d = 1}}}}",
        "1",
        "'str'",
        "nil",
    ];
    let lua = mlua::Lua::new();
    super::install_type_runtime(&lua).unwrap();
    let mut checked = 0;
    let mut fast_valid = 0;
    for (ti, t) in types.iter().enumerate() {
        let src = format!(
            "type Node = {{next?: Node}}\ntype Box<T> = {{value: T}}\ntype T{ti} = {t}\nreturn T{ti}"
        );
        let tr = super::super::translate(&src, "f").unwrap();
        let obj: mlua::AnyUserData = lua.load(tr.code()).eval().unwrap();
        let obj = obj.borrow::<TypeObj>().unwrap().clone();
        for v in values {
            let value: mlua::Value = lua.load(format!("return {v}")).eval().unwrap();
            let fast = fast::accepts(&lua, &value, &obj.c);
            let slow = check::validate_safe(&lua, None, &value, &obj.c);
            fast_valid += usize::from(fast == Some(true));
            match (fast, &slow) {
                (Some(true), Err(e)) => panic!("{t} / {v}: fast valid, safe says {e}"),
                (Some(false), Ok(())) => panic!("{t} / {v}: fast invalid, safe valid"),
                _ => checked += 1,
            }
        }
    }
    assert_eq!(checked, types.len() * values.len());
    assert!(
        fast_valid >= 40,
        "fast path decided only {fast_valid} valid pairs"
    );
}
