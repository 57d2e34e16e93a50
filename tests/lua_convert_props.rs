//! Property: Value → Lua → Value is the identity for values the Lua side can represent
//! (non-empty string-keyed maps, arrays without nils, finite floats).

use mlua::Lua;
use proptest::prelude::*;
use wippy::lua::convert::{from_lua, to_lua};
use wippy::rt::Value;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-1e12f64..1e12).prop_map(Value::Float),
        proptest::collection::vec(any::<u8>(), 0..12)
            .prop_map(|b| Value::Str(wippy::rt::Bytes::from(b))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 1..6).prop_map(|m| Value::Map(
                m.into_iter().map(|(k, v)| (Value::str(&k), v)).collect()
            )),
        ]
    })
}

proptest! {
    #[test]
    fn value_round_trips_through_lua(v in value()) {
        let lua = Lua::new();
        let l = to_lua(&lua, &v).unwrap();
        let back = from_lua(&l).unwrap();
        prop_assert_eq!(back, v);
    }
}
