//! `process.host` through a real boot: routable at once, runs once started, `auto_start` at
//! boot, live update in place (upstream bug §14 item 18), delete on commit, rollback keeps
//! the host, validation messages, and registry events on the bus in order.

use std::path::Path;
use std::time::{Duration, Instant};

use wippy::boot::{App, BootError, BootOptions};
use wippy::config::ConfigSources;
use wippy::registry::{ChangeSet, Entry};
use wippy::rt::process::{CANCEL, EVENTS_TOPIC, event_kind};
use wippy::rt::{
    Error, Event, Kind, Package, Pid, Process, ProcessCx, SpawnOptions, StepOutput, Value,
};
use wippy::system::components::supervision::Status;

/// Waits for messages; finishes on CANCEL (graceful stop) or on a `stop` message.
struct Waiter;

impl Process for Waiter {
    fn init(&mut self, _: &mut ProcessCx<'_>, _: &str, _: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }
    fn step(
        &mut self,
        _: &mut ProcessCx<'_>,
        events: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        for ev in events.drain(..) {
            if let Event::Message(pkg) = ev {
                if pkg.topic == EVENTS_TOPIC
                    && pkg.payloads.first().and_then(event_kind) == Some(CANCEL)
                {
                    out.finish(Ok(Value::str("cancelled")));
                    return Ok(());
                }
                if pkg.topic == "stop" {
                    out.finish(Ok(Value::Nil));
                    return Ok(());
                }
            }
        }
        out.set_status(wippy::rt::Status::Idle);
        Ok(())
    }
}

fn project(index: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("wippy.lock"),
        "directories: {modules: .wippy, src: ./src}\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.path().join("src")).unwrap();
    std::fs::write(d.path().join("src/_index.yaml"), index).unwrap();
    d
}

fn boot(dir: &Path) -> Result<App, BootError> {
    let mut o = BootOptions::new(dir);
    o.workers = Some(2);
    o.config = ConfigSources {
        file: Some(dir.join(".wippy.yaml")),
        env: vec![("WIPPY_NODE_ID".into(), "local".into())],
        ..Default::default()
    };
    App::start(o)
}

fn spawn(app: &App, host: &str) -> Result<Pid, Error> {
    app.system().handle.spawn(
        host,
        Box::new(Waiter),
        "main",
        vec![],
        SpawnOptions::default(),
    )
}

/// Wait for the supervisor's queued transitions (starts/stops after a registry change).
fn settle(app: &App) {
    app.supervisor()
        .unwrap()
        .wait_transitions(Duration::from_secs(5));
}

fn host_entry(name: &str, host: &str, lifecycle: &str) -> Entry {
    let doc = format!("{{host: {host}, lifecycle: {lifecycle}}}");
    let data: Value = serde_yaml::from_str(&doc).unwrap();
    Entry::new(format!("app:{name}").as_str(), "process.host").with_data(data)
}

fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

const TWO_HOSTS: &str = r#"version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
    host: {workers: 2, max_processes: 3}
    lifecycle: {auto_start: true}
  - name: manual
    kind: process.host
"#;

#[test]
fn auto_start_host_runs_at_boot_and_manual_host_waits_for_start() {
    let d = project(TWO_HOSTS);
    let app = boot(d.path()).expect("boot");
    let h = &app.system().handle;
    assert!(h.hosts().contains(&"app:processes".to_string()));
    assert!(
        h.hosts().contains(&"app:manual".to_string()),
        "routable before start"
    );
    let sup = app.supervisor().unwrap();
    assert_eq!(
        sup.state("app:processes").map(|s| s.status),
        Some(Status::Running)
    );
    assert_eq!(
        sup.state("app:manual").map(|s| s.status),
        Some(Status::Unknown)
    );

    let pid = spawn(&app, "app:processes").expect("spawn on a running host");
    // Other components may take PIDs during boot; what matters is that the node `local` is
    // blanked: no `node@` part, the host is the entry id and the uniq id is generated.
    assert_eq!(pid.node(), "", "node `local` is blanked: {pid}");
    assert_eq!(pid.host(), "app:processes");
    assert!(pid.as_str().starts_with("{app:processes|0x"), "{pid}");

    let e = spawn(&app, "app:manual").unwrap_err();
    assert_eq!(e.kind(), &Kind::UNAVAILABLE);
    assert_eq!(e.message(), "host is not running");
    sup.start("app:manual").unwrap();
    spawn(&app, "app:manual").expect("spawn after start");

    // max_processes: 3 is enforced.
    spawn(&app, "app:processes").unwrap();
    spawn(&app, "app:processes").unwrap();
    let e = spawn(&app, "app:processes").unwrap_err();
    assert_eq!(e.kind(), &Kind::LIMIT_EXCEEDED);
    assert_eq!(e.message(), "max processes limit exceeded");
    assert_eq!(app.shutdown(), 0);
}

#[test]
fn live_update_keeps_a_running_routable_host_with_the_new_config() {
    let d = project(TWO_HOSTS);
    let app = boot(d.path()).expect("boot");
    let sys = app.system().clone();
    let h = &sys.handle;
    let first = spawn(&app, "app:processes").unwrap();

    // Update: new limit, still auto_start.
    sys.registry
        .apply(ChangeSet::new().update(host_entry(
            "processes",
            "{workers: 4, max_processes: 1}",
            "{auto_start: true}",
        )))
        .expect("update applies");
    settle(&app);
    assert!(
        h.is_alive(&first),
        "the update must not kill running processes"
    );
    assert!(h.hosts().contains(&"app:processes".to_string()));
    assert_eq!(
        app.supervisor()
            .unwrap()
            .state("app:processes")
            .map(|s| s.status),
        Some(Status::Running)
    );
    let e = spawn(&app, "app:processes").unwrap_err();
    assert_eq!(
        e.kind(),
        &Kind::LIMIT_EXCEEDED,
        "new limit 1 applies at once: {e}"
    );
    // Messages still route to the old process.
    h.send(Package::new(Pid::zero(), first.clone(), "stop", vec![]))
        .unwrap();
    assert!(eventually(|| !h.is_alive(&first)));
    spawn(&app, "app:processes").expect("room again under the new limit");

    // An update that makes a stopped host auto_start starts it.
    sys.registry
        .apply(ChangeSet::new().update(host_entry("manual", "{}", "{auto_start: true}")))
        .unwrap();
    settle(&app);
    spawn(&app, "app:manual").expect("manual host started by its update");
    assert_eq!(app.shutdown(), 0);
}

#[test]
fn delete_stops_the_host_on_commit_and_rollback_keeps_it() {
    let d = project(TWO_HOSTS);
    let app = boot(d.path()).expect("boot");
    let sys = app.system().clone();
    let h = &sys.handle;
    let pid = spawn(&app, "app:processes").unwrap();

    // A transaction deleting the host and creating an invalid one fails as a whole.
    let err = sys
        .registry
        .apply(ChangeSet::new().delete("app:processes").create(host_entry(
            "broken",
            "{workers: -2}",
            "{}",
        )))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "operation rejected for entry app:broken: workers must be greater than 0"
    );
    settle(&app);
    assert!(h.is_alive(&pid), "rolled-back delete keeps the processes");
    assert!(!h.hosts().contains(&"app:broken".to_string()));
    assert_eq!(
        app.supervisor()
            .unwrap()
            .state("app:processes")
            .map(|s| s.status),
        Some(Status::Running)
    );
    spawn(&app, "app:processes").expect("host still running after the rollback");

