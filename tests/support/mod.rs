//! Test harness for Lua engine tests: builds a `System` by hand (runtime with 2 workers,
//! registry, factories, functions, shutdown), installs the engine and the terminal host
//! manager, and loads a project directory or inline files. Replace with boot's `App::start`
//! once it exists.

#![allow(dead_code)]

#[path = "../common/exec.rs"]
mod exec;
#[path = "../common/suite.rs"]
mod suite;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wippy::config::Config;
use wippy::loader::{LoadOptions, load_dir, load_project};
use wippy::lua::engine::{self, Engine};
use wippy::registry::{Entry, Registry, RegistryOptions};
use wippy::rt::{Builder, Error, HostConfig, Pid, Runtime, Value};
use wippy::services::terminal;
use wippy::system::process_manager::{ProcessManager, StartRequest};
use wippy::system::{CallRequest, Factories, Functions, Shutdown, System};

/// A running application.
pub struct App {
    pub sys: Arc<System>,
    pub engine: Arc<Engine>,
    rt: Option<Runtime>,
    shutdown_rx: crossbeam_channel::Receiver<()>,
    exits: crossbeam_channel::Receiver<Pid>,
    _dir: Option<tempfile::TempDir>,
}

/// Reports every process exit (installed after the engine's hooks, so it runs after them).
struct ExitFeed(crossbeam_channel::Sender<Pid>);

impl wippy::rt::Lifecycle for ExitFeed {
    fn on_complete(&self, pid: &Pid, _r: &Result<Value, Error>) {
        let _ = self.0.send(pid.clone());
    }
}

/// The default host processes run on in test apps.
pub const HOST: &str = "app:processes";

fn system() -> (Arc<System>, Runtime, crossbeam_channel::Receiver<()>) {
    let _ = env_logger::builder().is_test(true).try_init();
    let rt = Builder::new()
        .workers(2)
        .pin(false)
        .stop_timeout(Duration::from_secs(2))
        .build()
        .expect("runtime");
    let registry = Registry::new(RegistryOptions {
        event_wait_timeout: Duration::from_secs(5),
        ..RegistryOptions::default()
    })
    .expect("registry");
    let (tx, rx) = crossbeam_channel::bounded(1);
    let shutdown = Arc::new(Shutdown::new());
    shutdown.on_start(move || {
        let _ = tx.try_send(());
    });
    let sys = Arc::new(System {
        handle: rt.handle(),
        registry: Arc::new(registry),
        config: Arc::new(Config::defaults()),
        factories: Arc::new(Factories::new()),
        functions: Arc::new(Functions::new()),
        shutdown,
    });
    // Boot's host manager is not here yet: a minimal `process.host` listener.
    let h = sys.handle.clone();
    sys.registry
        .handlers()
        .add_listener_fn("process.host", "test.hosts", move |ev| {
            let id = ev.entry.id.to_string();
            if !h.hosts().contains(&id) {
                h.add_host(&id, HostConfig::default())?;
            }
            Ok(())
        });
    (sys, rt, rx)
}

impl App {
    fn boot(entries: Vec<Entry>, dir: Option<tempfile::TempDir>) -> Result<App, Error> {
        let (sys, rt, rx) = system();
        let engine = engine::install(&sys);
        terminal::install(&sys);
        let (etx, erx) = crossbeam_channel::unbounded();
        sys.handle.add_lifecycle(Arc::new(ExitFeed(etx)));
        // Boot order: freeze the dispatcher, seal the app context, then load entries.
        sys.handle.dispatcher().freeze();
        sys.handle.app_context().seal();
        sys.registry.load_state(entries)?;
        Ok(App {
            sys,
            engine,
            rt: Some(rt),
            shutdown_rx: rx,
            exits: erx,
            _dir: dir,
        })
    }

    /// Boot the project in `dir` (with its `wippy.lock`).
    pub fn load(dir: &Path) -> Result<App, Error> {
        let cfg = Config::defaults();
        let p = load_project(dir, &cfg, &LoadOptions::default())
            .map_err(|e| Error::invalid(format!("{e:?}")))?;
        Self::boot(p.into_entries(), None)
    }

    /// Boot an app from inline files (`path` relative to the source dir → content).
    pub fn files(files: &[(&str, &str)]) -> Result<App, Error> {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let p: PathBuf = dir.path().join(path);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(&p, text).unwrap();
        }
        let cfg = Config::defaults();
        let p = load_dir(dir.path(), &cfg, &LoadOptions::default())
            .map_err(|e| Error::invalid(format!("{e:?}")))?;
        Self::boot(p.into_entries(), Some(dir))
    }

    /// Boot an app whose only YAML file is `index` plus Lua files, in namespace `app` with a
    /// process host `app:processes` and a terminal host `app:terminal`.
    pub fn yaml(index: &str, lua: &[(&str, &str)]) -> App {
        let mut files = vec![("_index.yaml", index)];
        files.extend_from_slice(lua);
        match Self::files(&files) {
            Ok(a) => a,
            Err(e) => panic!("app failed to boot: {e} {e:?}"),
        }
    }

    pub fn pm(&self) -> Arc<ProcessManager> {
        ProcessManager::of(&self.sys).expect("process manager")
    }

    /// Start `entry` on `host` and wait for its result.
    pub fn exec_on(&self, host: &str, entry: &str, input: Vec<Value>) -> Result<Value, Error> {
        exec::exec(&self.sys, host, entry, input, Duration::from_secs(20))
    }

    /// Start `entry` on [`HOST`] and wait.
    pub fn exec(&self, entry: &str, input: Vec<Value>) -> Result<Value, Error> {
        self.exec_on(HOST, entry, input)
    }

    /// Spawn without waiting.
    pub fn spawn(&self, entry: &str, input: Vec<Value>) -> Result<Pid, Error> {
        self.pm().start(StartRequest {
            host: HOST.into(),
            source: entry.into(),
            input,
            ..StartRequest::default()
        })
    }

    /// Call a function from Rust and wait.
    pub fn call(&self, id: &str, args: Vec<Value>) -> Result<Value, Error> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.sys.functions.call(
            CallRequest {
                target: id.into(),
                args,
                ..CallRequest::default()
            },
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| Err(Error::internal("test timeout waiting for call")))
    }

    /// Run `entry` as a terminal command; returns the exit code once it ended and the
    /// shutdown fired.
    pub fn run_command(&self, entry: &str, args: &[&str]) -> Result<i32, Error> {
        let pid = terminal::exec(
            &self.sys,
            None,
            entry,
            args.iter().map(|s| s.to_string()).collect(),
        )?;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.exits.recv_timeout(left) {
                Ok(p) if p == pid => break,
                Ok(_) => continue,
                Err(_) => return Err(Error::internal("test timeout waiting for the command")),
            }
        }
        self.shutdown_rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| Error::internal("test timeout waiting for shutdown"))?;
        Ok(self.sys.shutdown.code())
    }

    /// Run a suite of `meta.type: test` functions through the app's runner process
    /// (`<ns>:runner`), asserting every test passed. Returns the number of tests run.
    pub fn run_suite(&self, ns: &str, suite: &str) -> usize {
        suite::run(&self.sys.registry, suite, |input| {
            self.exec_on(&format!("{ns}:processes"), &format!("{ns}:runner"), input)
        })
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown(Duration::from_secs(2));
        }
    }
}
