//! Component loader: dependency levels, parallel loads within a level, start order, reverse
//! stop, failure cleanup, and the freeze/seal barrier between load and start (through a real
//! `App` boot).

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wippy::boot::{App, BootCx, BootError, BootOptions, Component, Loader, Phase};
use wippy::config::{Config, ConfigSources};
use wippy::registry::Registry;
use wippy::rt::{Builder, Error, Runtime};
use wippy::system::{Factories, Functions, Shutdown, System};

type Log = Arc<Mutex<Vec<String>>>;

/// A rendezvous for `n` parties that gives up after a timeout (so a sequential loader fails
/// the test instead of hanging it).
struct Rendezvous {
    n: usize,
    arrived: Mutex<usize>,
    cv: Condvar,
}

impl Rendezvous {
    fn new(n: usize) -> Arc<Rendezvous> {
        Arc::new(Rendezvous {
            n,
            arrived: Mutex::new(0),
            cv: Condvar::new(),
        })
    }
    /// True when all `n` parties were inside at the same time.
    fn meet(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.arrived.lock().unwrap();
        *g += 1;
        self.cv.notify_all();
        while *g < self.n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self.cv.wait_timeout(g, deadline - now).unwrap().0;
        }
        true
    }
}

struct Probe {
    name: &'static str,
    deps: &'static [&'static str],
    log: Log,
    meet: Option<Arc<Rendezvous>>,
    fail_load: bool,
    panic_load: bool,
    fail_start: bool,
}

impl Probe {
    fn new(name: &'static str, deps: &'static [&'static str], log: &Log) -> Probe {
        Probe {
            name,
            deps,
            log: log.clone(),
            meet: None,
            fail_load: false,
            panic_load: false,
            fail_start: false,
        }
    }
    fn push(&self, what: &str) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{what} {}", self.name));
    }
}

impl Component for Probe {
    fn name(&self) -> &'static str {
        self.name
    }
    fn depends_on(&self) -> &'static [&'static str] {
        self.deps
    }
    fn load(&self, _cx: &BootCx<'_>) -> Result<(), Error> {
        if self.panic_load {
            panic!("probe {} exploded", self.name);
        }
        if let Some(m) = &self.meet
            && !m.meet(Duration::from_secs(10))
        {
            return Err(Error::internal("loads of one level did not overlap"));
        }
        self.push("load");
        if self.fail_load {
            return Err(Error::invalid("bad wiring"));
        }
        Ok(())
    }
    fn start(&self, _cx: &BootCx<'_>) -> Result<(), Error> {
        self.push("start");
        if self.fail_start {
            return Err(Error::internal("cannot start"));
        }
        Ok(())
    }
    fn stop(&self, _cx: &BootCx<'_>, _deadline: Instant) -> Result<(), Error> {
        self.push("stop");
        Ok(())
    }
}

fn system() -> (Runtime, Arc<System>) {
    let rt = Builder::new().workers(1).pin(false).build().unwrap();
    let sys = Arc::new(System {
        handle: rt.handle(),
        registry: Arc::new(Registry::default()),
        config: Arc::new(Config::defaults()),
        factories: Arc::new(Factories::new()),
        functions: Arc::new(Functions::new()),
        shutdown: Arc::new(Shutdown::new()),
    });
    (rt, sys)
}

