//! The sandboxed base globals of a state (spec `lua-api.md` §3.1, §3.3, §4.5).
//!
//! Layout of one state:
//!
//! ```text
//!  process chunk ──_ENV──▶ env table E  (per process; E._G = E; modules/imports as fields)
//!                            │ metatable {__index = B, __metatable = false}
//!                            ▼
//!                          base table B (the state's real globals; never reachable from Lua)
//!                            │ metatable {__index = lazy loader}
//!                            ▼
//!                          lazy loader: builds `table`, `math`, `os`, `errors`, … on first
//!                          access, marks it read-only, stores it in B, returns it
//! ```
//!
//! B serves the base functions upstream keeps (`assert error pcall xpcall type tostring
//! tonumber pairs ipairs next select rawget rawset rawequal rawlen getmetatable setmetatable
//! _VERSION`), plus `print` (an info log line), `require` (`_ENV[name]` or an error), a
//! `package` stub and `unpack` — all built by the loader on first access and then stored in B
//! (the stock C functions are taken once per program from a scratch state). `load`,
//! `loadfile`, `dofile`, `collectgarbage` and `warn` are removed; `io`, `debug`, `utf8` are
//! never opened. `string` is set eagerly because the string metatable (`("x"):upper()`,
//! `"10" + 1`) must exist from the start, but its table is a [`super::lazy`] one; every other
//! library table is built on first access, so an idle process pays only for what it touched.
//!
//! Invariants: user code can reach B only through E's `__index` (reads); B's library values
//! are read-only tables ([`super::readonly`]); a process writes only to its own E. Dropping
//! E therefore resets everything a process could change, which is what makes state recycling
//! safe ([`super::StateFactory`]).

use mlua::{Function, Lua, MultiValue, Table, Value, Variadic};

use super::data::{self, process_info};
use super::raise;
use super::readonly;
use crate::lua::modules;

/// Base functions removed from the stock base library (unsupported upstream).
const REMOVED_BASE: &[&str] = &[
    "load",
    "loadfile",
    "dofile",
    "collectgarbage",
    "warn",
    "print",
    "_G",
];

/// Registry key of the shared per-process env metatable.
pub(super) const ENV_MT_KEY: &str = "wippy.env_mt";

/// Build the sandboxed base globals in a fresh state (base library already opened by mlua).
pub(super) fn build_base(lua: &Lua) -> mlua::Result<Table> {
    let base = fresh_globals(lua)?;

    // `string`: eager (the string metatable must exist for method calls and coercions).
    let string = modules::module_value(lua, "string")?.unwrap_or(Value::Nil);
    base.raw_set("string", string)?;

    // Everything else is built on first access (`print`, `require`, `package`, `unpack` and
    // the core library/module tables), so an idle process pays only for what it touched. The
    // loader is a light C function: an mlua closure would bring a callback userdata and two
    // internal metatables (~0.5 KB) into every state.
    // SAFETY: plain API calls on the main thread inside `exec_raw`'s protected call; the
    // globals table is at index 1 and stays there; the stack is balanced.
    unsafe {
        lua.exec_raw::<()>(&base, |l| {
            mlua::ffi::lua_createtable(l, 0, 1);
            mlua::ffi::lua_pushcfunction(l, base_index);
            mlua::ffi::lua_setfield(l, -2, c"__index".as_ptr());
            mlua::ffi::lua_setmetatable(l, 1);
        })?;
    }

    let env_mt = lua.create_table_with_capacity(0, 2)?;
    env_mt.raw_set("__index", &base)?;
    env_mt.raw_set("__metatable", false)?;
    readonly::set_readonly(lua, &env_mt, true)?;
    lua.set_named_registry_value(ENV_MT_KEY, env_mt)?;
    Ok(base)
}

