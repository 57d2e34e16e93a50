//! Lua VM foundation costs: state creation vs recycling, chunk loading, conversion, modules.
//!
//! Run: `cargo bench --bench lua_vm` (criterion medians go to `docs/benchmarks.md`).
//! The memory report (Lua heap and RSS per idle state) is printed first; set
//! `LUA_VM_MEM_ONLY=1` to print only it.

use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use mlua::{Function, Lua, LuaOptions, StdLib, Value as LuaValue};
use wippy::lua::convert;
use wippy::lua::vm::{LuaState, StateFactory, VmConfig};
use wippy::rt::Value;

const TRIVIAL: &str = "local function main() return 1 end return { main = main }";

fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0)
        * 4096
}

fn heap_after_gc(lua: &Lua) -> usize {
    lua.gc_collect().unwrap();
    lua.gc_collect().unwrap();
    lua.used_memory()
}

fn memory_report() {
    let cfg = VmConfig::default();
    let std_lua = Lua::new();
    let bare = Lua::new_with(StdLib::NONE, LuaOptions::default()).unwrap();
    println!(
        "mem: Lua::new() heap                      {:>7} B",
        heap_after_gc(&std_lua)
    );
    println!(
        "mem: bare state heap                      {:>7} B",
        heap_after_gc(&bare)
    );
    let f = StateFactory::new(cfg.clone());
    let st = LuaState::new(&cfg).unwrap();
    println!(
        "mem: LuaState::new() heap (sandbox)       {:>7} B",
        heap_after_gc(st.lua())
    );
    let mut st = f.acquire(&[]).unwrap();
    let main = run_trivial(&mut st);
    drop(main);
    println!(
        "mem: idle process (env + trivial chunk)   {:>7} B",
        heap_after_gc(st.lua())
    );
    let _: () = st
        .lua()
        .load("local _ = string.upper, table.insert, math.floor, os.time, errors.new")
        .set_environment(st.env().clone())
        .exec()
        .unwrap();
    println!(
        "mem: + string/table/math/os/errors used   {:>7} B",
        heap_after_gc(st.lua())
    );
    st.install_modules(&["json", "time", "logger"]).unwrap();
    println!(
        "mem: + json/time/logger installed         {:>7} B",
        heap_after_gc(st.lua())
    );
    f.release(st);

    // RSS per live idle process: 2000 states each bound to a process that ran a trivial chunk.
    const N: usize = 2000;
    let f = StateFactory::new(VmConfig {
        pool_capacity: 0,
        ..cfg
    });
    let before = rss_bytes();
    let mut live = Vec::with_capacity(N);
    for _ in 0..N {
        let mut st = f.acquire(&[]).unwrap();
        drop(run_trivial(&mut st));
        st.lua().gc_collect().unwrap();
        live.push(st);
    }
    let after = rss_bytes();
    let heap: usize = live.iter().map(|s| s.used_memory()).sum();
    println!(
        "mem: idle process RSS ({N} live)          {:>7} B",
        (after - before) / N
    );
    println!(
        "mem: idle process Lua heap ({N} live)     {:>7} B",
        heap / N
    );
    drop(live);
}

/// What the engine does for a trivial process: load the (cached) chunk, run it, call main.
fn run_trivial(st: &mut LuaState) -> LuaValue {
    let chunk = st.load_chunk("bench:trivial", TRIVIAL).unwrap();
    let module: mlua::Table = chunk.call(()).unwrap();
    let main: Function = module.get("main").unwrap();
    main.call(()).unwrap()
}

fn states(c: &mut Criterion) {
    let mut g = c.benchmark_group("state");
    g.bench_function("lua_new_std_drop", |b| b.iter(|| black_box(Lua::new())));
    g.bench_function("lua_new_bare_drop", |b| {
        b.iter(|| black_box(Lua::new_with(StdLib::NONE, LuaOptions::default()).unwrap()))
    });
    let cfg = VmConfig::default();
    g.bench_function("luastate_new_drop", |b| {
        b.iter(|| black_box(LuaState::new(&cfg).unwrap()))
    });
    let f = StateFactory::new(cfg.clone());
    f.prewarm(4).unwrap();
    g.bench_function("acquire_release", |b| {
        b.iter(|| {
            let st = f.acquire(&[]).unwrap();
            f.release(black_box(st));
        })
    });
    g.bench_function("acquire_release_json_time", |b| {
        b.iter(|| {
            let st = f.acquire(&["json", "time"]).unwrap();
            f.release(black_box(st));
        })
    });
    g.bench_function("trivial_process_recycled", |b| {
        b.iter(|| {
            let mut st = f.acquire(&[]).unwrap();
            black_box(run_trivial(&mut st));
            f.release(st);
        })
    });
    g.finish();
}

