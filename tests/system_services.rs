//! Supervisor ↔ registry integration and the `process.service` kind manager, with native
//! processes standing in for Lua ones.

mod system_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use system_support::*;
use wippy::config::Config;
use wippy::registry::{ChangeSet, Entry, Registry};
use wippy::rt::process::{CANCEL, event_kind};
use wippy::rt::{Error, Process, Value};
use wippy::services::service as process_service;
use wippy::system::supervisor::{self, LifecycleConfig, ServiceSpec, Status, Supervisor};
use wippy::system::{Factories, Functions, ProcessFactory, Shutdown, System};

fn system(rig: &Rig) -> Arc<System> {
    Arc::new(System {
        handle: rig.handle.clone(),
        registry: Arc::new(Registry::default()),
        config: Arc::new(Config::defaults()),
        factories: Arc::new(Factories::new()),
        functions: Arc::new(Functions::new()),
        shutdown: Arc::new(Shutdown::new()),
    })
}

fn yaml(s: &str) -> Value {
    serde_yaml::from_str(s).unwrap()
}

/// A `test.service` listener registering scripted services inside the registry transaction.
fn install_test_kind(sys: &Arc<System>, sup: &Arc<Supervisor>, l: &Log) {
    let (sup, l) = (sup.clone(), l.clone());
    sys.registry
        .handlers()
        .add_listener_fn("test.service", "test", move |ev| {
            let id = ev.entry.id.to_string();
            if ev.op == wippy::registry::OpKind::Delete {
                return sup.remove_in(ev.tx, &id);
            }
            if ev.entry.data.get("reject").is_some() {
                return Err(Error::invalid("rejected on purpose"));
            }
            let config = LifecycleConfig::parse(
                ev.entry.data.get("lifecycle").unwrap_or(&Value::Nil),
                ev.entry.id.ns(),
            )?;
            sup.register_in(
                ev.tx,
                ServiceSpec {
                    id: id.clone(),
                    service: Arc::new(Scripted::new(&id, &l, Step::Run)),
                    config,
                    deps: vec![],
                },
                Some(ev.entry.clone()),
            )
        });
}