/// `__index` of the base table B: builds the global `key`, stores it in B (raw) and returns
/// it; nil for names B does not serve. Base C functions and `_VERSION` are pushed directly;
/// the rest (`print`, `require`, `package`, `unpack`, core modules) is built through mlua by
/// [`load_global`] in an inner frame, so a raised error never skips a Rust destructor.
unsafe extern "C-unwind" fn base_index(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: called by Lua as `__index(B, key)`: index 1 is B, index 2 the key. Every path
    // pushes exactly one value; `lua_error` is reached only after `load_global`'s frame (and
    // every Rust value it made) is gone, with the message string on top.
    unsafe {
        let mut len = 0usize;
        if ffi::lua_type(l, 2) != ffi::LUA_TSTRING {
            ffi::lua_pushnil(l);
            return 1;
        }
        let p = ffi::lua_tolstring(l, 2, &mut len);
        let key = std::slice::from_raw_parts(p as *const u8, len);
        if let Some((_, f)) = base_lib()
            .functions
            .iter()
            .find(|(n, _)| n.as_bytes() == key)
        {
            ffi::lua_pushcfunction(l, *f);
        } else if key == b"_VERSION" {
            let v = &base_lib().version;
            ffi::lua_pushlstring(l, v.as_ptr() as *const _, v.len());
        } else {
            let Ok(name) = std::str::from_utf8(key) else {
                ffi::lua_pushnil(l);
                return 1;
            };
            match load_global(l, name).map_err(|e| e.to_string()) {
                Ok(true) => {}
                Ok(false) => {
                    ffi::lua_pushnil(l);
                    return 1;
                }
                Err(msg) => {
                    ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
                    drop(msg);
                    ffi::lua_error(l);
                }
            }
        }
        // B[key] = value (raw), then return it.
        ffi::lua_pushvalue(l, 2);
        ffi::lua_pushvalue(l, -2);
        ffi::lua_rawset(l, 1);
        1
    }
}

/// Build the global `name` through mlua and push it onto `l`; false (nothing pushed) for a
/// name B does not serve.
///
/// # Safety
/// `l` must be a live thread of a state made by [`super::LuaState`].
unsafe fn load_global(l: *mut mlua::ffi::lua_State, name: &str) -> mlua::Result<bool> {
    // SAFETY: `l` belongs to a state mlua created (caller contract).
    let lua = unsafe { Lua::get_or_init_from_ptr(l) };
    let v = match name {
        "print" => Value::Function(print_function(lua)?),
        "require" => Value::Function(require_function(lua)?),
        "package" => Value::Table(package_stub(lua)?),
        "unpack" => {
            // 5.1 heritage: global `unpack` = `table.unpack`.
            match modules::module_value(lua, "table")? {
                Some(Value::Table(t)) => t.raw_get("unpack")?,
                _ => Value::Nil,
            }
        }
        name if modules::is_core(name) => match modules::module_value(lua, name)? {
            Some(v) => v,
            None => return Ok(false),
        },
        _ => return Ok(false),
    };
    // SAFETY: `l` is a live thread of `lua`'s state.
    unsafe { super::stack::push_value(lua, l, &v) }?;
    Ok(true)
}

/// Replace the globals table mlua filled with the stock base library by an empty one: the
/// base functions are served on first read by the base loader ([`base_lib`]) like the
/// library tables, so an idle state holds only the few it used (the eager table with 25
/// functions and their names cost ~1.5 KB per state). The stock table becomes garbage once
/// `package.loaded._G` (set by `luaL_requiref`) points to the new table; the state's creator
/// collects it ([`super::LuaState::new`]).
fn fresh_globals(lua: &Lua) -> mlua::Result<Table> {
    use mlua::ffi;
    // SAFETY: plain API calls on the state's main thread inside `exec_raw`'s protected call;
    // the stack is balanced (table stored, `_LOADED` pushed and popped).
    unsafe {
        lua.exec_raw::<()>((), |l| {
            ffi::lua_createtable(l, 0, 4);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_rawseti(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_GLOBALS);
            // `package.loaded._G` → the new table: argument errors name a C function by
            // finding it there (`bad argument #1 to 'type'`).
            if ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"_LOADED".as_ptr()) == ffi::LUA_TTABLE
            {
                ffi::lua_pushvalue(l, -2);
                ffi::lua_setfield(l, -2, c"_G".as_ptr());
            }
            ffi::lua_pop(l, 2);
        })?;
    }
    Ok(lua.globals())
}

/// The base functions a sandboxed state serves (stock `lbaselib.c` C functions minus
/// [`REMOVED_BASE`], with `type` replaced by [`type_function`]) and `_VERSION`, taken once per
/// program from a scratch state.
struct BaseLib {
    functions: Vec<(String, mlua::ffi::lua_CFunction)>,
    version: String,
}

