//! Small Lua-side helper functions (protected calls that can yield, for
//! [`super::protect::protected`]).
//!
//! They are written in Lua because they call `pcall` yieldably. (The raising trampoline of
//! [`super::raise`] used to live here too; it is a C closure now, so a state that never asks
//! for a protected wrapper — every process: the engine runs chunks with `lua_pcall` directly —
//! never loads this chunk.) To keep per-state memory low they are compiled **once per OS process** into
//! stripped bytecode (no debug info) and loaded into a state only when it first needs one;
//! the resulting table is cached in the state's registry.

use std::sync::LazyLock;

use mlua::chunk::ChunkMode;
use mlua::{Lua, Table};

const HELPERS_KEY: &str = "wippy.helpers";

const HELPERS_SRC: &str = r#"
local pcall = ...
local H = {}
-- protected call that keeps raised values intact (pcall is yieldable in 5.4)
function H.protect(f) return function(...) return pcall(f, ...) end end
return H
"#;

/// Stripped bytecode of [`HELPERS_SRC`], compiled once per OS process.
static BYTECODE: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let lua = Lua::new();
    let f = lua
        .load(HELPERS_SRC)
        .set_name("=[C]")
        .into_function()
        .expect("helper chunk compiles");
    f.dump(true)
});

/// The helper table of this state (loaded on first use).
pub(crate) fn helpers(lua: &Lua) -> mlua::Result<Table> {
    if let Some(t) = lua.named_registry_value::<Option<Table>>(HELPERS_KEY)? {
        return Ok(t);
    }
    let g = lua.globals();
    let t: Table = lua
        .load(&BYTECODE[..])
        .set_mode(ChunkMode::Binary)
        .set_name("=[C]")
        .call(g.get::<mlua::Value>("pcall")?)?;
    lua.set_named_registry_value(HELPERS_KEY, &t)?;
    Ok(t)
}
