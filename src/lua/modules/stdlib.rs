//! Builders for the standard library tables (`string`, `table`, `math`, `coroutine`).
//!
//! The tables come from the stock C openers (`luaopen_*`) called directly — not through
//! `require`, so nothing is registered in `package.loaded`. `math` gets the extras upstream
//! keeps from Lua 5.1/5.2 (spec §3.3): `pow`, `mod`, `log10`, `ldexp`, `frexp`, `cosh`,
//! `sinh`, `tanh`, `atan2`, and a `randomseed` that does nothing (upstream's is a no-op; each
//! state's generator is seeded randomly by Lua 5.4 itself).

use std::ffi::{CString, c_int};
use std::sync::OnceLock;

use mlua::{Lua, Table, Value, ffi};

use crate::lua::vm::lazy::{self, Field};
use crate::lua::vm::readonly::lua_setreadonly;

fn open(lua: &Lua, opener: ffi::lua_CFunction) -> mlua::Result<Table> {
    // SAFETY: `opener` is one of the stock `luaopen_*` functions of the linked Lua 5.4; they
    // are valid lua_CFunctions that take no arguments and return the new library table.
    let f = unsafe { lua.create_c_function(opener)? };
    f.call(())
}

/// `string` (also installs the string metatable used by `("x"):upper()` and the arithmetic
/// coercions `"10" + 1`).
///
/// Every state has one (the string metatable must exist from the start), so the table is a
/// [`lazy`] one: its functions are the stock `lstrlib.c` C functions, taken once per program
/// from a scratch state ([`string_lib`]) and stored into a state's table on first read. The
/// metatable holds the stock metamethods with `__index` = that table, as `luaopen_string`
/// builds it, read-only.
pub fn string(lua: &Lua) -> mlua::Result<Value> {
    let lib = string_lib();
    // SAFETY: pushes the lazy table, builds the metatable next to it and sets it on a string
    // (the metatable of all strings); leaves exactly the table. Run protected by `exec_raw`.
    unsafe {
        lua.exec_raw((), |l| {
            lazy::push(l, &lib.spec);
            ffi::lua_createtable(l, 0, lib.meta.len() as c_int + 1);
            for (name, f) in lib.meta.iter() {
                ffi::lua_pushcfunction(l, *f);
                ffi::lua_setfield(l, -2, name.as_ptr());
            }
            ffi::lua_pushvalue(l, -2);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            // Read-only: `getmetatable("")` returns it (as stock Lua), but user code cannot
            // change string behaviour for later processes of the state through it.
            lua_setreadonly(l, -1, 1);
            ffi::lua_pushliteral(l, c"");
            ffi::lua_pushvalue(l, -2);
            ffi::lua_setmetatable(l, -2);
            ffi::lua_pop(l, 2);
        })
    }
}

/// The stock string library as C function pointers (valid in every state of the program).
struct StringLib {
    spec: lazy::Spec,
    /// The string metatable's metamethods except `__index` (`__add`, `__sub`, …).
    meta: Vec<(CString, ffi::lua_CFunction)>,
}

/// Take the string library's functions and metamethods from a scratch state, once.
fn string_lib() -> &'static StringLib {
    static LIB: OnceLock<StringLib> = OnceLock::new();
    LIB.get_or_init(|| {
        let mut fields: Vec<(&'static str, Field)> = Vec::new();
        let mut meta = Vec::new();
        // SAFETY: a private state made and closed here; only stock API calls; the library
        // table stays at index 1, its metatable walk happens on top of it.
        unsafe {
            let l = ffi::luaL_newstate();
            assert!(!l.is_null(), "cannot create a Lua state");
            ffi::lua_pushcfunction(l, ffi::luaopen_string);
            ffi::lua_call(l, 0, 1);
            for (name, f) in lazy::c_functions(l, 1) {
                let name: &'static str = Box::leak(name.into_boxed_str());
                fields.push((name, Field::Fn(f)));
            }
            ffi::lua_pushliteral(l, c"");
            if ffi::lua_getmetatable(l, -1) != 0 {
                let mt = ffi::lua_gettop(l);
                for (name, f) in lazy::c_functions(l, mt) {
                    if name != "__index" {
                        meta.push((CString::new(name).expect("metamethod name"), f));
                    }
                }
            }
            ffi::lua_close(l);
        }
        fields.sort_by(|a, b| a.0.cmp(b.0));
        StringLib {
            spec: lazy::Spec::new("string", Box::leak(fields.into_boxed_slice())),
            meta,
        }
    })
}

/// `table` (includes `table.unpack`; the global `unpack` alias is set by the sandbox).
pub fn table(lua: &Lua) -> mlua::Result<Value> {
    Ok(Value::Table(open(lua, ffi::luaopen_table)?))
}

/// `coroutine` (the engine extends it with `spawn` and runtime-yield-aware `resume`/`wrap`).
pub fn coroutine(lua: &Lua) -> mlua::Result<Value> {
    Ok(Value::Table(open(lua, ffi::luaopen_coroutine)?))
}

/// `math` with the 5.1/5.2 extras.
pub fn math(lua: &Lua) -> mlua::Result<Value> {
    let m = open(lua, ffi::luaopen_math)?;
    m.raw_set(
        "pow",
        lua.create_function(|_, (x, y): (f64, f64)| Ok(x.powf(y)))?,
    )?;
    let fmod: Value = m.raw_get("fmod")?;
    m.raw_set("mod", fmod)?;
    m.raw_set("log10", lua.create_function(|_, x: f64| Ok(x.log10()))?)?;
    m.raw_set(
        "ldexp",
        lua.create_function(|_, (x, e): (f64, i64)| Ok(ldexp(x, e)))?,
    )?;
    m.raw_set("frexp", lua.create_function(|_, x: f64| Ok(frexp(x)))?)?;
    m.raw_set("cosh", lua.create_function(|_, x: f64| Ok(x.cosh()))?)?;
    m.raw_set("sinh", lua.create_function(|_, x: f64| Ok(x.sinh()))?)?;
    m.raw_set("tanh", lua.create_function(|_, x: f64| Ok(x.tanh()))?)?;
    m.raw_set(
        "atan2",
        lua.create_function(|_, (y, x): (f64, Option<f64>)| Ok(y.atan2(x.unwrap_or(1.0))))?,
    )?;
    m.raw_set(
        "randomseed",
        lua.create_function(|_, _: mlua::MultiValue| Ok(()))?,
    )?;
    Ok(Value::Table(m))
}

/// `x * 2^e` without overflowing intermediate powers.
pub fn ldexp(x: f64, e: i64) -> f64 {
    let mut x = x;
    let mut e = e.clamp(-2200, 2200) as i32;
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e)
}

/// Split `x` into a mantissa in `[0.5, 1)` (sign kept) and a power of two.
pub fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    if exp == 0 {
        // Subnormal: scale into the normal range first.
        let (m, e) = frexp(x * 2f64.powi(54));
        return (m, e - 54);
    }
    let m = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (m, exp - 1022)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frexp_ldexp_round_trip() {
        for x in [1.0, -3.5, 0.1, 1e300, 5e-324, 1024.0] {
            let (m, e) = frexp(x);
            assert!((0.5..1.0).contains(&m.abs()), "{x} -> {m}");
            assert_eq!(ldexp(m, e), x);
        }
        assert_eq!(frexp(8.0), (0.5, 4));
    }
}
