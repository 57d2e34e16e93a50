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

/// Wrap `f` so that calling the result returns `(true, ...)` or `(false, err_value)` instead of
/// raising. Works inside coroutines and across yields.
pub fn protected(lua: &Lua, f: &Function) -> mlua::Result<Function> {
    super::helpers::helpers(lua)?
        .raw_get::<Function>("protect")?
        .call(f)
}
