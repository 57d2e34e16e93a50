//! Boot and shutdown (spec `runtime-internals.md` §10, §12).
//!
//! * [`component`] — the [`Component`] contract and the [`Loader`] (dependency levels,
//!   parallel load per level, start in order, stop in reverse);
//! * [`app`] — [`App`]: boot a project in-process, run commands, shut down;
//! * [`services`] — the kind-manager components and the Lua-engine integration points;
//! * [`commands`] — `meta.command` lookup (`wippy run <cmd>`, `wippy run list`);
//! * [`env`] — the environment registry (`env.storage.*`, `env.variable`) behind `env`;
//! * [`node`] — the relay node name;
//! * [`logging`] — `log` + `env_logger`, console or JSON;
//! * [`events`] — the registry's event sink on the bus.
//!
//! # Boot sequence ([`App::start_with`])
//!
//! 1. The configuration is loaded and logging configured (by the CLI, before anything logs);
//! 2. the node name is resolved; the runtime is built (workers, pinning, reactor, relay node,
//!    PID generator, dispatcher, bus, app context); the registry is opened with its history
//!    backend; the [`System`](crate::system::System) bundle is built; programmatic shutdown and
//!    (in the binary) SIGINT/SIGTERM are pointed at the shutdown latch;
//! 3. components load level by level, the components of one level in parallel: the standard
//!    ones (`pidgen`, `dispatcher`, `registry`, `finder`, `supervisor`, `topology`,
//!    `lifecycle`, `factory`, `functions`), the kind managers (`services.host`, `lua.engine`,
//!    `services.terminal`) and any extra ones;
//! 4. the dispatcher is frozen and the app context sealed;
//! 5. components start in load order;
//! 6. the project's entries are loaded (`wippy.lock` → files → pipeline) and applied with
//!    `Registry::load_state` — kind managers see them dependency first; the registry's events
//!    reach the bus in order;
//! 7. the supervisor starts the `auto_start` services when that transaction commits; boot
//!    waits for it and fails if a required one did not start.
//!
//! # Shutdown ([`App::shutdown`])
//!
//! The first SIGINT/SIGTERM (or `Shutdown::trigger`, e.g. a finished terminal command)
//! releases [`App::wait`]; a second signal exits at once with status 1 ("force exit"). Then,
//! under one `shutdown.timeout` deadline: services stop (last started first), components stop
//! in reverse load order, and the runtime stops what is left. The exit code is the one stored
//! by `Shutdown::trigger` (0 for a plain signal).

pub mod app;
pub mod commands;
pub mod component;
pub mod env;
pub mod events;
pub mod logging;
pub mod node;
pub mod services;

pub use app::{App, BootError, BootOptions};
pub use component::{BootCx, Component, ComponentError, Loader, Phase};
pub use events::BusSink;