#[test]
fn registry_commit_starts_auto_start_services_in_dependency_order() {
    let rig = Rig::new();
    let sys = system(&rig);
    let sup = supervisor::install(&sys).unwrap();
    let l = log();
    install_test_kind(&sys, &sup, &l);
    // Plain data entry between a service and its dependency: followed transitively.
    let cs = ChangeSet::new()
        .create(
            Entry::new("app:web", "test.service")
                .with_data(yaml("lifecycle: {auto_start: true}\nconfig: app:settings")),
        )
        .create(Entry::new("app:settings", "app.config").with_data(yaml("db: app:db")))
        .create(
            Entry::new("app:db", "test.service")
                .with_data(yaml("lifecycle: {auto_start: true, requires: [cache]}")),
        )
        .create(Entry::new("app:cache", "test.service").with_data(yaml("lifecycle: {}")))
        .create(Entry::new("app:idle", "test.service").with_data(yaml("lifecycle: {}")));
    sys.registry
        .handlers()
        .add_listener_fn("app.config", "cfg", |_| Ok(()));
    // `db` in app:settings is a dependency string through data.db? No: only registered
    // patterns count; add one like a component would.
    sys.registry.resolver().register("data.db");
    sys.registry.apply(cs).unwrap();
    let r = sup
        .wait_transitions(Duration::from_secs(10))
        .expect("transition ran")
        .unwrap();
    assert_eq!(order(&l, "start"), vec!["app:cache", "app:db", "app:web"]);
    assert_eq!(r.done.len(), 3);
    assert_eq!(sup.state("app:idle").unwrap().status, Status::Unknown);
    // Delete: stopped (with its dependents) and forgotten.
    sys.registry
        .apply(ChangeSet::new().delete("app:db"))
        .unwrap();
    sup.wait_transitions(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert!(sup.state("app:db").is_none());
    assert_eq!(order(&l, "stop"), vec!["app:web", "app:db"]);
    assert_eq!(sup.state("app:web").unwrap().status, Status::Stopped);
    assert_eq!(sup.state("app:cache").unwrap().status, Status::Running);
    sup.shutdown();
}

#[test]
fn rejected_registry_change_registers_nothing_and_outside_tx_is_refused() {
    let rig = Rig::new();
    let sys = system(&rig);
    let sup = supervisor::install(&sys).unwrap();
    let l = log();
    install_test_kind(&sys, &sup, &l);
    let cs = ChangeSet::new()
        .create(
            Entry::new("app:ok", "test.service").with_data(yaml("lifecycle: {auto_start: true}")),
        )
        .create(Entry::new("app:bad", "test.service").with_data(yaml("reject: true")));
    let e = sys.registry.apply(cs).unwrap_err();
    assert!(e.to_string().contains("rejected on purpose"), "{e}");
    assert!(sup.wait_transitions(Duration::from_millis(100)).is_none());
    assert!(sup.ids().is_empty());
    assert!(order(&l, "start").is_empty());
    let e = sup
        .register_in(
            999,
            ServiceSpec {
                id: "app:x".into(),
                service: Arc::new(Scripted::new("x", &l, Step::Run)),
                config: LifecycleConfig::default(),
                deps: vec![],
            },
            None,
        )
        .unwrap_err();
    assert_eq!(e.message(), "action received outside of transaction");
    sup.shutdown();
}

#[test]
fn bus_commands_start_and_stop_services() {
    let rig = Rig::new();
    let sys = system(&rig);
    let sup = supervisor::install(&sys).unwrap();
    let l = log();
    install_test_kind(&sys, &sup, &l);
    sys.registry
        .apply(
            ChangeSet::new()
                .create(Entry::new("app:manual", "test.service").with_data(yaml("lifecycle: {}"))),
        )
        .unwrap();
    let bus = rig.handle.bus();
    bus.publish(wippy::rt::BusEvent::new(
        "supervisor",
        "service.start",
        "app:manual",
        Value::Nil,
    ));
    wait_until(Duration::from_secs(5), || {
        sup.state("app:manual")
            .is_some_and(|s| s.status == Status::Running)
    });
    bus.publish(wippy::rt::BusEvent::new(
        "supervisor",
        "service.stop",
        "app:manual",
        Value::Nil,
    ));
    wait_until(Duration::from_secs(5), || {
        sup.state("app:manual")
            .is_some_and(|s| s.status == Status::Stopped)
    });
    sup.shutdown();
}

/// Creates native actors for a process entry; records every spawned PID.
struct ActorFactory {
    rig_topo: Arc<wippy::system::topology::Topology>,
    events: Arc<Mutex<Vec<Value>>>,
}

impl ProcessFactory for ActorFactory {
    fn create(&self) -> Result<Box<dyn Process>, Error> {
        let (tx, rx) = crossbeam_channel::unbounded::<(wippy::rt::Pid, Value)>();
        let ev = self.events.clone();
        std::thread::spawn(move || {
            while let Ok((_, v)) = rx.recv() {
                ev.lock().unwrap().push(v);
            }
        });
        Ok(Box::new(Actor::new(
            ActorSpec {
                log: Some(tx),
                on_cancel: OnCancel::Exit,
            },
            self.rig_topo.clone(),
        )))
    }
}

#[test]
fn process_service_restarts_crashed_children_and_stops_with_cancel() {
    let rig = Rig::new();
    let sys = system(&rig);
    let sup = supervisor::install(&sys).unwrap();
    process_service::install(&sys).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    sys.factories.register(
        "app:worker",
        Arc::new(ActorFactory {
            rig_topo: rig.topo.clone(),
            events: events.clone(),
        }),
    );
    sys.registry
        .apply(
            ChangeSet::new().create(Entry::new("app:svc", "process.service").with_data(yaml(
                "process: worker\nhost: app:processes\n\
             lifecycle: {auto_start: true, restart: {initial_delay: 20ms, jitter: 0}}",
            ))),
        )
        .unwrap();
    sup.wait_transitions(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    let child = |sup: &Supervisor| {
        let _ = sup;
        rig.handle
            .processes()
            .into_iter()
            .map(|p| p.pid)
            .collect::<Vec<_>>()
    };
    let first = child(&sup);
    assert_eq!(first.len(), 1);
    // Crash: restarted with a new PID.
    rig.tell(&first[0], "fail", Value::str("crash"));
    wait_until(Duration::from_secs(5), || {
        let c = child(&sup);
        c.len() == 1 && c[0] != first[0]
    });
    // The new child exists while `start` is still returning: the supervisor loop records
    // Running only after that, so wait for the state instead of sampling it once.
    wait_until(Duration::from_secs(30), || {
        sup.state("app:svc").unwrap().status == Status::Running
    });
    let st = sup.state("app:svc").unwrap();
    assert_eq!(st.status, Status::Running);
    assert_eq!(st.retry_count, 1);
    // Stop: the child gets CANCEL "service stopping" and exits.
    sup.stop("app:svc").unwrap();
    assert!(child(&sup).is_empty());
    wait_until(Duration::from_secs(5), || {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|v| event_kind(v) == Some(CANCEL))
    });
    let cancels: Vec<Value> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|v| event_kind(v) == Some(CANCEL))
        .cloned()
        .collect();
    assert_eq!(cancels.len(), 1);
    assert_eq!(
        cancels[0].get("reason").and_then(Value::as_str),
        Some(process_service::STOP_REASON)
    );
    // Start again, then a normal exit: exited, not restarted.
    sup.start("app:svc").unwrap();
    let c = child(&sup);
    rig.tell(&c[0], "exit", Value::Nil);
    wait_until(Duration::from_secs(5), || {
        sup.state("app:svc")
            .is_some_and(|s| s.status == Status::Exited)
    });
    std::thread::sleep(Duration::from_millis(60));
    assert!(child(&sup).is_empty());
    sup.shutdown();
    wait_until(Duration::from_secs(2), || rig.topo.is_quiescent());
}

