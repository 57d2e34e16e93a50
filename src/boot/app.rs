//! [`App`]: boot a project in-process, run commands on it, shut it down.
//!
//! Used by the `wippy` binary, the integration tests and the benchmark harness:
//!
//! ```no_run
//! use wippy::boot::{App, BootOptions};
//! let app = App::start(BootOptions::new("examples/hello")).expect("boot");
//! println!("{} entries", app.system().registry.snapshot().entries().len());
//! let code = app.shutdown();
//! assert_eq!(code, 0);
//! ```
//!
//! See the [module docs](super) for the boot and shutdown protocol.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wippy_rt::{Builder, Error, Kind, Pid, Runtime};

use super::component::{BootCx, Component, ComponentError, Loader, run_until};
use super::{commands, node, services};
use crate::config::{Config, ConfigError, ConfigSources, format_duration};
use crate::loader::{LoadOptions, ProjectError, load_project};
use crate::registry::open_registry;
use crate::system::components::{self, Supervisor};
use crate::system::{Factories, Functions, Shutdown, System};

/// How long boot waits for `auto_start` services to come up after the entries are loaded.
pub const DEFAULT_SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most entries listed one by one in the boot log (beyond that: a per-kind summary, and the
/// entries at debug level).
pub const LOG_ENTRIES_MAX: usize = 64;

/// Boot options.
pub struct BootOptions {
    /// Project directory (`wippy.lock`, `.wippy.yaml`, base of relative paths).
    pub dir: PathBuf,
    /// Configuration sources (default: `<dir>/.wippy.yaml` and the process environment).
    pub config: ConfigSources,
    /// Worker threads (default: one per CPU of the affinity mask).
    pub workers: Option<usize>,
    /// Pin workers to CPUs (default false here; the CLI pins by default).
    pub pin: bool,
    /// Handle SIGINT/SIGTERM: first → graceful shutdown, second → exit 1. Process-wide, so
    /// only the binary turns it on.
    pub signals: bool,
    /// Extra components (tests, embedders), loaded with the standard ones.
    pub components: Vec<Arc<dyn Component>>,
    /// Load the project's entries after start (default true).
    pub load_entries: bool,
    /// How long to wait for `auto_start` services after loading entries.
    pub settle_timeout: Duration,
    /// Wait this long after the shutdown signal before stopping anything (load-balancer
    /// drain). The CLI reads it from `WIPPY_SHUTDOWN_DELAY`.
    pub drain_delay: Option<Duration>,
}

impl std::fmt::Debug for BootOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootOptions")
            .field("dir", &self.dir)
            .field("workers", &self.workers)
            .field("pin", &self.pin)
            .field("signals", &self.signals)
            .field("components", &self.components.len())
            .finish_non_exhaustive()
    }
}

impl BootOptions {
    /// Defaults for the project in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> BootOptions {
        let dir = dir.into();
        BootOptions {
            config: ConfigSources::for_dir(&dir),
            dir,
            workers: None,
            pin: false,
            signals: false,
            components: Vec::new(),
            load_entries: true,
            settle_timeout: DEFAULT_SETTLE_TIMEOUT,
            drain_delay: None,
        }
    }
}

/// Why boot failed. `Display` is the text printed after `Error: `.
#[derive(Debug)]
pub enum BootError {
    /// The configuration is invalid (every problem).
    Config(Vec<ConfigError>),
    /// The runtime could not start.
    Runtime(Error),
    /// The registry (history backend) could not be opened.
    Registry(Error),
    /// A component failed (graph, load or start).
    Component(ComponentError),
    /// The project could not be loaded (lock file, missing module, pipeline).
    Project(ProjectError),
    /// The registry rejected the entries.
    Entries(Error),
    /// Required `auto_start` services failed to start.
    Services(Error),
}

