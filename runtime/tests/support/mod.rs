//! Shared helpers for the runtime's integration tests: native processes built from closures.
#![allow(dead_code)]

use std::time::Duration;

use wippy_rt::*;

/// Host id used by the tests.
pub const HOST: &str = "app:test";

/// A runtime with `workers` unpinned workers and one host.
pub fn runtime(workers: usize) -> (Runtime, Handle) {
    let rt = Builder::new()
        .workers(workers)
        .pin(false)
        .stop_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let h = rt.handle();
    h.add_host(HOST, HostConfig::default()).unwrap();
    (rt, h)
}

type StepFn = Box<
    dyn FnMut(&mut ProcessCx<'_>, &mut Vec<Event>, &mut StepOutput) -> Result<(), Error> + Send,
>;
type InitFn = Box<dyn FnMut(&mut ProcessCx<'_>, &str, Vec<Value>) -> Result<(), Error> + Send>;

/// A process from closures.
pub struct FnProc {
    pub init: Option<InitFn>,
    pub step: StepFn,
    pub on_close: Option<Box<dyn FnMut() + Send>>,
}

impl FnProc {
    pub fn new(
        step: impl FnMut(&mut ProcessCx<'_>, &mut Vec<Event>, &mut StepOutput) -> Result<(), Error>
        + Send
        + 'static,
    ) -> Box<FnProc> {
        Box::new(FnProc {
            init: None,
            step: Box::new(step),
            on_close: None,
        })
    }
    pub fn with_init(
        mut self: Box<Self>,
        f: impl FnMut(&mut ProcessCx<'_>, &str, Vec<Value>) -> Result<(), Error> + Send + 'static,
    ) -> Box<FnProc> {
        self.init = Some(Box::new(f));
        self
    }
    pub fn with_close(mut self: Box<Self>, f: impl FnMut() + Send + 'static) -> Box<FnProc> {
        self.on_close = Some(Box::new(f));
        self
    }
}

impl Process for FnProc {
    fn init(
        &mut self,
        cx: &mut ProcessCx<'_>,
        method: &str,
        input: Vec<Value>,
    ) -> Result<(), Error> {
        match &mut self.init {
            Some(f) => f(cx, method, input),
            None => Ok(()),
        }
    }
    fn step(
        &mut self,
        cx: &mut ProcessCx<'_>,
        events: &mut Vec<Event>,
        out: &mut StepOutput,
    ) -> Result<(), Error> {
        (self.step)(cx, events, out)
    }
    fn close(&mut self) {
        if let Some(f) = &mut self.on_close {
            f();
        }
    }
}

/// A package with one payload on the inbox topic.
pub fn msg(from: &Pid, to: &Pid, v: impl Into<Value>) -> Package {
    Package::new(
        from.clone(),
        to.clone(),
        process::INBOX_TOPIC,
        vec![v.into()],
    )
}

/// Spawn a watched process on [`HOST`].
pub fn spawn(h: &Handle, p: Box<dyn Process>) -> (Pid, ExitWatch) {
    h.spawn_watched(HOST, p, "main", vec![], SpawnOptions::default())
        .unwrap()
}

/// Wait for an exit, failing the test after 20 s.
pub fn wait(w: &ExitWatch) -> Result<Value, Error> {
    w.wait_timeout(Duration::from_secs(20))
        .expect("process did not exit within 20 s")
}

/// A command carrying a value, with a given id.
pub struct Cmd(pub CommandId, pub Value);

impl Command for Cmd {
    fn id(&self) -> CommandId {
        self.0
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// Unwrap a [`Cmd`].
pub fn cmd_value(c: Box<dyn Command>) -> Value {
    c.into_any().downcast::<Cmd>().expect("Cmd").1
}
