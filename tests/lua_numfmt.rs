//! The patched VM formats numbers like go-lua (vendor/lua-src/PATCHES.md).

use mlua::Lua;

fn s(lua: &Lua, expr: &str) -> String {
    lua.load(format!("return tostring({expr})"))
        .eval::<String>()
        .unwrap()
}

#[test]
fn integral_floats_print_without_fraction() {
    let lua = Lua::new();
    assert_eq!(s(&lua, "10/2"), "5");
    assert_eq!(s(&lua, "1.0"), "1");
    assert_eq!(s(&lua, "-3.0"), "-3");
    assert_eq!(s(&lua, "-0.0"), "0");
    assert_eq!(s(&lua, "1e15"), "1000000000000000");
    assert_eq!(s(&lua, "2^53"), "9007199254740992");
    assert_eq!(s(&lua, "1e20"), "1e+20");
    assert_eq!(s(&lua, "2^63"), "9.223372036854776e+18");
    assert_eq!(
        lua.load(r#"return 1.0 .. """#).eval::<String>().unwrap(),
        "1"
    );
    assert_eq!(
        lua.load(r#"return string.format("%s|%s", 2.0, 7)"#)
            .eval::<String>()
            .unwrap(),
        "2|7"
    );
}

#[test]
fn other_floats_use_shortest_round_trip() {
    let lua = Lua::new();
    assert_eq!(s(&lua, "0.1"), "0.1");
    assert_eq!(s(&lua, "1/3"), "0.3333333333333333");
    assert_eq!(s(&lua, "0.1 + 0.2"), "0.30000000000000004");
    assert_eq!(s(&lua, "-2.5"), "-2.5");
    assert_eq!(s(&lua, "123456.75"), "123456.75");
    assert_eq!(s(&lua, "1234567.5"), "1.2345675e+06");
    assert_eq!(s(&lua, "0.0001"), "0.0001");
    assert_eq!(s(&lua, "0.00001"), "1e-05");
    assert_eq!(s(&lua, "1.5e-7"), "1.5e-07");
    assert_eq!(s(&lua, "1e300 * 1.5"), "1.5e+300");
    assert_eq!(s(&lua, "5e-324"), "5e-324");
    assert_eq!(s(&lua, "1.7976931348623157e308"), "1.7976931348623157e+308");
}

#[test]
fn special_values_use_go_spelling() {
    let lua = Lua::new();
    assert_eq!(s(&lua, "1/0"), "+Inf");
    assert_eq!(s(&lua, "-1/0"), "-Inf");
    assert_eq!(s(&lua, "0/0"), "NaN");
}

#[test]
fn integers_unchanged() {
    let lua = Lua::new();
    assert_eq!(s(&lua, "42"), "42");
    assert_eq!(s(&lua, "math.mininteger"), "-9223372036854775808");
    assert_eq!(s(&lua, "7 // 2"), "3");
    assert_eq!(
        lua.load("return math.type(10/2)").eval::<String>().unwrap(),
        "float"
    );
}