#[test]
fn process_service_entries_are_validated() {
    let rig = Rig::new();
    let sys = system(&rig);
    let _sup = supervisor::install(&sys).unwrap();
    process_service::install(&sys).unwrap();
    for (data, msg) in [
        (
            "host: app:processes",
            "process.service app:s: process is required",
        ),
        ("process: w", "process.service app:s: host is required"),
        (
            "process: w\nhost: node:control",
            "invalid host: node:control",
        ),
        ("process: w\nhost: h\ninput: 3", "input must be a list"),
        (
            "process: w\nhost: h\nlifecycle: {restart: {jitter: 5}}",
            "lifecycle.restart.jitter",
        ),
    ] {
        let e = sys
            .registry
            .apply(
                ChangeSet::new()
                    .create(Entry::new("app:s", "process.service").with_data(yaml(data))),
            )
            .unwrap_err();
        assert!(e.to_string().contains(msg), "{data}: {e}");
    }
}

#[test]
fn process_service_that_ignores_cancel_is_terminated_at_stop_timeout() {
    let rig = Rig::new();
    let sys = system(&rig);
    let sup = supervisor::install(&sys).unwrap();
    let topo = rig.topo.clone();
    let svc = Arc::new(process_service::ProcessService::new(
        "app:stubborn",
        topo.clone(),
        Arc::new(move |opts| rig_spawn_ignoring(&topo, opts)),
    ));
    let cfg = LifecycleConfig {
        stop_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    sup.register(ServiceSpec {
        id: "app:stubborn".into(),
        service: svc.clone(),
        config: cfg,
        deps: vec![],
    });
    sup.start("app:stubborn").unwrap();
    let pid = svc.child().unwrap();
    sup.stop("app:stubborn").unwrap();
    assert!(!rig.handle.is_alive(&pid));
    assert_eq!(sup.state("app:stubborn").unwrap().status, Status::Stopped);
    sup.shutdown();
}

fn rig_spawn_ignoring(
    topo: &Arc<wippy::system::topology::Topology>,
    opts: wippy::rt::SpawnOptions,
) -> Result<wippy::rt::Pid, Error> {
    topo.handle().spawn(
        HOST,
        Box::new(Actor::new(
            ActorSpec {
                log: None,
                on_cancel: OnCancel::Ignore,
            },
            topo.clone(),
        )),
        "main",
        vec![],
        opts,
    )
}
