//! Per-state run-time data: which process the state currently hosts.
//!
//! Stored as mlua *app data* of type [`StateData`] so Rust callbacks (`print`, `require`,
//! `logger`, the engine's modules) reach it in O(1) without a Lua lookup. The engine sets the
//! process identity when it binds a state to a process ([`LuaState::set_process`]) and the
//! factory clears it on release, so nothing of one process is visible to the next.
//!
//! [`LuaState::set_process`]: super::LuaState::set_process

use std::sync::Arc;

use mlua::{Lua, Table, Value};
use wippy_rt::Pid;

/// Identity of the process (or function call) a state is running.
#[derive(Clone, Debug, Default)]
pub struct ProcessInfo {
    /// The process PID (None for a function worker between calls or a bare state).
    pub pid: Option<Pid>,
    /// Registry ID (`ns:name`) of the running entry; used for `print`/`logger` locations.
    pub entry: Option<Arc<str>>,
}

/// The per-state data slot (mlua app data).
#[derive(Default)]
pub struct StateData {
    /// The current process's global environment (`_ENV` of its chunks), if one is bound.
    pub env: Option<Table>,
    /// Who is running.
    pub info: ProcessInfo,
    /// The per-state cache of built module values (name → frozen value). A vector: a state
    /// holds a handful (an idle process one or two), and a hash map's first allocation cost
    /// ~250 bytes per state.
    pub modules: Vec<(Box<str>, Value)>,
}

/// The environment table of the process currently bound to `lua`: its per-process `_ENV`,
/// or the state's real globals when no process is bound (bare states, tests).
pub fn current_env(lua: &Lua) -> Table {
    if let Some(d) = lua.app_data_ref::<StateData>()
        && let Some(env) = &d.env
    {
        return env.clone();
    }
    lua.globals()
}

/// A copy of the current process identity (default when none is bound).
pub fn process_info(lua: &Lua) -> ProcessInfo {
    lua.app_data_ref::<StateData>()
        .map(|d| d.info.clone())
        .unwrap_or_default()
}

/// `"<entry id>:<line>"` of the Lua code `level` frames up (1 = the caller of the running Rust
/// function), as upstream's `print`/`logger` `location` field; `"<entry>"` alone when the line
/// is unknown.
pub fn location(lua: &Lua, level: usize) -> String {
    let entry = lua
        .app_data_ref::<StateData>()
        .and_then(|d| d.info.entry.clone());
    let line = lua.inspect_stack(level, |d| d.current_line()).flatten();
    let src = match entry {
        Some(e) => e.to_string(),
        None => lua
            .inspect_stack(level, |d| d.source().short_src.map(|s| s.into_owned()))
            .flatten()
            .unwrap_or_default(),
    };
    match line {
        Some(l) => format!("{src}:{l}"),
        None => src,
    }
}