    // A committed delete: CANCEL, host removed, service gone.
    sys.registry
        .apply(ChangeSet::new().delete("app:processes"))
        .unwrap();
    assert!(eventually(|| !h
        .hosts()
        .contains(&"app:processes".to_string())));
    assert!(!h.is_alive(&pid));
    settle(&app);
    assert_eq!(
        app.supervisor()
            .unwrap()
            .state("app:processes")
            .map(|s| s.status),
        None
    );
    let e = spawn(&app, "app:processes").unwrap_err();
    assert_eq!(e.kind(), &Kind::NOT_FOUND);

    // The id can be created again at once.
    sys.registry
        .apply(ChangeSet::new().create(host_entry("processes", "{}", "{auto_start: true}")))
        .unwrap();
    settle(&app);
    spawn(&app, "app:processes").expect("re-created host runs");
    assert_eq!(app.shutdown(), 0);
}

#[test]
fn a_host_created_by_a_failed_transaction_is_removed() {
    let d = project(TWO_HOSTS);
    let app = boot(d.path()).expect("boot");
    let sys = app.system().clone();
    let err = sys
        .registry
        .apply(
            ChangeSet::new()
                .create(host_entry("temp", "{}", "{auto_start: true}"))
                .create(host_entry("zz_broken", "{queue_size: -1}", "{}")),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("queue size must be greater than 0"),
        "{err}"
    );
    settle(&app);
    let h = &sys.handle;
    assert!(
        eventually(|| !h.hosts().contains(&"app:temp".to_string())),
        "{:?}",
        h.hosts()
    );
    assert!(app.supervisor().unwrap().state("app:temp").is_none());
    // The id is free: creating it for real works.
    sys.registry
        .apply(ChangeSet::new().create(host_entry("temp", "{}", "{auto_start: true}")))
        .unwrap();
    settle(&app);
    spawn(&app, "app:temp").expect("created host runs");
    assert_eq!(app.shutdown(), 0);
}

