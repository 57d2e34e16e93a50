//! The Lua engine: Wippy's Lua code running as lightweight processes on the executor
//! (spec `runtime-internals.md` §11, `lua-api.md` §3). See `docs/engine.md`.
//!
//! A Lua process is a [`LuaProcess`] — one Lua state (from the recycling
//! [`StateFactory`](crate::lua::vm::StateFactory)) plus its *tasks*: the main function and every
//! `coroutine.spawn` coroutine, each a Lua thread resumed by the engine. Every blocking call
//! yields the task (never the OS thread): channel operations, subscriptions and process-local
//! wake-ups are resolved inside the step; timers, function calls, exec and terminal reads
//! become completions delivered to the process. Function entries run the same way, as
//! processes on their pool's host, on warm pooled states.
//!
//! | file | what |
//! |---|---|
//! | [`shared`] | [`Engine`] (per application), [`EngineConfig`] |
//! | [`code`] | Lua entries, compile-at-accept, code store, import plans |
//! | [`kinds`] | registry listeners for `library.lua` / `process.lua` / `function.lua` |
//! | [`process`] | [`LuaProcess`]: init / step / close |
//! | [`core`] | per-process run state, how callbacks reach it |
//! | [`task`] | resuming a task, classifying its stop |
//! | [`yields`] | the blocking-call protocol (marker yields) |
//! | [`coro`] | runtime-yield-aware `coroutine.resume`/`wrap`, `coroutine.spawn` |
//! | [`channel`] | channels and `channel.select` |
//! | [`mailbox`] | mailbox and subscriptions |
//! | [`submap`] | the subscriptions by topic (vector while small) |
//! | [`message`] | `process.Message` objects |
//! | [`pool`] | function pools and call routing |
//! | [`rawapi`] | raw Lua C API helpers for the hot paths |
//! | [`preempt`] | watchdog-armed instruction budget |
//! | [`modules`] | `process`, `funcs`, `time` (blocking part), `io`, `system`, `ctx` |

pub mod channel;
pub mod code;
pub mod core;
pub mod coro;
pub mod jobs;
pub mod kinds;
pub mod mailbox;
pub mod message;
pub mod modules;
pub mod pool;
pub mod preempt;
pub mod process;
pub mod rawapi;
pub mod rawfn;
pub mod shared;
pub mod submap;
pub mod task;
pub mod yields;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use wippy_rt::HostConfig;

pub use code::{CodeStore, LuaEntry, LuaKind, Plan};
pub use pool::{FnPool, PoolKind, PoolSpec, pool_spec};
pub use process::LuaProcess;
pub use shared::{ENGINE_KEY, Engine, EngineConfig};

use crate::system::System;
use crate::system::process_manager;

/// Host of the engine's own maintenance process.
pub const ENGINE_HOST: &str = "lua:engine";

/// Install the Lua engine into `sys` with the default configuration (idempotent): registers
/// the engine's modules, the process manager, the kind listeners for Lua entries and the pool
/// maintenance process. Call during boot's load phase, before entries are loaded.
pub fn install(sys: &Arc<System>) -> Arc<Engine> {
    install_with(sys, EngineConfig::default())
}

/// [`install`] with an explicit configuration (ignored if the engine is already installed).
pub fn install_with(sys: &Arc<System>, cfg: EngineConfig) -> Arc<Engine> {
    if let Some(e) = Engine::of(sys) {
        return e;
    }
    modules::register();
    preempt::configure(cfg.preempt);
    let pm = process_manager::install(sys);
    let engine = Arc::new(Engine {
        sys: sys.clone(),
        factory: crate::lua::vm::StateFactory::new(cfg.vm.clone()),
        code: CodeStore::default(),
        pools: Default::default(),
        pm,
        host_seq: AtomicU64::new(0),
        config: cfg,
    });
    if let Err(e) = engine.factory.prewarm(engine.config.prewarm) {
        log::warn!(error:% = e; "could not prewarm Lua states");
    }
    sys.handle
        .app_context()
        .set_arc(&ENGINE_KEY, engine.clone());
    kinds::install(&engine);
    match sys.handle.add_host(ENGINE_HOST, HostConfig::default()) {
        Ok(()) => {
            let m = pool::Maintenance {
                engine: Arc::downgrade(&engine),
                ticker: None,
            };
            if let Err(e) = sys.handle.spawn(
                ENGINE_HOST,
                Box::new(m),
                "main",
                Vec::new(),
                Default::default(),
            ) {
                log::warn!(error:% = e; "could not start the function pool maintenance");
            }
        }
        Err(e) => log::warn!(error:% = e; "could not add the Lua engine host"),
    }
    engine
}
