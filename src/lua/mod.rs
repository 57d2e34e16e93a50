//! Lua: the typed-Lua dialect front end and the Lua engine.
//!
//! Layers (see `docs/lua.md`):
//! - [`frontend`] translates the typed-Lua dialect into plain Lua 5.4 source;
//! - [`vm`] owns the patched Lua 5.4 VM: the per-process state factory with its sandboxed
//!   globals, state recycling, chunk cache and the memory/instruction budgets;
//! - [`convert`] moves values between Lua and [`wippy_rt::Value`] (the message hot path);
//! - [`modules`] holds the Lua modules that do not block (`errors`, `json`, `time`, …) and the
//!   module registry through which the engine adds the blocking ones.

pub mod convert;
pub mod engine;
pub mod frontend;
pub mod modules;
pub mod vm;
