//! Lua: the typed-Lua dialect front end and the Lua engine.

pub mod frontend;