#[test]
fn invalid_host_config_fails_boot_naming_the_entry() {
    let d = project(
        "version: \"1.0\"\nnamespace: app\nentries:\n  - {name: bad, kind: process.host, host: {local_queue_size: -1}}\n",
    );
    let e = boot(d.path()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "apply entries: operation rejected for entry app:bad: local queue size must be greater than 0"
    );
    let d = project(
        "version: \"1.0\"\nnamespace: app\nentries:\n  - {name: bad, kind: process.host, lifecycle: {stop_timeout: later}}\n",
    );
    let e = boot(d.path()).unwrap_err().to_string();
    assert!(
        e.starts_with("apply entries: operation rejected for entry app:bad: lifecycle.stop_timeout: invalid duration \"later\""),
        "{e}"
    );
}

#[test]
fn graceful_shutdown_cancels_host_processes() {
    let d = project(TWO_HOSTS);
    let app = boot(d.path()).expect("boot");
    let h = app.system().handle.clone();
    let (pid, exit) = h
        .spawn_watched(
            "app:processes",
            Box::new(Waiter),
            "main",
            vec![],
            SpawnOptions::default(),
        )
        .unwrap();
    app.request_shutdown(7);
    assert!(app.wait_timeout(Duration::from_secs(5)));
    assert_eq!(app.shutdown(), 7);
    assert_eq!(
        exit.wait_timeout(Duration::from_secs(5)).unwrap().unwrap(),
        Value::str("cancelled"),
        "{pid} saw CANCEL from the host stop"
    );
}

#[test]
fn registry_events_reach_the_bus_in_order() {
    let d = project(TWO_HOSTS);
    let app = boot(d.path()).expect("boot");
    let sys = app.system().clone();
    let sub = sys.handle.bus().subscribe("registry", "").unwrap();
    // `registry.entry` is an internal kind (applied without events); `app.setting` is not.
    sys.registry
        .apply(
            ChangeSet::new()
                .create(Entry::new("app:a", "app.setting").with_data(Value::Int(1)))
                .create(Entry::new("app:b", "app.setting").with_data(Value::Int(2)))
                .create(host_entry("extra", "{}", "{}")),
        )
        .unwrap();
    let mut seen = Vec::new();
    while let Some(ev) = sub.recv_timeout(Duration::from_secs(2)) {
        seen.push(format!("{} {}", ev.kind, ev.path));
        if ev.kind == "registry.version" {
            break;
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert!(seen[0].starts_with("registry.begin registry.tx/"));
    let mut creates: Vec<&str> = seen[1..4].iter().map(String::as_str).collect();
    creates.sort_unstable();
    assert_eq!(
        creates,
        [
            "entry.create app:a",
            "entry.create app:b",
            "entry.create app:extra"
        ]
    );
    assert!(seen[4].starts_with("registry.commit registry.tx/"));
    assert_eq!(seen[5], "registry.version 1");
    assert_eq!(app.shutdown(), 0);
}
