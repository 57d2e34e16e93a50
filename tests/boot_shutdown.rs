//! Shutdown: services stop before components, the whole stop is bounded by
//! `shutdown.timeout` even when a service ignores its own `stop_timeout`, and the exit code is
//! last-writer-wins.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wippy::boot::{App, BootCx, BootOptions, Component};
use wippy::config::ConfigSources;
use wippy::rt::Error;
use wippy::system::components::supervision::{
    LifecycleConfig, Service, ServiceCtx, ServiceSpec, Supervisor,
};

type Log = Arc<Mutex<Vec<String>>>;

/// A service whose stop blocks for `stop_takes`.
struct Slow {
    log: Log,
    stop_takes: Duration,
}

impl Service for Slow {
    fn start(&self, _: ServiceCtx) -> Result<(), Error> {
        self.log.lock().unwrap().push("service start".into());
        Ok(())
    }
    fn stop(&self, _deadline: Instant) -> Result<(), Error> {
        self.log.lock().unwrap().push("service stop".into());
        std::thread::sleep(self.stop_takes);
        Ok(())
    }
}

/// Registers `Slow` at start (outside a registry transaction) and logs its own stop.
struct Owner {
    log: Log,
    stop_takes: Duration,
}

impl Component for Owner {
    fn name(&self) -> &'static str {
        "test.owner"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["supervisor"]
    }
    fn load(&self, _: &BootCx<'_>) -> Result<(), Error> {
        Ok(())
    }
    fn start(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        let sup = Supervisor::of(&cx.system.handle).expect("supervisor installed");
        sup.register(ServiceSpec {
            id: "test:slow".into(),
            service: Arc::new(Slow {
                log: self.log.clone(),
                stop_takes: self.stop_takes,
            }),
            config: LifecycleConfig {
                stop_timeout: Duration::from_secs(60),
                ..Default::default()
            },
            deps: Vec::new(),
        });
        sup.start("test:slow")
    }
    fn stop(&self, _: &BootCx<'_>, _: Instant) -> Result<(), Error> {
        self.log.lock().unwrap().push("component stop".into());
        Ok(())
    }
}

fn boot(dir: &Path, timeout: &str, log: &Log, stop_takes: Duration) -> App {
    std::fs::write(
        dir.join(".wippy.yaml"),
        format!("version: \"1.0\"\nshutdown: {{timeout: {timeout}}}\n"),
    )
    .unwrap();
    let mut o = BootOptions::new(dir);
    o.workers = Some(1);
    o.config = ConfigSources {
        file: Some(dir.join(".wippy.yaml")),
        ..Default::default()
    };
    o.components.push(Arc::new(Owner {
        log: log.clone(),
        stop_takes,
    }));
    App::start(o).expect("boot")
}

#[test]
fn services_stop_before_components() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::default();
    let app = boot(d.path(), "5s", &log, Duration::ZERO);
    assert_eq!(app.shutdown(), 0);
    assert_eq!(
        *log.lock().unwrap(),
        ["service start", "service stop", "component stop"]
    );
}

#[test]
fn a_hanging_service_stop_is_cut_at_shutdown_timeout() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::default();
    // The service would block its stop for 30 s (its stop_timeout is 60 s).
    let app = boot(d.path(), "300ms", &log, Duration::from_secs(30));
    let t = Instant::now();
    assert_eq!(app.shutdown(), 0);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        t.elapsed()
    );
    assert!(log.lock().unwrap().contains(&"component stop".to_string()));
}

#[test]
fn exit_code_is_last_writer_wins() {
    let d = tempfile::tempdir().unwrap();
    let log = Log::default();
    let app = boot(d.path(), "5s", &log, Duration::ZERO);
    app.request_shutdown(3);
    app.request_shutdown(0);
    app.request_shutdown(5);
    assert!(app.is_shutting_down());
    assert!(app.wait_timeout(Duration::from_secs(1)));
    assert_eq!(app.shutdown(), 5);
}