fn chunks(c: &mut Criterion) {
    let mut g = c.benchmark_group("chunk");
    let f = StateFactory::new(VmConfig::default());
    let src = include_str!("lua_vm_chunk.lua");
    g.bench_function("compile_2kb", |b| {
        let st = f.acquire(&[]).unwrap();
        b.iter(|| {
            black_box(
                st.lua()
                    .load(src)
                    .set_environment(st.env().clone())
                    .into_function()
                    .unwrap(),
            )
        });
    });
    g.bench_function("undump_bytecode_2kb", |b| {
        let st = f.acquire(&[]).unwrap();
        let bc = st.lua().load(src).into_function().unwrap().dump(false);
        b.iter(|| {
            black_box(
                st.lua()
                    .load(&bc[..])
                    .set_mode(mlua::chunk::ChunkMode::Binary)
                    .set_environment(st.env().clone())
                    .into_function()
                    .unwrap(),
            )
        });
    });
    g.bench_function("load_cached_2kb", |b| {
        let mut st = f.acquire(&[]).unwrap();
        b.iter(|| black_box(st.load_chunk("bench:chunk", src).unwrap()));
    });
    g.finish();
}

fn conversion(c: &mut Criterion) {
    let mut g = c.benchmark_group("convert");
    let lua = Lua::new();
    let t: LuaValue = lua
        .load(r#"return {id = 42, name = "alice", tags = {"a", "b", "c"}, score = 1.5, ok = true}"#)
        .eval()
        .unwrap();
    g.bench_function("small_table_lua_to_value", |b| {
        b.iter(|| black_box(convert::from_lua(&t).unwrap()))
    });
    let v = convert::from_lua(&t).unwrap();
    g.bench_function("small_table_value_to_lua", |b| {
        b.iter(|| black_box(convert::to_lua(&lua, &v).unwrap()))
    });
    g.bench_function("small_table_round_trip", |b| {
        b.iter(|| {
            let v: Value = convert::from_lua(&t).unwrap();
            black_box(convert::to_lua(&lua, &v).unwrap())
        })
    });
    g.finish();
}

fn modules(c: &mut Criterion) {
    use wippy::lua::modules;
    let mut g = c.benchmark_group("module");
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::default()).unwrap();
    type BuildFn = fn(&Lua) -> mlua::Result<LuaValue>;
    let builders: [(&str, BuildFn); 8] = [
        ("errors", modules::errors::build),
        ("json", modules::json::build),
        ("time", modules::time::build),
        ("crypto", modules::crypto::build),
        ("uuid", modules::uuid::build),
        ("os", modules::os::build),
        ("logger", modules::logger::build),
        ("string_std", modules::stdlib::string),
    ];
    for (name, build) in builders {
        g.bench_function(format!("build_{name}"), |b| {
            b.iter(|| black_box(build(&lua).unwrap()));
            lua.gc_collect().unwrap();
        });
    }
    let f = StateFactory::new(VmConfig::default());
    let mut st = f.acquire(&["json"]).unwrap();
    let enc: Function = st
        .load_chunk("bench:json", "local t = {id = 42, name = 'alice', tags = {'a', 'b', 'c'}, score = 1.5, ok = true} return function() return json.encode(t) end")
        .unwrap()
        .call(())
        .unwrap();
    g.bench_function("json_encode_small", |b| {
        b.iter(|| black_box(enc.call::<LuaValue>(()).unwrap()))
    });
    let dec: Function = st
        .load_chunk("bench:json2", r#"local s = '{"id":42,"name":"alice","tags":["a","b","c"],"score":1.5,"ok":true}' return function() return json.decode(s) end"#)
        .unwrap()
        .call(())
        .unwrap();
    g.bench_function("json_decode_small", |b| {
        b.iter(|| black_box(dec.call::<LuaValue>(()).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, states, chunks, conversion, modules);

fn main() {
    memory_report();
    if std::env::var_os("LUA_VM_MEM_ONLY").is_some() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