impl std::fmt::Display for BootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BootError::Config(errs) => {
                f.write_str("invalid configuration: ")?;
                for (i, e) in errs.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            BootError::Runtime(e) => write!(f, "runtime: {e}"),
            BootError::Registry(e) => write!(f, "registry: {e}"),
            BootError::Component(e) => write!(f, "{e}"),
            BootError::Project(e) => write!(f, "load entries: {e}"),
            BootError::Entries(e) => write!(f, "apply entries: {e}"),
            BootError::Services(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BootError {}

impl From<ComponentError> for BootError {
    fn from(e: ComponentError) -> BootError {
        BootError::Component(e)
    }
}

/// Set once the shutdown begins (signal or programmatic trigger).
#[derive(Default)]
struct Latch {
    begun: AtomicBool,
    set: Mutex<bool>,
    cv: Condvar,
}

impl Latch {
    /// Mark the shutdown as begun; true for the first caller.
    fn begin(&self) -> bool {
        !self.begun.swap(true, Ordering::SeqCst)
    }
    fn release(&self) {
        *self.set.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }
    fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut g = self.set.lock().unwrap_or_else(|p| p.into_inner());
        while !*g {
            match deadline {
                None => g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    g = self
                        .cv
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        true
    }
}

/// A booted project.
pub struct App {
    sys: Arc<System>,
    runtime: Option<Runtime>,
    loader: Option<Loader>,
    dir: PathBuf,
    latch: Arc<Latch>,
    supervisor: Option<Arc<Supervisor>>,
    drain_delay: Option<Duration>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("dir", &self.dir)
            .field("running", &self.runtime.is_some())
            .finish()
    }
}

impl App {
    /// Load the configuration from `opts.config`, then boot (see [`App::start_with`]).
    ///
    /// # Errors
    /// [`BootError::Config`] and everything [`App::start_with`] returns.
    pub fn start(opts: BootOptions) -> Result<App, BootError> {
        let cfg = Config::load(&opts.config).map_err(BootError::Config)?;
        App::start_with(cfg, opts)
    }

    /// Boot with an already loaded configuration: runtime and registry, components (load in
    /// dependency levels → freeze dispatcher, seal app context → start), then the project's
    /// entries and the `auto_start` services.
    ///
    /// # Errors
    /// See [`BootError`]; everything started so far is stopped before returning.
    pub fn start_with(cfg: Config, opts: BootOptions) -> Result<App, BootError> {
        let started = Instant::now();
        for w in &cfg.warnings {
            log::warn!(target: "wippy::config", "{w}");
        }
        let dir = std::path::absolute(&opts.dir).unwrap_or_else(|_| opts.dir.clone());
        let node = node::resolve(&cfg, &opts.config.env, Some(&dir));
        let mut b = Builder::new()
            .pin(opts.pin)
            .node_id(node)
            .stop_timeout(cfg.shutdown.timeout);
        if let Some(w) = opts.workers {
            b = b.workers(w);
        }
        let runtime = b.build().map_err(BootError::Runtime)?;
        let registry = open_registry(&cfg, &dir).map_err(BootError::Registry)?;
        let sys = Arc::new(System {
            handle: runtime.handle(),
            registry: Arc::new(registry),
            config: Arc::new(cfg),
            factories: Arc::new(Factories::new()),
            functions: Arc::new(Functions::new()),
            shutdown: Arc::new(Shutdown::new()),
        });
        let latch = Arc::new(Latch::default());
        wire_shutdown(&sys, &latch, opts.signals);

        let mut all = components::standard();
        all.extend(services::components());
        all.extend(opts.components);
        let mut loader = Loader::new(all)?;
        log::debug!(target: "wippy::boot", "component levels: {:?}", loader.level_names());
        let timeout = sys.config.shutdown.timeout;
        let cx = BootCx {
            system: &sys,
            dir: &dir,
        };
        loader.load(&cx, Instant::now() + timeout)?;
        sys.handle.dispatcher().freeze();
        sys.handle.app_context().seal();
        loader.start(&cx, Instant::now() + timeout)?;
        let supervisor = Supervisor::of(&sys.handle);
        let mut app = App {
            sys,
            runtime: Some(runtime),
            loader: Some(loader),
            dir,
            latch,
            supervisor,
            drain_delay: opts.drain_delay,
        };
        if opts.load_entries
            && let Err(e) = app.load_entries(opts.settle_timeout)
        {
            app.teardown();
            return Err(e);
        }
        log::info!(target: "wippy::boot", "runtime ready in {}", format_duration(started.elapsed()));
        Ok(app)
    }

    /// Load the project's entries into the registry (listeners see them dependency first),
    /// then wait for the `auto_start` services.
    fn load_entries(&self, settle: Duration) -> Result<(), BootError> {
        let project = load_project(&self.dir, &self.sys.config, &LoadOptions::default())
            .map_err(BootError::Project)?;
        let entries = project.into_entries();
        let v = self
            .sys
            .registry
            .load_state(entries)
            .map_err(BootError::Entries)?;
        let snap = self.sys.registry.snapshot();
        log_entries(&snap.entries(), v.id);
        for (name, ids) in commands::duplicates(&snap.entries()) {
            let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            log::warn!(target: "wippy::boot", "command {name:?} is declared by several entries ({}); {} is used", ids.join(", "), ids[0]);
        }
        if let Some(sup) = &self.supervisor {
            match sup.wait_transitions(settle) {
                Some(Err(e)) => return Err(BootError::Services(e)),
                Some(Ok(r)) if !r.pending.is_empty() => log::warn!(target: "wippy::boot",
                    "services still starting: {}", r.pending.join(", ")),
                _ => {}
            }
        }
        Ok(())
    }

    /// The shared services.
    pub fn system(&self) -> &Arc<System> {
        &self.sys
    }

    /// The project directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The supervisor.
    pub fn supervisor(&self) -> Option<&Arc<Supervisor>> {
        self.supervisor.as_ref()
    }

    /// Component names in load order (stop runs in reverse).
    pub fn component_order(&self) -> Vec<&'static str> {
        self.loader.as_ref().map(Loader::order).unwrap_or_default()
    }

    /// Run the CLI command `name` (`meta.command.name` of a process entry) with `args` on
    /// the terminal host. When it completes the terminal host triggers the shutdown with the
    /// command's exit code ([`App::wait`] returns).
    ///
    /// # Errors
    /// `NotFound` `command "<name>" not found`; the terminal host's errors.
    pub fn run_command(&self, name: &str, args: Vec<String>) -> Result<Pid, Error> {
        self.run_command_on(None, name, args)
    }

    /// [`App::run_command`] on a given terminal host (`--host`).
    ///
    /// # Errors
    /// As [`App::run_command`].
    pub fn run_command_on(
        &self,
        host: Option<&str>,
        name: &str,
        args: Vec<String>,
    ) -> Result<Pid, Error> {
        let cmd = commands::find(&self.sys.registry.snapshot().entries(), name)?;
        self.exec(host, &cmd.entry.to_string(), args)
    }

    /// Run a process entry on a terminal host (`wippy run -x <id>`).
    ///
    /// # Errors
    /// The terminal host's errors.
    pub fn exec(
        &self,
        host: Option<&str>,
        entry_id: &str,
        args: Vec<String>,
    ) -> Result<Pid, Error> {
        check_exec_spec(entry_id)?;
        let host = match host {
            Some(h) => h.to_string(),
            None => self.only_terminal_host()?,
        };
        services::terminal_exec(&self.sys, Some(&host), entry_id, args).map_err(|e| {
            if *e.kind() == Kind::INVALID || *e.kind() == Kind::NOT_FOUND {
                e
            } else {
                Error::new(
                    e.kind().clone(),
                    format!("failed to start process on host: {host}: {}", e.message()),
                )
                .with_retryable(Some(false))
            }
        })
    }

    /// The only `terminal.host` entry (the original's `findTerminalHost`).
    ///
    /// # Errors
    /// `NotFound` "no terminal.host found in registry"; `Invalid` "multiple terminal hosts
    /// found (a, b), use --host to specify".
    fn only_terminal_host(&self) -> Result<String, Error> {
        let hosts: Vec<String> = self
            .sys
            .registry
            .snapshot()
            .entries()
            .iter()
            .filter(|e| e.kind == "terminal.host")
            .map(|e| e.id.to_string())
            .collect();
        match hosts.len() {
            0 => Err(
                Error::new(Kind::NOT_FOUND, "no terminal.host found in registry")
                    .with_retryable(Some(false)),
            ),
            1 => Ok(hosts.into_iter().next().unwrap_or_default()),
            _ => Err(Error::new(
                Kind::INVALID,
                format!(
                    "multiple terminal hosts found ({}), use --host to specify",
                    hosts.join(", ")
                ),
            )
            .with_retryable(Some(false))),
        }
    }

    /// Start the shutdown with exit `code` (as `system.exit` does).
    pub fn request_shutdown(&self, code: i64) {
        self.sys.shutdown.trigger(code);
    }

    /// Block until the shutdown begins (signal, [`App::request_shutdown`], a completed
    /// terminal command).
    pub fn wait(&self) {
        self.latch.wait(None);
    }

    /// [`App::wait`] with a timeout; false on timeout.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.latch.wait(Some(timeout))
    }

