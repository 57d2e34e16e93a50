//! Shared helpers for the `system_*` tests: a runtime with the topology installed, a scripted
//! native process ([`Actor`]) that follows the engine's event rules, and a collector for
//! events delivered to native watcher PIDs.

#![allow(dead_code)]

pub mod lua;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use wippy::rt::process::{CANCEL, EVENTS_TOPIC, LINK_DOWN, event_kind};
use wippy::rt::{
    Builder, Error, Event, Handle, Package, Pid, Process, ProcessCx, Runtime, SpawnOptions, Status,
    StepOutput, Value,
};
use wippy::system::supervisor::{Service, ServiceCtx};
use wippy::system::topology::{Topology, Watch, link_failed_error};

pub const HOST: &str = "app:processes";

/// A runtime with one host and the topology installed.
pub struct Rig {
    pub rt: Option<Runtime>,
    pub handle: Handle,
    pub topo: Arc<Topology>,
}

impl Rig {
    pub fn new() -> Rig {
        let rt = Builder::new().workers(2).pin(false).build().unwrap();
        let handle = rt.handle();
        handle.add_host(HOST, Default::default()).unwrap();
        let topo = Topology::install(&handle).unwrap();
        handle.dispatcher().freeze();
        Rig {
            rt: Some(rt),
            handle,
            topo,
        }
    }

    /// Spawn an actor.
    pub fn spawn(&self, a: ActorSpec, opts: SpawnOptions) -> Result<Pid, Error> {
        self.handle.spawn(
            HOST,
            Box::new(Actor::new(a, self.topo.clone())),
            "main",
            vec![],
            opts,
        )
    }

    /// Send a command message to an actor.
    pub fn tell(&self, pid: &Pid, topic: &str, v: Value) {
        self.handle
            .send(Package::new(Pid::zero(), pid.clone(), topic, vec![v]))
            .unwrap();
    }

    /// Wait until `pid` is gone.
    pub fn wait_dead(&self, pid: &Pid) {
        wait_until(Duration::from_secs(5), || !self.handle.is_alive(pid));
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown(Duration::from_secs(2));
        }
    }
}

