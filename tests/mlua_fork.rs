//! The vendored mlua (`vendor/mlua`, decision 0106) builds less into a new state: internal
//! metatables, the destructed-userdata metatable and the failure pool are made on first use,
//! app data is a vector map. These tests drive each of those first uses through mlua's public
//! API and check the behaviour is mlua's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mlua::{Lua, UserData, UserDataMethods};

#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl UserData for Counted {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("hello", |_, _, ()| Ok("hi"));
    }
}

#[test]
fn taken_userdata_is_destructed_for_lua_and_rust() {
    let lua = Lua::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let ud = lua.create_userdata(Counted(drops.clone())).unwrap();
    lua.globals().set("u", &ud).unwrap();
    assert_eq!(lua.load("return u:hello()").eval::<String>().unwrap(), "hi");

    let taken = ud.take::<Counted>().unwrap();
    drop(taken);
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // Method call, arithmetic and tostring on the destructed value all raise mlua's error.
    for code in [
        "return u:hello()",
        "return u + 1",
        "return #u",
        "return tostring(u)",
    ] {
        let err = lua.load(code).exec().unwrap_err().to_string();
        assert!(err.contains("destructed"), "{code}: {err}");
    }
    // From Rust too.
    assert!(
        ud.borrow::<Counted>()
            .unwrap_err()
            .to_string()
            .contains("destructed")
    );
}

#[test]
fn collected_userdata_runs_drop_and_other_types_still_check() {
    let lua = Lua::new();
    let drops = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        lua.create_userdata(Counted(drops.clone())).unwrap();
    }
    lua.gc_collect().unwrap();
    lua.gc_collect().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 10);

    // A userdata of another type is told apart from `Counted`.
    struct Other;
    impl UserData for Other {}
    let o = lua.create_userdata(Other).unwrap();
    assert!(o.borrow::<Counted>().is_err());
    assert!(o.borrow::<Other>().is_ok());
}

#[test]
fn rust_callbacks_and_their_errors_work_in_a_fresh_state() {
    let lua = Lua::new();
    let f = lua
        .create_function(|_, (a, b): (i64, i64)| {
            if b == 0 {
                Err(mlua::Error::runtime("division by zero"))
            } else {
                Ok(a / b)
            }
        })
        .unwrap();
    lua.globals().set("div", f).unwrap();
    assert_eq!(lua.load("return div(7, 2)").eval::<i64>().unwrap(), 3);
    let err = lua.load("return div(1, 0)").exec().unwrap_err().to_string();
    assert!(err.contains("division by zero"), "{err}");
    // pcall in Lua sees the same error as a value, and the state keeps working.
    let (ok, msg): (bool, String) = lua
        .load("return pcall(div, 1, 0)")
        .eval::<(bool, mlua::Value)>()
        .map(|(ok, v)| (ok, v.to_string().unwrap_or_default()))
        .unwrap();
    assert!(!ok && msg.contains("division by zero"), "{msg}");
    assert_eq!(lua.load("return div(9, 3)").eval::<i64>().unwrap(), 3);
}

#[test]
fn hooks_set_through_mlua_fire() {
    let lua = Lua::new();
    let lines = Arc::new(AtomicUsize::new(0));
    let l2 = lines.clone();
    lua.set_hook(mlua::HookTriggers::EVERY_LINE, move |_, _| {
        l2.fetch_add(1, Ordering::SeqCst);
        Ok(mlua::VmState::Continue)
    })
    .unwrap();
    lua.load("local a = 1\nlocal b = 2\nreturn a + b")
        .exec()
        .unwrap();
    assert!(lines.load(Ordering::SeqCst) >= 3);
    lua.remove_hook();
}

#[test]
fn app_data_of_several_types() {
    let lua = Lua::new();
    assert!(lua.set_app_data(1u32).is_none());
    assert!(lua.set_app_data(String::from("x")).is_none());
    assert_eq!(lua.set_app_data(2u32), Some(1));
    assert_eq!(*lua.app_data_ref::<u32>().unwrap(), 2);
    lua.app_data_mut::<String>().unwrap().push('y');
    assert_eq!(&*lua.app_data_ref::<String>().unwrap(), "xy");
    assert_eq!(lua.remove_app_data::<u32>(), Some(2));
    assert!(lua.app_data_ref::<u32>().is_none());
    assert_eq!(&*lua.app_data_ref::<String>().unwrap(), "xy");
    assert!(lua.app_data_ref::<u64>().is_none());
}

/// The reference thread starts with a small stack (7 references, PATCHES.md §7) and grows
/// as stock mlua's does: hold many references at once, read them all back, release them
/// and reuse the freed slots.
#[test]
fn many_references_grow_the_reference_thread() {
    let lua = Lua::new();
    let mut held = Vec::new();
    for i in 0..1000 {
        let t = lua.create_table().unwrap();
        t.set("i", i).unwrap();
        held.push(t);
    }
    for (i, t) in held.iter().enumerate() {
        assert_eq!(t.get::<usize>("i").unwrap(), i);
    }
    // Free every other slot, then fill the holes.
    let mut kept: Vec<_> = held.into_iter().step_by(2).collect();
    for i in 0..600 {
        let f = lua
            .load(format!("return function() return {i} end"))
            .eval::<mlua::Function>()
            .unwrap();
        kept.push(lua.create_table_from([(1, f)]).unwrap());
    }
    for (i, t) in kept.iter().skip(500).enumerate() {
        let f: mlua::Function = t.get(1).unwrap();
        assert_eq!(f.call::<usize>(()).unwrap(), i);
    }
    for (i, t) in kept.iter().take(500).enumerate() {
        assert_eq!(t.get::<usize>("i").unwrap(), 2 * i);
    }
}

#[derive(Debug)]
struct Other;

struct Label<'a>(&'a String);

impl UserData for Other {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("name", |_, _, ()| Ok("other"));
    }
}

/// The userdata type cache holds only static types (PATCHES.md §6): alternate two static
/// types and a scoped (non-static) userdata, so every lookup path is taken, and check each
/// value still reports its own type.
#[test]
fn userdata_type_checks_across_static_and_scoped_types() {
    let lua = Lua::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let a = lua.create_userdata(Counted(drops.clone())).unwrap();
    let b = lua.create_userdata(Other).unwrap();
    lua.globals().set("a", &a).unwrap();
    lua.globals().set("b", &b).unwrap();
    let label = String::from("scoped");
    lua.scope(|scope| {
        // A non-static type: its metatable is registered without a `TypeId`.
        let s = scope.create_any_userdata(Label(&label), |reg| {
            reg.add_method("label", |_, this, ()| Ok(this.0.clone()));
        })?;
        lua.globals().set("s", &s)?;
        for _ in 0..3 {
            assert_eq!(lua.load("return a:hello()").eval::<String>()?, "hi");
            assert_eq!(lua.load("return s:label()").eval::<String>()?, "scoped");
            assert_eq!(lua.load("return b:name()").eval::<String>()?, "other");
            assert_eq!(lua.load("return s:label()").eval::<String>()?, "scoped");
            assert!(a.borrow::<Counted>().is_ok());
            assert!(a.borrow::<Other>().is_err());
            assert!(b.borrow::<Counted>().is_err());
            assert!(s.borrow::<Counted>().is_err());
        }
        Ok(())
    })
    .unwrap();
    assert!(b.borrow::<Other>().is_ok());
    drop((a, b));
    lua.globals().set("a", mlua::Nil).unwrap();
    lua.gc_collect().unwrap();
    lua.gc_collect().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}
