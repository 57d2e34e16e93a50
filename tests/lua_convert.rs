//! Lua ↔ Value conversion (spec §3.4).

use std::sync::Arc;

use mlua::{Lua, Value as LuaValue};
use wippy::lua::convert::{from_lua, to_lua};
use wippy::lua::modules::errors;
use wippy::rt::{Error, Kind, Value};

fn lua_with_errors() -> Lua {
    let lua = Lua::new();
    lua.globals()
        .set("errors", wippy::lua::modules::errors::build(&lua).unwrap())
        .unwrap();
    lua
}

fn conv(lua: &Lua, src: &str) -> Result<Value, Error> {
    let v: LuaValue = lua.load(src).eval().unwrap();
    from_lua(&v)
}

#[test]
fn scalars_keep_their_subtypes() {
    let lua = Lua::new();
    assert!(matches!(conv(&lua, "return 3").unwrap(), Value::Int(3)));
    assert!(matches!(conv(&lua, "return 3.0").unwrap(), Value::Float(f) if f == 3.0));
    assert!(matches!(
        conv(&lua, "return true").unwrap(),
        Value::Bool(true)
    ));
    assert!(conv(&lua, "return nil").unwrap().is_nil());
    let s = conv(&lua, "return 'a\\0b\\255'").unwrap();
    assert_eq!(s, Value::Str(wippy::rt::Bytes::from_slice(b"a\0b\xff")));
    assert!(conv(&lua, "return function() end").unwrap().is_nil());
    assert!(
        conv(&lua, "return coroutine.create(function() end)")
            .unwrap()
            .is_nil()
    );
}

#[test]
fn arrays_maps_and_shapes() {
    let lua = Lua::new();
    assert_eq!(conv(&lua, "return {}").unwrap(), Value::Array(vec![]));
    let a = conv(&lua, "return {1, 'two', 3.5, {true}}").unwrap();
    assert_eq!(
        a,
        Value::Array(vec![
            Value::Int(1),
            Value::str("two"),
            Value::Float(3.5),
            Value::Array(vec![Value::Bool(true)])
        ])
    );
    let m = conv(&lua, "return {name = 'x', n = 2}").unwrap();
    assert_eq!(m.get("name"), Some(&Value::str("x")));
    assert_eq!(m.get("n"), Some(&Value::Int(2)));
    // Keys exactly 1..n in any insertion order → array.
    let a = conv(
        &lua,
        "local t = {}; t[3] = 'c'; t[1] = 'a'; t[2] = 'b'; return t",
    )
    .unwrap();
    assert_eq!(
        a,
        Value::Array(vec![Value::str("a"), Value::str("b"), Value::str("c")])
    );
    // Sparse and mixed → map with integer keys kept.
    let s = conv(&lua, "return {[1] = 'a', [3] = 'c'}").unwrap();
    let Value::Map(entries) = &s else {
        panic!("{s:?}")
    };
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .any(|(k, v)| *k == Value::Int(3) && *v == Value::str("c"))
    );
    let mixed = conv(&lua, "return {1, 2, x = 'y'}").unwrap();
    assert_eq!(mixed.as_map().unwrap().len(), 3);
    assert_eq!(mixed.get("x"), Some(&Value::str("y")));
    let f = conv(&lua, "return {[1.5] = true}").unwrap();
    assert_eq!(f.as_map().unwrap()[0].0, Value::Float(1.5));
    // Functions inside tables become nil (dropped entries for maps, holes for arrays).
    let h = conv(&lua, "return {a = 1, f = function() end}").unwrap();
    assert_eq!(h.get("f"), Some(&Value::Nil));
}

#[test]
fn errors_cycles_and_depth() {
    let lua = Lua::new();
    let e = conv(&lua, "local t = {}; t.me = t; return t").unwrap_err();
    assert_eq!(e.kind(), &Kind::INVALID);
    assert!(e.message().contains("self-referencing"));
    // A shared (non-cyclic) sub-table is copied twice, not an error.
    let ok = conv(&lua, "local s = {1}; return {a = s, b = s}").unwrap();
    assert_eq!(ok.get("a"), ok.get("b"));
    let deep = conv(
        &lua,
        "local t = {}; local c = t; for i = 1, 200 do c.x = {}; c = c.x end; return t",
    )
    .unwrap_err();
    assert!(deep.message().contains("depth"), "{deep}");
    let fine = conv(
        &lua,
        "local t = {}; local c = t; for i = 1, 100 do c.x = {}; c = c.x end; return t",
    );
    assert!(fine.is_ok());
    let bad = conv(&lua, "return {[true] = 1}").unwrap_err();
    assert!(bad.message().contains("boolean key"), "{bad}");
}

#[test]
fn error_objects_cross_as_structured_errors() {
    let lua = lua_with_errors();
    let v = conv(
        &lua,
        "return {err = errors.new({message = 'm', kind = errors.CONFLICT, details = {a = 1}})}",
    )
    .unwrap();
    let Some(Value::Error(e)) = v.get("err") else {
        panic!("{v:?}")
    };
    assert_eq!(e.kind(), &Kind::CONFLICT);
    assert_eq!(e.message(), "m");
    assert_eq!(e.detail("a"), Some(&Value::Int(1)));
    // And back.
    let back = to_lua(&lua, &Value::Error(Arc::new(Error::not_found("gone")))).unwrap();
    let obj = errors::as_error(&back).unwrap();
    assert_eq!(obj.err.kind(), &Kind::NOT_FOUND);
    lua.globals().set("x", back).unwrap();
    let k: String = lua
        .load("return x:kind() .. ':' .. tostring(x)")
        .eval()
        .unwrap();
    assert_eq!(k, "NotFound:gone");
    let nested = to_lua(
        &lua,
        &Value::Array(vec![Value::Error(Arc::new(Error::invalid("i")))]),
    )
    .unwrap();
    lua.globals().set("n", nested).unwrap();
    let k: String = lua.load("return n[1]:kind()").eval().unwrap();
    assert_eq!(k, "Invalid");
}

#[test]
fn round_trip_preserves_values() {
    let lua = Lua::new();
    let src = "return {id = 42, name = 'alice', tags = {'a', 'b'}, score = 1.5, whole = 2.0, ok = false, nested = {deep = {1, 2, {x = 'y'}}}}";
    let v = conv(&lua, src).unwrap();
    let back = to_lua(&lua, &v).unwrap();
    let again = from_lua(&back).unwrap();
    assert_eq!(v, again);
    lua.globals().set("t", back).unwrap();
    let s: String = lua
        .load("return table.concat({t.id, t.name, t.tags[2], t.score, math.type(t.whole), tostring(t.ok), t.nested.deep[3].x}, ',')")
        .eval()
        .unwrap();
    assert_eq!(s, "42,alice,b,1.5,float,false,y");
    // Opaque values become nil.
    let o = to_lua(&lua, &Value::Opaque(Arc::new(5u8))).unwrap();
    assert!(o.is_nil());
}