/// Poll `f` until true or panic after `d`.
pub fn wait_until(d: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + d;
    while !f() {
        assert!(Instant::now() < end, "condition not reached in {d:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What an actor does on CANCEL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnCancel {
    /// Exit normally with `"cancelled"`.
    Exit,
    /// Ignore it (record only).
    Ignore,
}

/// An actor's script.
#[derive(Clone)]
pub struct ActorSpec {
    pub on_cancel: OnCancel,
    /// Every `@pid/events` payload received, with the receiver.
    pub log: Option<Sender<(Pid, Value)>>,
}

impl Default for ActorSpec {
    fn default() -> Self {
        ActorSpec {
            on_cancel: OnCancel::Exit,
            log: None,
        }
    }
}

/// A native process driven by messages:
/// * topic `exit` with `"ok"`/any value → finish with that value; topic `fail` with a message
///   → finish with an `Internal` error;
/// * topic `monitor` / `link` with a PID string → call the topology for itself;
/// * topic `trap` with a bool → set `trap_links`;
/// * `@pid/events`: logged; LINK_DOWN without `trap_links` → fail "linked process failed"
///   (the engine's rule, spec §4.4); CANCEL → per [`OnCancel`].
pub struct Actor {
    spec: ActorSpec,
    topo: Arc<Topology>,
}

impl Actor {
    pub fn new(spec: ActorSpec, topo: Arc<Topology>) -> Actor {
        Actor { spec, topo }
    }
}

impl Process for Actor {
    fn init(&mut self, _cx: &mut ProcessCx<'_>, _m: &str, _in: Vec<Value>) -> Result<(), Error> {
        Ok(())
    }

    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        events: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        let me = cx.pid().clone();
        for ev in events.drain(..) {
            let Event::Message(pkg) = ev else { continue };
            let p = pkg.payloads.first().cloned().unwrap_or(Value::Nil);
            match pkg.topic.as_str() {
                EVENTS_TOPIC => {
                    if let Some(tx) = &self.spec.log {
                        let _ = tx.send((me.clone(), p.clone()));
                    }
                    match event_kind(&p) {
                        Some(LINK_DOWN) if !self.topo.graph().traps_links(&me) => {
                            out.finish(Err(link_failed_error()));
                            return Ok(());
                        }
                        Some(CANCEL) if self.spec.on_cancel == OnCancel::Exit => {
                            out.finish(Ok(Value::str("cancelled")));
                            return Ok(());
                        }
                        _ => {}
                    }
                }
                "exit" => {
                    out.finish(Ok(p));
                    return Ok(());
                }
                "fail" => {
                    out.finish(Err(Error::internal(p.as_str().unwrap_or("boom"))));
                    return Ok(());
                }
                "monitor" => {
                    let t = Pid::parse(p.as_str().unwrap()).unwrap();
                    self.topo.monitor(&me, &t)?;
                }
                "link" => {
                    let t = Pid::parse(p.as_str().unwrap()).unwrap();
                    self.topo.link(&me, &t)?;
                }
                "trap" => self.topo.graph().set_trap_links(&me, p.as_bool().unwrap()),
                _ => {}
            }
        }
        out.set_status(Status::Idle);
        Ok(())
    }
}

/// A native watcher collecting the `@pid/events` payloads it receives.
pub struct Collector {
    pub watch: Watch,
    pub rx: Receiver<Value>,
}

impl Collector {
    pub fn new(topo: &Topology) -> Collector {
        let (tx, rx) = unbounded();
        let tx = Arc::new(Mutex::new(tx));
        let watch = topo.watch(move |pkg| {
            if pkg.topic == EVENTS_TOPIC {
                let _ = tx.lock().unwrap().send(pkg.payloads[0].clone());
            }
        });
        Collector { watch, rx }
    }

    pub fn pid(&self) -> &Pid {
        self.watch.pid()
    }

    /// Next event or panic after 5 s.
    pub fn next(&self) -> Value {
        self.rx
            .recv_timeout(Duration::from_secs(5))
            .expect("no event within 5 s")
    }

    /// Assert nothing arrives within `d`.
    pub fn none_within(&self, d: Duration) {
        if let Ok(v) = self.rx.recv_timeout(d) {
            panic!("unexpected event {v:?}");
        }
    }
}

/// `result.error` message of an EXIT/LINK_DOWN payload (None for a normal exit).
pub fn exit_error(ev: &Value) -> Option<String> {
    match ev.get_path("result.error") {
        Some(Value::Error(e)) => Some(e.message().to_string()),
        _ => None,
    }
}

// ===== scripted native services =====

pub type Log = Arc<Mutex<Vec<(String, &'static str, Instant)>>>;

#[derive(Clone)]
pub enum Step {
    FailStart(Error),
    Crash(Duration, Error),
    Exit(Duration),
    Run,
    SlowStart(Duration),
}

pub struct Scripted {
    pub name: String,
    script: Mutex<VecDeque<Step>>,
    default: Step,
    log: Log,
    pub stop_hang: Option<Duration>,
}

impl Scripted {
    pub fn new(name: &str, log: &Log, default: Step) -> Scripted {
        Scripted {
            name: name.into(),
            script: Mutex::new(VecDeque::new()),
            default,
            log: log.clone(),
            stop_hang: None,
        }
    }
    pub fn then(self, steps: Vec<Step>) -> Scripted {
        *self.script.lock().unwrap() = steps.into();
        self
    }
    fn record(&self, what: &'static str) {
        self.log
            .lock()
            .unwrap()
            .push((self.name.clone(), what, Instant::now()));
    }
}

impl Service for Scripted {
    fn start(&self, ctx: ServiceCtx) -> Result<(), Error> {
        self.record("start");
        let step = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| self.default.clone());
        match step {
            Step::FailStart(e) => Err(e),
            Step::Crash(after, e) => {
                std::thread::spawn(move || {
                    std::thread::sleep(after);
                    ctx.failed(e);
                });
                Ok(())
            }
            Step::Exit(after) => {
                std::thread::spawn(move || {
                    std::thread::sleep(after);
                    ctx.exited();
                });
                Ok(())
            }
            Step::Run => Ok(()),
            Step::SlowStart(d) => {
                std::thread::sleep(d);
                Ok(())
            }
        }
    }
    fn stop(&self, _deadline: Instant) -> Result<(), Error> {
        self.record("stop");
        if let Some(h) = self.stop_hang {
            std::thread::sleep(h);
        }
        Ok(())
    }
}

pub fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

pub fn times(log: &Log, name: &str, what: &str) -> Vec<Instant> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(n, w, _)| n == name && *w == what)
        .map(|(_, _, t)| *t)
        .collect()
}

pub fn order(log: &Log, what: &str) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(_, w, _)| *w == what)
        .map(|(n, _, _)| n.clone())
        .collect()
}
