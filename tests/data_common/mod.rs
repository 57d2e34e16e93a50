//! Harness of the data-services tests: boots a project with the real boot sequence
//! (`App::start`, two workers) and runs Lua test suites through function calls.
//!
//! A suite is a `function.lua` entry whose method is built with `t.suite(M)` (see
//! `tests/apps/data/src/t.lua`): `run("__list")` returns the test names, `run(name)` runs
//! one test, each in its own call (its own process).

#![allow(dead_code)]

#[path = "../common/exec.rs"]
mod exec;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wippy::boot::{App, BootOptions};
use wippy::config::ConfigSources;
use wippy::rt::{Error, Pid, Value};
use wippy::system::CallRequest;
use wippy::system::System;
use wippy::system::process_manager::{ProcessManager, StartRequest};

/// A booted test project.
pub struct DataApp {
    pub app: App,
    _dir: Option<tempfile::TempDir>,
}

/// The static acceptance app.
pub fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/data")
}

fn options(dir: &Path) -> BootOptions {
    let mut o = BootOptions::new(dir);
    o.workers = Some(2);
    o.settle_timeout = Duration::from_secs(20);
    o.config = ConfigSources {
        file: Some(dir.join(".wippy.yaml")),
        env: vec![("WIPPY_NODE_ID".into(), "local".into())],
        ..Default::default()
    };
    o
}

impl DataApp {
    /// Boot the project in `dir`.
    pub fn boot(dir: &Path) -> DataApp {
        let _ = env_logger::builder().is_test(true).try_init();
        match App::start(options(dir)) {
            Ok(app) => DataApp { app, _dir: None },
            Err(e) => panic!("boot of {} failed: {e}", dir.display()),
        }
    }

    /// Boot the static acceptance app.
    pub fn acceptance() -> DataApp {
        Self::boot(&app_dir())
    }

    /// Boot a temporary project: `files` are paths under `src/` → content. The project
    /// directory is returned with the app (for files the test writes next to it).
    pub fn project(files: &[(&str, &str)]) -> DataApp {
        Self::try_project(files).unwrap_or_else(|e| panic!("boot failed: {e}"))
    }

    /// [`project`](Self::project), returning the boot error.
    pub fn try_project(files: &[(&str, &str)]) -> Result<DataApp, String> {
        let _ = env_logger::builder().is_test(true).try_init();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("wippy.lock"),
            "directories: {modules: .wippy, src: ./src}\n",
        )
        .unwrap();
        for (path, text) in files {
            let p = dir.path().join("src").join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
        }
        match App::start(options(dir.path())) {
            Ok(app) => Ok(DataApp {
                app,
                _dir: Some(dir),
            }),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The project directory.
    pub fn dir(&self) -> &Path {
        self.app.dir()
    }

    /// The shared services.
    pub fn sys(&self) -> &Arc<System> {
        self.app.system()
    }

    /// Call function `id` and wait for its result.
    pub fn call(&self, id: &str, args: Vec<Value>) -> Result<Value, Error> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.sys().functions.call(
            CallRequest {
                target: id.into(),
                args,
                ..CallRequest::default()
            },
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| Err(Error::internal("test timeout waiting for call")))
    }

    /// Start process entry `id` on `host` and wait for its result.
    pub fn exec(&self, host: &str, id: &str, input: Vec<Value>) -> Result<Value, Error> {
        exec::exec(self.sys(), host, id, input, Duration::from_secs(30))
    }

    /// Start process entry `id` on `host` without waiting.
    pub fn spawn(&self, host: &str, id: &str, input: Vec<Value>) -> Result<Pid, Error> {
        ProcessManager::of(self.sys())
            .expect("process manager")
            .start(StartRequest {
                host: host.into(),
                source: id.into(),
                input,
                ..StartRequest::default()
            })
    }

    /// Run every test of suite entry `id`; panics listing the failures. Returns the count.
    pub fn run_suite(&self, id: &str) -> usize {
        let names = self
            .call(id, vec![Value::str("__list")])
            .unwrap_or_else(|e| panic!("{id}: listing tests failed: {e}"));
        let names: Vec<String> = names
            .as_array()
            .unwrap_or_else(|| panic!("{id}: __list returned {names:?}"))
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        assert!(!names.is_empty(), "{id}: no tests");
        let mut failed = Vec::new();
        for n in &names {
            if let Err(e) = self.call(id, vec![Value::str(n)]) {
                failed.push(format!("  {n}: {e}"));
            }
        }
        if !failed.is_empty() {
            panic!(
                "{id}: {} of {} tests failed:\n{}",
                failed.len(),
                names.len(),
                failed.join("\n")
            );
        }
        names.len()
    }

    /// Poll `f` until it holds (or panic after `secs`).
    pub fn eventually(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while !f() {
            if std::time::Instant::now() > deadline {
                panic!("timed out waiting for: {what}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
