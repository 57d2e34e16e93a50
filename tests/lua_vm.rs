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

#[test]
fn listing_a_core_module_reuses_the_shared_table() {
    let f = factory();
    let mut st = f.acquire(&["string", "errors"]).unwrap();
    let same: bool = run(
        &mut st,
        "return string == getmetatable('').__index and errors == require('errors')",
    )
    .unwrap();
    assert!(same);
    let msg: String = run(
        &mut st,
        "local ok, e = pcall(function() getmetatable('').__index.x = 1 end); return e",
    )
    .unwrap();
    assert!(msg.contains("read-only"), "{msg}");
}

#[test]
fn states_migrate_between_threads() {
    let f = std::sync::Arc::new(factory());
    let mut st = f.acquire(&["json"]).unwrap();
    let _: () = run(&mut st, "counter = 1").unwrap();
    let f2 = f.clone();
    let handle = std::thread::spawn(move || {
        let n: i64 = run(&mut st, "counter = counter + 1; return counter").unwrap();
        f2.release(st);
        n
    });
    assert_eq!(handle.join().unwrap(), 2);
    assert_eq!(f.pooled(), 1);
    let mut st = f.acquire(&[]).unwrap();
    let v: Value = run(&mut st, "return counter").unwrap();
    assert_eq!(v, Value::Nil);
}

#[test]
fn protected_main_passes_yields_and_preemption_through() {
    let f = factory();
    let mut st = f.acquire(&[]).unwrap();
    let module: mlua::Table = st
        .load_chunk(
            "test:prot",
            "local M = {}
             function M.yielding(x) local y = coroutine.yield(x + 1); return y * 2 end
             function M.spin() local n = 0 for i = 1, 100000 do n = n + 1 end return n end
             function M.fail() error(errors.new({message = 'bad', kind = errors.CONFLICT})) end
             return M",
        )
        .unwrap()
        .call(())
        .unwrap();
    let lua = st.lua();
    // A runtime yield inside the protected main reaches the engine and resumes back in.
    let p = vm::protect::protected(lua, &module.get::<Function>("yielding").unwrap()).unwrap();
    let th = lua.create_thread(p).unwrap();
    let y: i64 = th.resume(1).unwrap();
    assert_eq!(y, 2);
    let (ok, r): (bool, i64) = th.resume(21).unwrap();
    assert!(ok);
    assert_eq!(r, 42);
    // The preemption hook yields through the pcall frame too.
    let p = vm::protect::protected(lua, &module.get::<Function>("spin").unwrap()).unwrap();
    let th = lua.create_thread(p).unwrap();
    let pre = vm::budget::arm(
        &th,
        vm::PreemptConfig {
            slice: 1000,
            max_blocked_fires: 10,
        },
    )
    .unwrap();
    let mut yields = 0;
    let result = loop {
        let r: mlua::MultiValue = th.resume(()).unwrap();
        if !th.is_resumable() {
            break r;
        }
        assert!(pre.take_fired());
        yields += 1;
    };
    assert!(yields > 5);
    let v: Vec<Value> = result.into_iter().collect();
    assert_eq!(v, vec![Value::Boolean(true), Value::Integer(100000)]);
    // A raised error object comes back as a value with its kind.
    let p = vm::protect::protected(lua, &module.get::<Function>("fail").unwrap()).unwrap();
    let (ok, e): (bool, Value) = p.call(()).unwrap();
    assert!(!ok);
    let err = wippy::lua::modules::errors::raised_value_to_rt(lua, &e);
    assert_eq!(err.kind(), &wippy::rt::Kind::CONFLICT);
}

#[test]
fn recycling_does_not_grow_the_heap() {
    let f = factory();
    let src = "local t = {} for i = 1, 200 do t[i] = {i, tostring(i)} end
               leaked_global = t
               return #t";
    let mut base = 0;
    for round in 0..2000 {
        let mut st = f.acquire(&["json"]).unwrap();
        let n: i64 = run(&mut st, src).unwrap();
        assert_eq!(n, 200);
        if round == 10 {
            st.lua().gc_collect().unwrap();
            st.lua().gc_collect().unwrap();
            base = st.used_memory();
        }
        if round == 1999 {
            st.lua().gc_collect().unwrap();
            st.lua().gc_collect().unwrap();
            let now = st.used_memory();
            assert!(
                now < base + 4096,
                "heap grew from {base} to {now} bytes over 2000 recycles"
            );
        }
        f.release(st);
    }
}

#[test]
fn second_state_reuses_shared_bytecode_with_line_info() {
    let f = factory();
    let src = "local M = {}\nfunction M.main()\n  local x = nil\n  return x.field\nend\nreturn M";
    let mut a = f.acquire(&[]).unwrap();
    let mut b = StateFactory::new(VmConfig::default()).acquire(&[]).unwrap();
    for st in [&mut a, &mut b] {
        let m: mlua::Table = st.load_chunk("app:shared", src).unwrap().call(()).unwrap();
        let e = m
            .get::<Function>("main")
            .unwrap()
            .call::<()>(())
            .unwrap_err();
        assert!(e.to_string().contains("app:shared:4:"), "{e}");
    }
}

