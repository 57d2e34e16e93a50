//! Kind managers for `library.lua`, `process.lua` and `function.lua` (registry listeners).
//!
//! Each create/update is parsed and compiled *at accept time* ([`LuaEntry::parse`]), so a
//! syntax error rejects that entry — and with it the registry change, which at boot fails
//! `wippy run` — with `<entry id>:<line>: <message>`. The import plan is resolved too: a
//! missing import rejects with `NotFound`, which the registry retries after the rest of the
//! change was applied (entries may arrive in any order).
//!
//! * `library.lua`: stored; processes spawned later and function workers built later see the
//!   new code.
//! * `process.lua`: stored and registered as a [`ProcessFactory`]; running processes keep
//!   their code, new spawns use the new one; delete removes the factory.
//! * `function.lua`: stored, a new [`FnPool`] is built (and registered as the function
//!   handler); the previous pool of the entry is retired; delete retires it and unregisters
//!   the function.
//!
//! Precompiled `*.lua.bc` kinds are matched and rejected with a clear message.

use std::sync::{Arc, Weak};

use wippy_rt::{Error, Process};

use super::code::{LuaEntry, LuaKind};
use super::pool::{FnHandler, FnPool};
use super::process::LuaProcess;
use super::shared::Engine;
use crate::registry::{EntryEvent, OpKind};
use crate::system::ProcessFactory;

/// The factory of one `process.lua` entry.
pub(crate) struct LuaFactory {
    engine: Weak<Engine>,
    id: String,
    method: String,
}

impl ProcessFactory for LuaFactory {
    fn create(&self) -> Result<Box<dyn Process>, Error> {
        let engine = self.engine.upgrade().ok_or_else(super::shared::no_engine)?;
        Ok(Box::new(LuaProcess::process(engine, &self.id)))
    }

    fn default_method(&self) -> &str {
        &self.method
    }
}

/// Register the three listeners on the system's registry.
pub(crate) fn install(engine: &Arc<Engine>) {
    let handlers = engine.sys.registry.handlers();
    for pattern in ["library.lua.**", "process.lua.**", "function.lua.**"] {
        let w = Arc::downgrade(engine);
        handlers.add_listener_fn(pattern, "lua.engine", move |ev| {
            let engine = w.upgrade().ok_or_else(super::shared::no_engine)?;
            on_entry(&engine, ev)
        });
    }
}

fn on_entry(engine: &Arc<Engine>, ev: &EntryEvent) -> Result<(), Error> {
    let id = ev.entry.id.to_string();
    if ev.op == OpKind::Delete {
        remove(engine, &id);
        return Ok(());
    }
    let entry = Arc::new(LuaEntry::parse(&ev.entry)?);
    engine.code.plan(&entry)?;
    match entry.kind {
        LuaKind::Library => {
            engine.code.put(entry);
        }
        LuaKind::Process => {
            let method = entry.method.clone();
            engine.code.put(entry);
            engine.sys.factories.register(
                &id,
                Arc::new(LuaFactory {
                    engine: Arc::downgrade(engine),
                    id: id.clone(),
                    method,
                }),
            );
        }
        LuaKind::Function => {
            let previous = engine.code.get(&id);
            engine.code.put(entry.clone());
            let pool = match FnPool::new(engine, entry) {
                Ok(p) => p,
                Err(e) => {
                    match previous {
                        Some(p) => engine.code.put(p),
                        None => {
                            engine.code.remove(&id);
                        }
                    }
                    return Err(e);
                }
            };
            let old = engine
                .pools
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.clone(), pool);
            if let Some(old) = old {
                old.retire();
            }
            engine.sys.functions.register(
                &id,
                Arc::new(FnHandler {
                    engine: Arc::downgrade(engine),
                    id: id.clone(),
                }),
            );
        }
    }
    Ok(())
}

fn remove(engine: &Arc<Engine>, id: &str) {
    let Some(e) = engine.code.remove(id) else {
        return;
    };
    match e.kind {
        LuaKind::Library => {}
        LuaKind::Process => {
            engine.sys.factories.remove(id);
        }
        LuaKind::Function => {
            engine.sys.functions.remove(id);
            let old = engine
                .pools
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
            if let Some(old) = old {
                old.retire();
            }
        }
    }
}