    /// True once the shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.latch.begun.load(Ordering::SeqCst)
    }

    /// Graceful shutdown within `shutdown.timeout`; returns the exit code (0 unless set by
    /// [`Shutdown::trigger`](crate::system::Shutdown::trigger)).
    pub fn shutdown(mut self) -> i32 {
        self.teardown();
        self.sys.shutdown.code()
    }

    /// The shutdown sequence (idempotent):
    /// 1. optional drain delay;
    /// 2. the supervisor stops every service, dependents first, each within its
    ///    `stop_timeout` (hosts CANCEL their processes, wait, force) — before any component,
    ///    so services never run against already stopped components;
    /// 3. components stop in reverse load order;
    /// 4. the runtime stops what is left (CANCEL, wait, force), its workers, reactor and bus.
    ///
    /// Steps 2–4 share one deadline: `shutdown.timeout` from the start of step 2.
    fn teardown(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let timeout = self.sys.config.shutdown.timeout;
        log::info!(target: "wippy::boot", "shutting down (timeout {})", format_duration(timeout));
        if let Some(d) = self.drain_delay.filter(|d| !d.is_zero()) {
            log::info!(target: "wippy::boot", "draining for {} before stopping", format_duration(d));
            std::thread::sleep(d);
        }
        let started = Instant::now();
        let deadline = started + timeout;
        if let Some(sup) = self.supervisor.clone() {
            // Bounded by the deadline even if a service overruns its own stop_timeout: the
            // runtime stop below forces whatever is left.
            match run_until("wippy-stop-services", deadline, move || sup.shutdown()) {
                Some(report) => {
                    for (id, e) in report.failed {
                        log::error!(target: "wippy::boot", "service {id}: stop failed: {e}");
                    }
                }
                None => log::error!(target: "wippy::boot",
                    "services did not stop within {}; forcing the rest", format_duration(timeout)),
            }
        }
        if let Some(mut loader) = self.loader.take() {
            let cx = BootCx {
                system: &self.sys,
                dir: &self.dir,
            };
            for e in loader.stop(&cx, deadline) {
                log::error!(target: "wippy::boot", "{e}");
            }
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(MIN_RUNTIME_STOP);
        let report = runtime.shutdown(left);
        if report.forced > 0 || report.stuck > 0 || report.stuck_workers > 0 {
            log::warn!(target: "wippy::boot",
                "shutdown forced {} processes ({} stuck, {} stuck workers)", report.forced, report.stuck, report.stuck_workers);
        }
        log::info!(target: "wippy::boot", "shutdown complete in {}", format_duration(started.elapsed()));
    }
}

