//! The front end on the engine's sandboxed states (`wippy::lua::vm`): per-process environments,
//! cached chunks re-pointed to a new `_ENV` for each process, read-only base globals, recycled
//! states.

use mlua::Value;
use wippy::lua::frontend::{TYPES_ENTRY_GLOBAL, TranslationCache, type_runtime_entry};
use wippy::lua::vm::{StateFactory, VmConfig};

const LIB: &str = r#"type Item = {sku: string @min_len(1), qty: integer @min(1)}
return {Item = Item}"#;

const ENTRY: &str = r#"type Order = {id: string, items: {lib.Item}}
local function total(o: Order): integer
  local n = 0
  for _, it in ipairs(o.items) do n = n + it.qty end
  return n
end
return function(o)
  local ok, err = Order:is(o)
  if not ok then return nil, err end
  assert(Order ~= nil and rawget(_ENV, "Order") == Order)
  return total(Order(o))
end"#;

#[test]
fn typed_chunks_run_in_sandboxed_recycled_states() {
    let factory = StateFactory::new(VmConfig::default());
    let cache = TranslationCache::default();
    let lib = cache.get(LIB, "app:lib").unwrap();
    let entry = cache.get(ENTRY, "app:entry").unwrap();
    assert!(lib.needs_type_runtime() && entry.needs_type_runtime());

    for round in 0..3 {
        let mut st = factory.acquire(&[]).unwrap();
        // The engine exposes the type runtime where process environments find globals.
        let f = type_runtime_entry(st.lua()).unwrap();
        st.bind_global(TYPES_ENTRY_GLOBAL, Value::Function(f))
            .unwrap();

        let lib_fn = st.load_chunk("app:lib", &lib.code_lossy()).unwrap();
        let lib_value: Value = lib_fn.call(()).unwrap();
        st.bind_global("lib", lib_value).unwrap();

        let entry_fn = st.load_chunk("app:entry", &entry.code_lossy()).unwrap();
        let handler: mlua::Function = entry_fn.call(()).unwrap();
        let good: mlua::Table = st
            .lua()
            .load(r#"return {id = "o1", items = {{sku = "a", qty = 2}, {sku = "b", qty = 3}}}"#)
            .eval()
            .unwrap();
        let n: i64 = handler.call(good).unwrap();
        assert_eq!(n, 5, "round {round}");
        let bad: mlua::Table = st
            .lua()
            .load(r#"return {id = "o2", items = {{sku = "", qty = 1}}}"#)
            .eval()
            .unwrap();
        let (v, err): (Value, String) = handler.call(bad).unwrap();
        assert!(v.is_nil());
        assert_eq!(
            err, "items[1].sku: length 0 is less than min_len 1",
            "round {round}"
        );
        factory.release(st);
    }
}

/// `type(T)` of a type object is "type" in the sandbox (spec: `type(T)` → "type"); every
/// other value keeps the stock answer, including other userdata, and `type()` with no
/// argument still raises the stock error.
#[test]
fn type_of_a_type_object_is_type() {
    const SRC: &str = r#"type Point = {x: number, y: number}
return function(ud)
  local ok, err = pcall(type)
  return type(Point), type(Point.x), type(1), type("s"), type(nil), type({}), type(print),
    type(coroutine.create(function() end)), type(ud), ok, err
end"#;
    let factory = StateFactory::new(VmConfig::default());
    let cache = TranslationCache::default();
    let code = cache.get(SRC, "app:types").unwrap();
    let mut st = factory.acquire(&[]).unwrap();
    let f = type_runtime_entry(st.lua()).unwrap();
    st.bind_global(TYPES_ENTRY_GLOBAL, Value::Function(f))
        .unwrap();
    let chunk = st.load_chunk("app:types", &code.code_lossy()).unwrap();
    let handler: mlua::Function = chunk.call(()).unwrap();
    let other_ud = st.lua().create_any_userdata(5u8).unwrap();
    let r: mlua::MultiValue = handler.call(other_ud).unwrap();
    let got: Vec<String> = r
        .iter()
        .map(|v| match v {
            Value::String(s) => s.to_string_lossy(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        &got[..10],
        [
            "type",
            "type",
            "number",
            "string",
            "nil",
            "table",
            "function",
            "thread",
            "userdata",
            "Boolean(false)"
        ]
    );
    assert!(
        got[10].contains("bad argument #1 to 'type' (value expected)"),
        "{}",
        got[10]
    );
}
