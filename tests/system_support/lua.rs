//! Booting the system acceptance app (`tests/apps/system`) through boot (the `lifecycle`
//! component installs `process.service` and the process system's Lua surface), and running
//! its test suites (function entries with `meta.type: test`) through a runner
//! process.

#[path = "../common/exec.rs"]
mod exec;
#[path = "../common/suite.rs"]
mod suite;

use std::path::Path;
use std::time::Duration;

use wippy::boot::{App, BootOptions};
use wippy::rt::{Error, Value};

/// The booted acceptance app.
pub struct LuaApp {
    pub app: Option<App>,
}

impl LuaApp {
    /// Boot the app in `tests/apps/<name>`.
    pub fn boot(name: &str) -> LuaApp {
        let _ = env_logger::builder().is_test(true).try_init();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/apps")
            .join(name);
        let mut o = BootOptions::new(&dir);
        o.workers = Some(2);
        o.settle_timeout = Duration::from_secs(20);
        let app = App::start(o).unwrap_or_else(|e| panic!("{name} app failed to boot: {e}"));
        LuaApp { app: Some(app) }
    }

    /// The running app.
    pub fn app(&self) -> &App {
        self.app.as_ref().expect("app running")
    }

    /// Run process entry `id` on `host` with `input`; its result.
    pub fn exec(&self, host: &str, id: &str, input: Vec<Value>) -> Result<Value, Error> {
        exec::exec(
            self.app().system(),
            host,
            id,
            input,
            Duration::from_secs(120),
        )
    }

    /// Run every test of `suite` (ids sorted) through `<ns>:runner`; panics listing failures.
    pub fn run_suite(&self, ns: &str, suite: &str) -> usize {
        suite::run(&self.app().system().registry, suite, |input| {
            self.exec(&format!("{ns}:processes"), &format!("{ns}:runner"), input)
        })
    }
}

impl Drop for LuaApp {
    fn drop(&mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown();
        }
    }
}