/// Time always given to the runtime's own stop, even when components used the whole deadline.
const MIN_RUNTIME_STOP: Duration = Duration::from_millis(100);

impl Drop for App {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Point programmatic shutdown and (optionally) the OS signals at the latch.
///
/// With signals: the first SIGINT/SIGTERM runs the reactor's callbacks (→ latch), the second
/// exits with status 1. [`Shutdown::trigger`] raises the same signal path **only if the
/// shutdown has not begun yet** — a process that completes during a signal-initiated shutdown
/// (the terminal host triggers on completion) must not count as a second signal and turn a
/// clean exit into 1 (upstream PR #218).
fn wire_shutdown(sys: &Arc<System>, latch: &Arc<Latch>, signals: bool) {
    if signals {
        let l = latch.clone();
        sys.handle.on_shutdown_signal(move || {
            l.begin();
            l.release();
        });
        let h = sys.handle.clone();
        let l = latch.clone();
        sys.shutdown.on_start(move || {
            if l.begin() {
                h.raise_shutdown_signal();
            }
        });
    } else {
        let l = latch.clone();
        sys.shutdown.on_start(move || {
            l.begin();
            l.release();
        });
    }
}

fn log_entries(entries: &[Arc<crate::registry::Entry>], version: u64) {
    log::info!(target: "wippy::boot", "registry loaded: {} entries (version {version})", entries.len());
    let detail = entries.len() <= LOG_ENTRIES_MAX;
    if !detail {
        let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
        for e in entries {
            *kinds.entry(e.kind.as_str()).or_default() += 1;
        }
        let summary: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        log::info!(target: "wippy::boot", "entries by kind: {}", summary.join(", "));
    }
    for e in entries {
        if detail {
            log::info!(target: "wippy::boot", "entry {} ({})", e.id, e.kind);
        } else {
            log::debug!(target: "wippy::boot", "entry {} ({})", e.id, e.kind);
        }
    }
}

/// Validate a `-x` argument as the original does (`namespace:entry`, both non-empty).
///
/// # Errors
/// `Invalid` "invalid exec spec: missing separator ':', expected format: namespace:entry",
/// "invalid exec spec: namespace cannot be empty", "invalid exec spec: entry name cannot be
/// empty".
pub fn check_exec_spec(spec: &str) -> Result<(), Error> {
    let bad = |m: &str| {
        Err(Error::new(Kind::INVALID, format!("invalid exec spec: {m}"))
            .with_retryable(Some(false)))
    };
    match spec.split_once(':') {
        None => bad("missing separator ':', expected format: namespace:entry"),
        Some((ns, _)) if ns.trim().is_empty() => bad("namespace cannot be empty"),
        Some((_, name)) if name.trim().is_empty() => bad("entry name cannot be empty"),
        Some(_) => Ok(()),
    }
}
