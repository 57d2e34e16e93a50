//! The engine's Lua modules: the process-bound and blocking ones.
//!
//! | module | kind | file |
//! |---|---|---|
//! | `process` | core global | [`process`] |
//! | `channel` | core global | [`super::channel`] |
//! | `coroutine.spawn`, engine `resume`/`wrap` | extension of `coroutine` | [`super::coro`] |
//! | `time.sleep/after/timer/ticker` | extension of `time` | [`time`] |
//! | `funcs` (+ Future, Executor) | listed | [`funcs`] |
//! | `io` | listed (terminal only) | [`io`] |
//! | `system` | listed | [`system`] |
//! | `ctx` | listed | [`ctx`] |
//! | `sql` (+ `sql.builder`) | listed | [`sql`] |
//!
//! [`register`] adds them to the module registry once per OS process (before any state is
//! built, since module values are cached per state).

pub mod ctx;
pub mod funcs;
pub mod io;
pub mod process;
pub mod sql;
pub mod system;
pub mod time;

use std::sync::{Arc, Once};

use crate::lua::modules::{extend_module, register_module};

static REGISTER: Once = Once::new();

/// Register the engine's modules and extensions (idempotent).
pub fn register() {
    REGISTER.call_once(|| {
        register_module("process", true, Arc::new(process::build));
        register_module("channel", true, Arc::new(super::channel::build));
        register_module("funcs", false, Arc::new(funcs::build));
        register_module("io", false, Arc::new(io::build));
        register_module("system", false, Arc::new(system::build));
        register_module("ctx", false, Arc::new(ctx::build));
        register_module("sql", false, Arc::new(sql::build));
        extend_module("coroutine", Arc::new(super::coro::extend))
            .expect("coroutine module is built in");
        extend_module("time", Arc::new(time::extend)).expect("time module is built in");
    });
}
