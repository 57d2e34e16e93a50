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
