//! The state factory and sandbox: globals, read-only std tables, recycling isolation,
//! chunk cache, budgets.

use mlua::{Function, Value};
use wippy::lua::vm::{self, LuaState, StateFactory, VmConfig};

fn factory() -> StateFactory {
    StateFactory::new(VmConfig {
        pool_capacity: 4,
        ..VmConfig::default()
    })
}

/// Run `src` as a process chunk on `st` and return its first result.
fn run<T: mlua::FromLuaMulti>(st: &mut LuaState, src: &str) -> mlua::Result<T> {
    let f = st
        .load_chunk("test:chunk", src)
        .map_err(|e| mlua::Error::RuntimeError(e.to_string()))?;
    f.call(())
}

#[test]
fn globals_match_the_spec() {
    let f = factory();
    let mut st = f.acquire(&[]).unwrap();
    let present: String = run(
        &mut st,
        r#"local names = {"assert","error","pcall","xpcall","type","tostring","tonumber","pairs",
            "ipairs","next","select","rawget","rawset","rawequal","getmetatable","setmetatable",
            "unpack","_G","_VERSION","string","table","math","coroutine","errors","os","payload",
            "print","require","package"}
           local missing = {}
           for _, n in ipairs(names) do if _G[n] == nil then missing[#missing+1] = n end end
           return table.concat(missing, ",")"#,
    )
    .unwrap();
    assert_eq!(present, "");
    let absent: String = run(
        &mut st,
        r#"local names = {"load","loadstring","loadfile","dofile","collectgarbage","io","debug","utf8","getfenv","setfenv"}
           local there = {}
           for _, n in ipairs(names) do if _G[n] ~= nil then there[#there+1] = n end end
           return table.concat(there, ",")"#,
    )
    .unwrap();
    assert_eq!(absent, "");
    f.release(st);
}

#[test]
fn require_is_a_global_lookup() {
    let f = factory();
    let mut st = f.acquire(&["json"]).unwrap();
    let ok: bool = run(
        &mut st,
        "return require('json') == json and require('string') == string",
    )
    .unwrap();
    assert!(ok);
    let msg: String = run(&mut st, "local ok, e = pcall(require, 'nope'); return e").unwrap();
    assert!(msg.ends_with("module 'nope' not found"), "{msg}");
    let ok: bool = run(&mut st, "mine = {x = 1}; return require('mine').x == 1").unwrap();
    assert!(ok);
    let pkg: (Value, String) = run(&mut st, "return package.loadlib('x', 'y')").unwrap();
    assert_eq!(pkg.1, "loadlib disabled");
}

#[test]
fn std_tables_are_read_only() {
    let f = factory();
    let mut st = f.acquire(&["json"]).unwrap();
    for target in [
        "string.trim",
        "table.x",
        "math.pi",
        "os.time",
        "errors.new",
        "json.encode",
        "coroutine.x",
    ] {
        let msg: String = run(
            &mut st,
            &format!("local ok, e = pcall(function() {target} = 1 end); return tostring(ok) .. e"),
        )
        .unwrap();
        assert!(
            msg.starts_with("false") && msg.contains("read-only"),
            "{target}: {msg}"
        );
    }
    // Iteration and length still see the real tables.
    let n: i64 = run(
        &mut st,
        "local n = 0; for k in pairs(string) do n = n + 1 end; return n",
    )
    .unwrap();
    assert!(n > 10);
    let meta: String = run(
        &mut st,
        "local ok, e = pcall(function() getmetatable('').__index = {} end); return e",
    )
    .unwrap();
    assert!(meta.contains("read-only"), "{meta}");
    for stmt in [
        "rawset(string, 'x', 1)",
        "table.insert(table, 1)",
        "setmetatable(math, {})",
        "string.format = nil",
    ] {
        let msg: String = run(
            &mut st,
            &format!("local ok, e = pcall(function() {stmt} end); return tostring(ok) .. ' ' .. e"),
        )
        .unwrap();
        assert!(
            msg.starts_with("false") && msg.contains("read-only"),
            "{stmt}: {msg}"
        );
    }
    let (n, f): (bool, String) = run(
        &mut st,
        "return next(string) ~= nil, type(rawget(string, 'format'))",
    )
    .unwrap();
    assert_eq!((n, f.as_str()), (true, "function"));
    let up: String = run(&mut st, "return ('abc'):upper() .. (\"10\" + 1)").unwrap();
    assert_eq!(up, "ABC11");
}

#[test]
fn recycled_state_does_not_leak_globals() {
    let f = factory();
    let mut st = f.acquire(&[]).unwrap();
    let _: () = run(&mut st, "leaked = 42; _G.other = 1; string_backup = string").unwrap();
    f.release(st);
    assert_eq!(f.pooled(), 1);
    let mut st = f.acquire(&[]).unwrap();
    let v: Value = run(&mut st, "return leaked or other").unwrap();
    assert_eq!(v, Value::Nil);
    // _G refers to the process env.
    let ok: bool = run(&mut st, "x = 5; return _G.x == 5 and _G._G == _G").unwrap();
    assert!(ok);
    let mt: Value = run(&mut st, "return getmetatable(_G)").unwrap();
    assert_eq!(mt, Value::Boolean(false));
    let e: String = run(
        &mut st,
        "local ok, e = pcall(setmetatable, _G, {}); return e",
    )
    .unwrap();
    assert!(e.contains("protected metatable"), "{e}");
}

#[test]
fn modules_are_installed_per_process() {
    let f = factory();
    let mut st = f.acquire(&["json", "base64"]).unwrap();
    let ok: bool = run(&mut st, "return json ~= nil and base64 ~= nil").unwrap();
    assert!(ok);
    f.release(st);
    let mut st = f.acquire(&[]).unwrap();
    let v: Value = run(&mut st, "return json").unwrap();
    assert_eq!(
        v,
        Value::Nil,
        "modules of the previous process must not stay visible"
    );
    let err = f.acquire(&["nosuchmodule"]).err().unwrap();
    assert!(
        err.to_string().contains("unknown module 'nosuchmodule'"),
        "{err}"
    );
    drop(st);
}

#[test]
fn chunk_cache_rebinds_environment() {
    let f = factory();
    let mut st = f.acquire(&[]).unwrap();
    let src = "counter = (counter or 0) + 1; return counter";
    let a: i64 = run(&mut st, src).unwrap();
    let b: i64 = run(&mut st, src).unwrap();
    assert_eq!((a, b), (1, 2));
    f.release(st);
    let mut st = f.acquire(&[]).unwrap();
    let c: i64 = run(&mut st, src).unwrap();
    assert_eq!(
        c, 1,
        "a new process sees a fresh environment even with a cached chunk"
    );
    // A syntax error names the chunk.
    let e = st.load_chunk("app:broken", "return +").err().unwrap();
    assert!(e.to_string().contains("app:broken"), "{e}");
    // Runtime errors carry the entry name and line.
    let msg: String = run(
        &mut st,
        "local ok, e = pcall(function() local x = nil; return x.y end); return e",
    )
    .unwrap();
    assert!(msg.starts_with("test:chunk:1:"), "{msg}");
}

#[test]
fn math_extras_and_unpack() {
    let f = factory();
    let mut st = f.acquire(&[]).unwrap();
    let s: String = run(
        &mut st,
        "local m, e = math.frexp(8)
         return table.concat({math.pow(2, 10), math.mod(7, 3), math.log10(1000), math.ldexp(0.5, 4),
            m, e, math.atan2(0, 1), math.cosh(0), math.sinh(0), math.tanh(0), select('#', unpack({1, 2, 3})),
            select('#', math.randomseed(42)), math.type(1), math.type(1.5), tostring(math.type('x'))}, ' ')",
    )
    .unwrap();
    assert_eq!(s, "1024 1 3 8 0.5 4 0 1 0 0 3 0 integer float nil");
    let r: bool = run(
        &mut st,
        "local x = math.random(); local y = math.random(3); local z = math.random(5, 6)
        return x >= 0 and x < 1 and y >= 1 and y <= 3 and z >= 5 and z <= 6",
    )
    .unwrap();
    assert!(r);
}

#[test]
fn print_logs_instead_of_writing_stdout() {
    let f = factory();
    let mut st = f.acquire(&[]).unwrap();
    st.set_process(None, Some("app:main".into()));
    let _: () = run(&mut st, "print('hello', 1, 2.5, nil, true, {})").unwrap();
}

#[test]
fn memory_limit_is_enforced() {
    let f = StateFactory::new(VmConfig {
        memory_limit: Some(2 << 20),
        ..VmConfig::default()
    });
    let mut st = f.acquire(&[]).unwrap();
    let e = run::<()>(
        &mut st,
        "local t = {} for i = 1, 1e7 do t[i] = ('x'):rep(100) .. i end",
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("memory"), "{e}");
    f.release_poisoned(st);
}

#[test]
fn preemption_yields_at_yieldable_points() {
    let f = factory();
    let mut st = f.acquire(&[]).unwrap();
    let func: Function = st
        .load_chunk(
            "test:spin",
            "local n = 0 for i = 1, 200000 do n = n + i end return n",
        )
        .unwrap();
    let thread = st.lua().create_thread(func).unwrap();
    let p = vm::budget::arm(
        &thread,
        vm::PreemptConfig {
            slice: 1000,
            max_blocked_fires: 10,
        },
    )
    .unwrap();
    let mut yields = 0;
    loop {
        let r: Value = thread.resume(()).unwrap();
        if !thread.is_resumable() {
            assert_eq!(r, Value::Integer(200000i64 * 200001 / 2));
            break;
        }
        assert!(p.take_fired());
        yields += 1;
    }
    assert!(yields > 10, "{yields}");
    vm::budget::disarm(&thread);
}

#[test]
fn preemption_raises_where_it_cannot_yield() {
    let f = factory();
    let mut st = f.acquire(&[]).unwrap();
    // The comparator runs inside table.sort (a C function): not yieldable.
    let func: Function = st
        .load_chunk(
            "test:sort",
            "local t = {} for i = 1, 200 do t[i] = i end
             table.sort(t, function(a, b) for j = 1, 2000 do end return a > b end)
             return t[1]",
        )
        .unwrap();
    let thread = st.lua().create_thread(func).unwrap();
    let _p = vm::budget::arm(
        &thread,
        vm::PreemptConfig {
            slice: 1000,
            max_blocked_fires: 50,
        },
    )
    .unwrap();
    let e = thread.resume::<Value>(()).err().unwrap();
    assert!(e.to_string().contains("instruction budget exceeded"), "{e}");
}