fn arcs(v: Vec<Probe>) -> Vec<Arc<dyn Component>> {
    v.into_iter()
        .map(|p| Arc::new(p) as Arc<dyn Component>)
        .collect()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[test]
fn components_of_one_level_load_concurrently() {
    let (_rt, sys) = system();
    let log = Log::default();
    let both = Rendezvous::new(2);
    let mut a = Probe::new("a", &[], &log);
    a.meet = Some(both.clone());
    let mut b = Probe::new("b", &[], &log);
    b.meet = Some(both.clone());
    let c = Probe::new("c", &["a", "b"], &log);
    let mut loader = Loader::new(arcs(vec![c, b, a])).unwrap();
    assert_eq!(loader.level_names(), vec![vec!["a", "b"], vec!["c"]]);
    let cx = BootCx {
        system: &sys,
        dir: Path::new("."),
    };
    // Only passes if the loads of a and b were in progress at the same time.
    loader.load(&cx, soon()).expect("parallel level load");
    let l = log.lock().unwrap().clone();
    assert_eq!(l.len(), 3);
    assert_eq!(
        l[2], "load c",
        "c loads only after both of its dependencies"
    );
}

#[test]
fn start_in_load_order_stop_in_reverse() {
    let (_rt, sys) = system();
    let log = Log::default();
    let comps = vec![
        Probe::new("web", &["store", "auth"], &log),
        Probe::new("auth", &["store"], &log),
        Probe::new("store", &[], &log),
        Probe::new("metrics", &[], &log),
    ];
    let mut loader = Loader::new(arcs(comps)).unwrap();
    let cx = BootCx {
        system: &sys,
        dir: Path::new("."),
    };
    loader.load(&cx, soon()).unwrap();
    log.lock().unwrap().clear();
    loader.start(&cx, soon()).unwrap();
    assert!(loader.stop(&cx, soon()).is_empty());
    assert_eq!(
        *log.lock().unwrap(),
        [
            "start metrics",
            "start store",
            "start auth",
            "start web",
            "stop web",
            "stop auth",
            "stop store",
            "stop metrics"
        ]
    );
    assert!(!loader.is_active());
}

#[test]
fn failed_load_stops_what_loaded_and_names_the_component() {
    let (_rt, sys) = system();
    let log = Log::default();
    let mut bad = Probe::new("bad", &["base"], &log);
    bad.fail_load = true;
    let comps = vec![
        Probe::new("base", &[], &log),
        bad,
        Probe::new("sibling", &["base"], &log),
        Probe::new("later", &["bad"], &log),
    ];
    let mut loader = Loader::new(arcs(comps)).unwrap();
    let cx = BootCx {
        system: &sys,
        dir: Path::new("."),
    };
    let e = loader.load(&cx, soon()).unwrap_err();
    assert_eq!(e.phase, Phase::Load);
    assert_eq!(e.to_string(), "component bad: load failed: bad wiring");
    let l = log.lock().unwrap().clone();
    assert!(!l.contains(&"load later".to_string()), "{l:?}");
    // base and sibling loaded (bad returned an error after its load line); stopped in reverse.
    let stops: Vec<&String> = l.iter().filter(|s| s.starts_with("stop")).collect();
    assert_eq!(stops.last().map(|s| s.as_str()), Some("stop base"), "{l:?}");
    assert!(l.contains(&"stop sibling".to_string()), "{l:?}");
    assert!(
        !l.contains(&"stop bad".to_string()),
        "a failed load is not stopped: {l:?}"
    );
}

#[test]
fn panicking_load_and_failing_start_are_errors() {
    let (_rt, sys) = system();
    let log = Log::default();
    let mut p = Probe::new("boom", &[], &log);
    p.panic_load = true;
    let mut loader = Loader::new(arcs(vec![p])).unwrap();
    let cx = BootCx {
        system: &sys,
        dir: Path::new("."),
    };
    let e = loader.load(&cx, soon()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "component boom: load failed: panicked: probe boom exploded"
    );

    let mut s = Probe::new("late", &["early"], &log);
    s.fail_start = true;
    let mut loader = Loader::new(arcs(vec![Probe::new("early", &[], &log), s])).unwrap();
    loader.load(&cx, soon()).unwrap();
    log.lock().unwrap().clear();
    let e = loader.start(&cx, soon()).unwrap_err();
    assert_eq!(e.phase, Phase::Start);
    assert_eq!(
        *log.lock().unwrap(),
        ["start early", "start late", "stop late", "stop early"]
    );
}

/// Records, per phase, whether the dispatcher was frozen and the app context sealed.
struct Barrier {
    seen: Arc<Mutex<Vec<(String, bool, bool)>>>,
}

impl Component for Barrier {
    fn name(&self) -> &'static str {
        "test.barrier"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["registry", "supervisor"]
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        let h = &cx.system.handle;
        // Registration is allowed during load.
        h.dispatcher().register(
            4242,
            "test.barrier",
            Arc::new(
                |_: &wippy::rt::DispatchCx<'_>,
                 _: Box<dyn wippy::rt::Command>,
                 done: wippy::rt::Completer| {
                    let _ = done.complete(Ok(wippy::rt::Value::Nil));
                },
            ),
        );
        self.seen.lock().unwrap().push((
            "load".into(),
            h.dispatcher().is_frozen(),
            h.app_context().is_sealed(),
        ));
        Ok(())
    }
    fn start(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        let h = &cx.system.handle;
        let entries = cx.system.registry.snapshot().entries().len();
        self.seen.lock().unwrap().push((
            format!("start entries={entries}"),
            h.dispatcher().is_frozen(),
            h.app_context().is_sealed(),
        ));
        Ok(())
    }
}

fn empty_project() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("wippy.lock"),
        "directories: {modules: .wippy, src: ./src}\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.path().join("src")).unwrap();
    std::fs::write(
        d.path().join("src/_index.yaml"),
        "version: \"1.0\"\nnamespace: t\nentries:\n  - {name: cfg, kind: registry.entry, value: 1}\n",
    )
    .unwrap();
    d
}

fn opts(dir: &Path) -> BootOptions {
    let mut o = BootOptions::new(dir);
    o.workers = Some(1);
    o.config = ConfigSources {
        file: Some(dir.join(".wippy.yaml")),
        ..Default::default()
    };
    o
}

#[test]
fn dispatcher_frozen_and_context_sealed_before_start_entries_after() {
    let d = empty_project();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut o = opts(d.path());
    o.components.push(Arc::new(Barrier { seen: seen.clone() }));
    let app = App::start(o).expect("boot");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("load".to_string(), false, false),
            ("start entries=0".to_string(), true, true)
        ]
    );
    assert_eq!(app.system().registry.snapshot().entries().len(), 1);
    let order = app.component_order();
    let pos = |n: &str| order.iter().position(|c| *c == n).unwrap();
    assert!(pos("registry") < pos("supervisor"));
    assert!(pos("supervisor") < pos("services.host"));
    assert!(pos("lua.engine") < pos("services.terminal"));
    assert!(pos("supervisor") < pos("test.barrier"));
    assert_eq!(app.shutdown(), 0);
}

#[test]
fn unknown_dependency_fails_boot_with_the_names() {
    let d = empty_project();
    struct Orphan;
    impl Component for Orphan {
        fn name(&self) -> &'static str {
            "orphan"
        }
        fn depends_on(&self) -> &'static [&'static str] {
            &["nowhere"]
        }
        fn load(&self, _: &BootCx<'_>) -> Result<(), Error> {
            Ok(())
        }
    }
    let mut o = opts(d.path());
    o.components.push(Arc::new(Orphan));
    let e = App::start(o).unwrap_err();
    assert!(matches!(e, BootError::Component(_)));
    assert_eq!(
        e.to_string(),
        "components: component \"orphan\" depends on unknown component \"nowhere\""
    );
}
