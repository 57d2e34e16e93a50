//! Running Lua functions so that raised values reach Rust intact.
//!
//! When an error escapes a Lua call made through mlua, mlua keeps only its *string* form for
//! anything that is not an mlua error (so an `errors.new{kind=...}` object raised with
//! `error(obj)` would lose its kind). The engine therefore runs a process's main function
//! through [`protected`]: a Lua wrapper that calls the function under `pcall` (yields still
//! cross it: Lua 5.4's `pcall` is yieldable) and returns `true, results...` or
//! `false, error_value`, from which [`crate::lua::modules::errors::value_to_rt`] rebuilds the
//! structured error.

use mlua::{Function, Lua};

const PROTECT_KEY: &str = "wippy.protect";

/// Wrap `f` so that calling the result returns `(true, ...)` or `(false, err_value)` instead of
/// raising. Works inside coroutines and across yields.
pub fn protected(lua: &Lua, f: &Function) -> mlua::Result<Function> {
    let maker: Function = match lua.named_registry_value::<Function>(PROTECT_KEY) {
        Ok(m) => m,
        Err(_) => {
            let m: Function = lua
                .load("local pcall = ...; return function(f) return function(...) return pcall(f, ...) end end")
                .set_name("=[C]")
                .call(lua.globals().raw_get::<Function>("pcall")?)?;
            lua.set_named_registry_value(PROTECT_KEY, &m)?;
            m
        }
    };
    maker.call(f)
}