fn base_lib() -> &'static BaseLib {
    use mlua::ffi;
    static LIB: std::sync::OnceLock<BaseLib> = std::sync::OnceLock::new();
    LIB.get_or_init(|| {
        let mut functions = Vec::new();
        let mut version = String::new();
        // SAFETY: a private state made and closed here; `luaopen_base` returns the globals
        // table at index 1; only reads follow.
        unsafe {
            let l = ffi::luaL_newstate();
            assert!(!l.is_null(), "cannot create a Lua state");
            ffi::lua_pushcfunction(l, ffi::luaopen_base);
            ffi::lua_call(l, 0, 1);
            for (name, f) in super::lazy::c_functions(l, 1) {
                if REMOVED_BASE.contains(&name.as_str()) {
                    continue;
                }
                // `type`: the stock one, except that typed-Lua type objects answer "type"
                // (`type(T)` → "type"), a C function like `luaB_type`.
                let f = if name == "type" { type_function } else { f };
                functions.push((name, f));
            }
            if ffi::lua_getfield(l, 1, c"_VERSION".as_ptr()) == ffi::LUA_TSTRING {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, -1, &mut len);
                version = String::from_utf8_lossy(std::slice::from_raw_parts(p as *const u8, len))
                    .into_owned();
            }
            ffi::lua_close(l);
        }
        BaseLib { functions, version }
    })
}

/// Meta field that marks typed-Lua type objects (set by their metatable; see
/// `crate::lua::frontend::runtime`), so `type(T)` can answer "type".
pub(crate) const TYPE_OBJECT_MARK: &std::ffi::CStr = c"__wippy_type";

/// `type(v)`: `luaB_type` plus "type" for values whose metatable carries
/// [`TYPE_OBJECT_MARK`].
unsafe extern "C-unwind" fn type_function(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: called by Lua as a C function; the calls below only inspect argument 1 and push
    // one string. `luaL_checkany` may raise (longjmp): no Rust value with a destructor is live.
    unsafe {
        ffi::luaL_checkany(l, 1);
        let t = ffi::lua_type(l, 1);
        if t == ffi::LUA_TUSERDATA
            && ffi::luaL_getmetafield(l, 1, TYPE_OBJECT_MARK.as_ptr()) != ffi::LUA_TNIL
        {
            ffi::lua_settop(l, 1);
            ffi::lua_pushstring(l, c"type".as_ptr());
            return 1;
        }
        ffi::lua_pushstring(l, ffi::lua_typename(l, t));
        1
    }
}

/// `print(...)`: tostring each argument, join with a space, log at info level with the
/// `pid` and `location` fields (spec §3.3) — never stdout.
fn print_function(lua: &Lua) -> mlua::Result<Function> {
    let tostring: Function = lua.globals().get("tostring")?;
    lua.create_function(move |lua, args: Variadic<Value>| {
        let mut line = String::new();
        for (i, v) in args.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            match v {
                Value::String(s) => line.push_str(&s.to_string_lossy()),
                other => {
                    let s: mlua::LuaString = tostring.call(other)?;
                    line.push_str(&s.to_string_lossy());
                }
            }
        }
        let info = process_info(lua);
        let location = data::location(lua, 1);
        let pid = info.pid.as_ref().map(|p| p.to_string()).unwrap_or_default();
        log::info!(target: "lua", pid = pid.as_str(), location = location.as_str(); "{line}");
        Ok(())
    })
}

/// `require(name)`: the current process's global `name`, or the error
/// `module '<name>' not found` (spec §3.1.2).
fn require_function(lua: &Lua) -> mlua::Result<Function> {
    raise::function(lua, |lua, args: MultiValue| {
        let name = match args.front() {
            Some(Value::String(s)) => s.to_str()?.to_string(),
            Some(Value::Integer(i)) => i.to_string(),
            Some(Value::Number(n)) => lua
                .coerce_string(Value::Number(*n))?
                .map(|s| s.to_string_lossy())
                .unwrap_or_default(),
            other => {
                let got = other.map(|v| v.type_name()).unwrap_or("no value");
                return raise::raise_msg(
                    lua,
                    format!("bad argument #1 to 'require' (string expected, got {got})"),
                );
            }
        };
        let env = data::current_env(lua);
        let v: Value = env.get(name.as_str())?;
        if v.is_nil() {
            return raise::raise_msg(lua, format!("module '{name}' not found"));
        }
        Ok(MultiValue::from_vec(vec![v]))
    })
}

/// `package`: `loadlib` returns `nil, "loadlib disabled"`, `seeall` is a no-op, empty paths.
fn package_stub(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 4)?;
    t.raw_set(
        "loadlib",
        lua.create_function(|_, _: MultiValue| Ok((Value::Nil, "loadlib disabled")))?,
    )?;
    t.raw_set("seeall", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    t.raw_set("path", "")?;
    t.raw_set("cpath", "")?;
    readonly::readonly(lua, t)
}

/// The shared metatable of per-process environments (kept by the state, which builds each
/// process environment `E` with `E._G = E` and this metatable: reads fall back to the base).
pub(super) fn env_metatable(lua: &Lua) -> mlua::Result<Table> {
    lua.named_registry_value(ENV_MT_KEY)
}