#[test]
fn userdata_metatables_are_not_writable() {
    let f = factory();
    let mut st = f.acquire(&["time", "logger"]).unwrap();
    let r: String = run(
        &mut st,
        "local out = {}
         for _, v in ipairs({errors.new('x'), time.now(), logger, payload.new(1)}) do
           local mt = getmetatable(v)
           if type(mt) == 'table' then
             local ok = pcall(function() mt.__index = function() return 'hijacked' end end)
             out[#out + 1] = tostring(ok)
           else
             out[#out + 1] = type(mt)
           end
         end
         return table.concat(out, ',')",
    )
    .unwrap();
    assert!(
        !r.contains("true"),
        "a userdata metatable was writable: {r}"
    );
}

#[test]
fn raising_trampoline_positions_strings_and_passes_values_through() {
    let f = factory();
    let mut st = f.acquire(&[]).unwrap();
    let lua = st.lua().clone();
    let g = vm::raise::function(&lua, |lua, args: mlua::MultiValue| {
        let mut it = args.into_iter();
        match it.next() {
            Some(Value::String(s)) if s.to_str()? == "msg" => vm::raise::raise_msg(lua, "boom"),
            Some(Value::String(s)) if s.to_str()? == "obj" => {
                let t = lua.create_table()?;
                t.raw_set("kind", "X")?;
                vm::raise::raise(lua, t)
            }
            // Ordinary results: every argument back, in order (nil included).
            first => Ok(first.into_iter().chain(it).collect()),
        }
    })
    .unwrap();
    st.bind_global("g", Value::Function(g)).unwrap();
    let r: (String, String, i64, Value, i64) = run(
        &mut st,
        r#"
local ok, e = pcall(function()
  local x = g("msg")
  return x
end)
assert(not ok)
local ok0, e0 = pcall(g, "msg")
assert(not ok0 and e0 == "boom", e0) -- called by pcall (C): no position, as error(v, 2)
local ok2, o = pcall(g, "obj")
assert(not ok2)
local a, b, c = g(1, nil, 3)
return e, o.kind, a, b, c"#,
    )
    .unwrap();
    // The position is the Lua line that called the wrapped function.
    assert_eq!(r.0, "test:chunk:3: boom");
    assert_eq!(r.1, "X");
    assert_eq!((r.2, r.4), (1, 3));
    assert!(r.3.is_nil());
}

#[test]
fn shared_chunk_cache_follows_source_changes() {
    use std::sync::Arc;
    let f = factory();
    let mut st = f.acquire(&[]).unwrap();
    let name: Arc<str> = Arc::from("test:shared_src");
    let v1: Arc<str> = Arc::from("return 1");
    let one: i64 = st.load_shared_chunk(&name, &v1).unwrap().call(()).unwrap();
    // Same text in another allocation: a hit by content.
    let v1b: Arc<str> = Arc::from("return 1");
    let again: i64 = st.load_shared_chunk(&name, &v1b).unwrap().call(()).unwrap();
    // Changed source under the same name (hot reload): recompiled.
    let v2: Arc<str> = Arc::from("return 2");
    let two: i64 = st.load_shared_chunk(&name, &v2).unwrap().call(()).unwrap();
    assert_eq!((one, again, two), (1, 1, 2));
}

#[test]
fn lazy_string_library_behaves_like_the_stock_one() {
    let f = factory();
    let mut st = f.acquire(&[]).unwrap();
    // Method calls, coercions and the metatable's `__index` work before any field was read.
    let s: String = run(
        &mut st,
        "return ('ab'):rep(2) .. ('10' + 1) .. tostring(getmetatable('').__index == string)",
    )
    .unwrap();
    assert_eq!(s, "abab11true");
    // A field read twice is the same function, stored in the table.
    let same: bool = run(
        &mut st,
        "local u = string.upper; return u == string.upper and rawget(string, 'upper') == u",
    )
    .unwrap();
    assert!(same);
    // `pairs` sees every stock function; unknown names are nil; writes still raise.
    let names: String = run(
        &mut st,
        "local t = {}; for k, v in pairs(string) do assert(type(v) == 'function'); t[#t + 1] = k end \
         table.sort(t); return table.concat(t, ',')",
    )
    .unwrap();
    assert_eq!(
        names,
        "byte,char,dump,find,format,gmatch,gsub,len,lower,match,pack,packsize,rep,reverse,sub,unpack,upper"
    );
    let (missing, err): (bool, String) = run(
        &mut st,
        "local ok, e = pcall(function() string.nope2 = 1 end); return string.nope == nil, e",
    )
    .unwrap();
    assert!(missing);
    assert!(err.contains("read-only"), "{err}");
    let fmt: String = run(&mut st, "return string.format('%d-%s', 3, 'x')").unwrap();
    assert_eq!(fmt, "3-x");
}

#[test]
fn base_loader_serves_each_global_once_and_nil_for_others() {
    let f = factory();
    let mut st = f.acquire(&[]).unwrap();
    let out: String = run(
        &mut st,
        r#"local r = {}
           r[#r+1] = tostring(_VERSION)
           r[#r+1] = tostring(print == print and require == require)
           r[#r+1] = tostring(unpack == table.unpack)
           r[#r+1] = tostring(_ENV["\xff\xfe"] == nil and _ENV[1] == nil and no_such_name == nil)
           r[#r+1] = tostring(type(package) == "table" and type(errors) == "table")
           r[#r+1] = select(2, pcall(function() return string.rep("ab", 2) end))
           return table.concat(r, " ")"#,
    )
    .unwrap();
    assert_eq!(out, "Lua 5.4 true true true true abab");
}
