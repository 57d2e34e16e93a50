//! The bench application that ships inside the binary, and booting it.
//!
//! The YAML and Lua files under `src/bench/apps/` are compiled in with `include_str!`. A
//! session writes them into a fresh temporary project directory (`wippy.lock` + `src/`) and
//! boots it with [`App::start_with`] — the same loader, registry, kind managers, hosts and
//! Lua engine `wippy run` uses, so a bench measures the real runtime. The directory is
//! removed when the [`BenchApp`] is dropped.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::boot::{App, BootError, BootOptions};
use crate::config::Config;

/// Namespace of the bench app's entries.
pub const NAMESPACE: &str = "bench";
/// The `process.host` every bench process runs on.
pub const HOST: &str = "bench:host";

/// The project lock file.
const LOCK: &str = "directories:\n  modules: .wippy\n  src: ./src\n";

/// The source files, `(path under src/, text)`.
pub const FILES: &[(&str, &str)] = &[
    ("_index.yaml", include_str!("apps/_index.yaml")),
    ("spawn.lua", include_str!("apps/spawn.lua")),
    ("spawn_child.lua", include_str!("apps/spawn_child.lua")),
    ("pingpong.lua", include_str!("apps/pingpong.lua")),
    ("ring.lua", include_str!("apps/ring.lua")),
    ("fanin.lua", include_str!("apps/fanin.lua")),
    ("call.lua", include_str!("apps/call.lua")),
    ("idle.lua", include_str!("apps/idle.lua")),
    ("idle_proc.lua", include_str!("apps/idle_proc.lua")),
    ("latency.lua", include_str!("apps/latency.lua")),
];

/// A booted bench app.
pub struct BenchApp {
    /// The running application (dropped before the directory).
    pub app: App,
    /// Time [`App::start_with`] took.
    pub boot: Duration,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for BenchApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchApp")
            .field("boot", &self.boot)
            .finish_non_exhaustive()
    }
}

/// Why the bench app could not start.
#[derive(Debug)]
pub enum StartError {
    /// Writing the project files failed.
    Io(String),
    /// Boot failed.
    Boot(BootError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Io(e) => write!(f, "bench app: {e}"),
            StartError::Boot(e) => write!(f, "bench app: {e}"),
        }
    }
}

/// Write the bench project into `dir` (`wippy.lock` and `src/`).
///
/// # Errors
/// The I/O error, naming the file.
pub fn write_project(dir: &Path) -> Result<(), String> {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| format!("create {}: {e}", src.display()))?;
    let lock = dir.join("wippy.lock");
    std::fs::write(&lock, LOCK).map_err(|e| format!("write {}: {e}", lock.display()))?;
    for (name, text) in FILES {
        let p = src.join(name);
        std::fs::write(&p, text).map_err(|e| format!("write {}: {e}", p.display()))?;
    }
    Ok(())
}

impl BenchApp {
    /// Write the project into a temporary directory and boot it with `workers` workers
    /// (None = one per CPU), pinned or not. The `bench` probe module is registered first.
    ///
    /// # Errors
    /// [`StartError`].
    pub fn start(workers: Option<usize>, pin: bool) -> Result<BenchApp, StartError> {
        super::probe::register();
        let dir = tempfile::Builder::new()
            .prefix("wippy-bench-")
            .tempdir()
            .map_err(|e| StartError::Io(format!("temporary directory: {e}")))?;
        write_project(dir.path()).map_err(StartError::Io)?;
        let mut opts = BootOptions::new(dir.path());
        opts.workers = workers;
        opts.pin = pin;
        let started = Instant::now();
        let app = App::start_with(Config::defaults(), opts).map_err(StartError::Boot)?;
        let boot = started.elapsed();
        Ok(BenchApp {
            app,
            boot,
            _dir: dir,
        })
    }
}
