//! Spawn options and lifecycle hooks (spec §2.9, §4.5).

use std::fmt;

use crate::error::Error;
use crate::pid::Pid;
use crate::value::Value;

/// Options of one spawn, visible to lifecycle hooks, handlers ([`DispatchCx::options`]) and
/// the process itself ([`ProcessCx::options`]).
///
/// Build with `SpawnOptions { parent: Some(p), ..Default::default() }` (fields may be added).
///
/// [`DispatchCx::options`]: crate::dispatch::DispatchCx::options
/// [`ProcessCx::options`]: crate::process::ProcessCx::options
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpawnOptions {
    /// The spawning process (`process.parent`).
    pub parent: Option<Pid>,
    /// The parent monitors the child (`process.monitor`).
    pub monitor: bool,
    /// The parent links to the child (`process.link`).
    pub link: bool,
    /// Register this name for the child (`process.name`).
    pub name: Option<String>,
    /// Registry id of the process entry (introspection, `process.id()`).
    pub source: Option<String>,
    /// Further lifecycle options, for hooks.
    pub attrs: Vec<(String, Value)>,
}

impl SpawnOptions {
    /// Look up an extra attribute.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Hooks around a process's life, run by the runtime for every process (global hooks, in
/// registration order) and then for processes of one host (the host's hook).
pub trait Lifecycle: Send + Sync + 'static {
    /// Runs after `init`, after the PID is routable, before the first step: register names,
    /// monitors and links here. An error aborts the spawn (rolled back, `close` called) and is
    /// returned to the spawner; later hooks do not run.
    fn on_start(&self, pid: &Pid, opts: &SpawnOptions) -> Result<(), Error> {
        let _ = (pid, opts);
        Ok(())
    }

    /// Runs once after the process exited (normal, error, terminated or forced), after it was
    /// removed from the process table and before `close`. All hooks run, errors are ignored.
    fn on_complete(&self, pid: &Pid, result: &Result<Value, Error>) {
        let _ = (pid, result);
    }
}

impl fmt::Debug for dyn Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lifecycle")
    }
}
