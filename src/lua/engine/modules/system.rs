//! `system` (spec `lua-api.md` §3.8.18): runtime control and introspection.
//!
//! * `system.exit([code = 0])` records the exit code and starts the graceful shutdown (the
//!   first call starts it, every call overwrites the code — last writer wins, as upstream);
//!   returns `true` at once, the caller keeps running.
//! * `system.modules()` → `{ {name = "json", description = "", class = {}}, … }` (registered
//!   module names, sorted).
//! * `system.memory.stats()` → `{heap_alloc, heap_limit}` of this process's Lua state,
//!   `allocated()`, `get_limit()`, `set_limit(bytes)` (this state);
//!   `system.gc.collect()`, `get_percent()`/`set_percent()` (the collector's pause);
//!   `system.runtime.{goroutines, max_procs, cpu_count}()` (live processes, workers, CPUs);
//!   `system.process.{pid, hostname}()` (the OS process).

use mlua::{Lua, Value as LuaValue};

use super::super::core::with_core;

/// Module names of the original runtime (`lua-api.md` §3.8.25) plus the engine's globals;
/// `system.modules()` lists those registered here.
const UPSTREAM_MODULES: &[&str] = &[
    "base64",
    "cdc",
    "channel",
    "cloudstorage",
    "compress",
    "contract",
    "crypto",
    "ctx",
    "env",
    "errors",
    "eval_runner",
    "events",
    "excel",
    "exec",
    "expr",
    "fs",
    "funcs",
    "hash",
    "html",
    "http",
    "http_client",
    "hub",
    "io",
    "json",
    "loader",
    "logger",
    "metrics",
    "os",
    "payload",
    "pg",
    "process",
    "queue",
    "registry",
    "security",
    "sql",
    "store",
    "stream",
    "system",
    "templates",
    "text",
    "time",
    "treesitter",
    "tty",
    "uuid",
    "websocket",
    "workflow",
    "yaml",
];

const PAUSE_KEY: &str = "wippy.system.gc_pause";
/// Lua 5.4's default collector pause (percent).
const DEFAULT_PAUSE: i64 = 200;

fn gc_pause(lua: &Lua) -> mlua::Result<i64> {
    Ok(lua
        .named_registry_value::<Option<i64>>(PAUSE_KEY)?
        .unwrap_or(DEFAULT_PAUSE))
}

/// The state's memory limit (0 = none): read by setting it and restoring it.
fn memory_limit(lua: &Lua) -> mlua::Result<usize> {
    let prev = lua.set_memory_limit(0)?;
    lua.set_memory_limit(prev)?;
    Ok(prev)
}

fn exit(lua: &Lua, code: Option<LuaValue>) -> mlua::Result<bool> {
    let code = match code {
        Some(LuaValue::Integer(i)) => i,
        Some(LuaValue::Number(f)) if f.is_finite() => f.trunc() as i64,
        Some(LuaValue::Number(_)) => 1,
        _ => 0,
    };
    let _ = lua;
    let sd = with_core(|c| c.engine.sys.shutdown.clone())
        .map_err(|e| mlua::Error::runtime(e.message()))?;
    sd.trigger(code);
    Ok(true)
}

/// The `system` table.
pub(crate) fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 8)?;
    t.raw_set("exit", lua.create_function(exit)?)?;
    t.raw_set(
        "modules",
        lua.create_function(|lua, ()| {
            let names: Vec<&str> = UPSTREAM_MODULES
                .iter()
                .copied()
                .filter(|n| crate::lua::modules::is_registered(n))
                .collect();
            let out = lua.create_table_with_capacity(names.len(), 0)?;
            for (i, n) in names.iter().enumerate() {
                let m = lua.create_table_with_capacity(0, 3)?;
                m.raw_set("name", *n)?;
                m.raw_set("description", "")?;
                m.raw_set("class", lua.create_table()?)?;
                out.raw_set(i + 1, m)?;
            }
            Ok(out)
        })?,
    )?;
    let memory = lua.create_table_with_capacity(0, 4)?;
    memory.raw_set(
        "stats",
        lua.create_function(|lua, ()| {
            let s = lua.create_table_with_capacity(0, 2)?;
            s.raw_set("heap_alloc", lua.used_memory() as i64)?;
            s.raw_set("heap_limit", memory_limit(lua)? as i64)?;
            Ok(s)
        })?,
    )?;
    memory.raw_set(
        "allocated",
        lua.create_function(|lua, ()| Ok(lua.used_memory() as i64))?,
    )?;
    memory.raw_set(
        "get_limit",
        lua.create_function(|lua, ()| Ok(memory_limit(lua)? as i64))?,
    )?;
    memory.raw_set(
        "set_limit",
        lua.create_function(|lua, n: i64| {
            let prev = lua.set_memory_limit(n.max(0) as usize)?;
            Ok(prev as i64)
        })?,
    )?;
    t.raw_set("memory", memory)?;
    let gc = lua.create_table_with_capacity(0, 3)?;
    gc.raw_set(
        "collect",
        lua.create_function(|lua, ()| {
            lua.gc_collect()?;
            Ok(true)
        })?,
    )?;
    gc.raw_set(
        "set_percent",
        lua.create_function(|lua, p: i64| {
            let p = p.clamp(0, i32::MAX as i64);
            let prev = gc_pause(lua)?;
            lua.gc_set_mode(mlua::state::GcMode::Incremental(
                mlua::state::GcIncParams::default().pause(p as i32),
            ));
            lua.set_named_registry_value(PAUSE_KEY, p)?;
            Ok(prev)
        })?,
    )?;
    gc.raw_set("get_percent", lua.create_function(|lua, ()| gc_pause(lua))?)?;
    t.raw_set("gc", gc)?;
    let runtime = lua.create_table_with_capacity(0, 3)?;
    runtime.raw_set(
        "goroutines",
        lua.create_function(|_, ()| {
            Ok(with_core(|c| c.handle.stats().processes as i64).unwrap_or(0))
        })?,
    )?;
    runtime.raw_set(
        "max_procs",
        lua.create_function(|_, ()| Ok(with_core(|c| c.handle.workers() as i64).unwrap_or(0)))?,
    )?;
    runtime.raw_set(
        "cpu_count",
        lua.create_function(|_, ()| {
            Ok(std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1))
        })?,
    )?;
    t.raw_set("runtime", runtime)?;
    let process = lua.create_table_with_capacity(0, 2)?;
    process.raw_set(
        "pid",
        lua.create_function(|_, ()| Ok(std::process::id() as i64))?,
    )?;
    process.raw_set(
        "hostname",
        lua.create_function(|_, ()| {
            let mut buf = [0u8; 256];
            // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
            let r = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
            if r != 0 {
                return Ok(String::new());
            }
            let n = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        })?,
    )?;
    t.raw_set("process", process)?;
    Ok(LuaValue::Table(t))
}
