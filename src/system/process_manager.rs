//! The process manager: start a registry entry as a process on a host (spec
//! `runtime-internals.md` §5.3 `Run`, §7 Spawn/Exec).
//!
//! [`ProcessManager::start`] takes a [`StartRequest`] — host, source entry id, method, input,
//! spawn options (parent / monitor / link / name), context pairs and start messages — and:
//!
//! 1. **spawn-or-signal**: when a name is requested and a [`NameResolver`] resolves it to a live
//!    process, nothing is spawned: the start messages are sent to that process and its PID is
//!    returned;
//! 2. creates the process from the entry's [`ProcessFactory`] ("factory not found: <id>");
//! 3. spawns it on the host (the runtime runs `init` — for Lua, the entry's top-level chunk —
//!    synchronously on the caller's thread, as the original's Spawn handler does), passing the
//!    options, the context pairs (attribute `ctx`) and the source id to lifecycle hooks;
//! 4. sends the start messages (from the zero PID), in order.
//!
//! Exits are observed through a global [`Lifecycle`] hook the manager installs: a start may
//! carry an exit watcher ([`ProcessManager::start_watched`], used by `process.exec` and the
//! terminal host) which is registered in `on_start` — before the process can run, so no exit
//! is missed — and called from `on_complete` with the process's result. The map is sharded by
//! PID and skipped entirely while no watcher is registered.
//!
//! Monitors, links and names are topology (a later component); the options travel in
//! [`SpawnOptions`] for its lifecycle hook. Until it exists, this manager delivers the EXIT
//! event of `monitor = true` children to their parent itself, so monitored spawns work.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use fnv::FnvHashMap;
use wippy_rt::app_context::Key;
use wippy_rt::process::exit_package;
use wippy_rt::{Completer, Error, Handle, Lifecycle, Package, Pid, SpawnOptions, Value};

use super::System;
use super::factory::Factories;

/// App-context key of the process manager.
pub static PROCESS_MANAGER_KEY: Key<ProcessManager> = Key::new("process.manager");

/// Attribute carrying the context pairs (a `Value::Map`).
pub const ATTR_CONTEXT: &str = "ctx";
/// Attribute carrying an exit watcher (opaque).
const ATTR_WATCH: &str = "pm.watch";

/// Spawn options of a start.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// The spawning process.
    pub parent: Option<Pid>,
    /// The parent monitors the child.
    pub monitor: bool,
    /// The parent links to the child.
    pub link: bool,
    /// Register (or signal) this name.
    pub name: Option<String>,
}

/// A request to start a process.
#[derive(Clone, Debug, Default)]
pub struct StartRequest {
    /// Host id (`process.host` or `terminal.host` entry id).
    pub host: String,
    /// Registry id of the process entry.
    pub source: String,
    /// Method; `None` = the entry's (default `main`).
    pub method: Option<String>,
    /// Input payloads (one argument each).
    pub input: Vec<Value>,
    /// Options.
    pub options: StartOptions,
    /// Context pairs (`ctx` module).
    pub context: Vec<(String, Value)>,
    /// Messages `(topic, payloads)` delivered right after the start.
    pub messages: Vec<(String, Vec<Value>)>,
    /// Extra lifecycle attributes.
    pub attrs: Vec<(String, Value)>,
}

/// Resolves process names (provided by the topology component).
pub trait NameResolver: Send + Sync + 'static {
    /// The live process registered under `name`.
    fn resolve(&self, name: &str) -> Option<Pid>;
}

/// Called once with a process's exit result.
pub type ExitFn = Box<dyn FnOnce(&Result<Value, Error>) + Send + 'static>;

struct Watch(Mutex<Option<ExitFn>>);

const SHARDS: usize = 16;

/// Exit watchers and monitor parents by PID.
struct Watchers {
    count: AtomicUsize,
    shards: Vec<Mutex<FnvHashMap<Pid, Entry>>>,
}

#[derive(Default)]
struct Entry {
    watches: Vec<Arc<Watch>>,
    monitor_parent: Option<Pid>,
}

impl Watchers {
    fn new() -> Watchers {
        Watchers {
            count: AtomicUsize::new(0),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(FnvHashMap::default()))
                .collect(),
        }
    }
    fn shard(&self, pid: &Pid) -> &Mutex<FnvHashMap<Pid, Entry>> {
        let n = pid.uniq_num().unwrap_or(0) as usize;
        &self.shards[n % SHARDS]
    }
}

/// Installed as a global lifecycle hook.
struct Hook {
    watchers: Arc<Watchers>,
    handle: Handle,
}

impl Lifecycle for Hook {
    fn on_start(&self, pid: &Pid, opts: &SpawnOptions) -> Result<(), Error> {
        let watch = match opts.attr(ATTR_WATCH) {
            Some(Value::Opaque(o)) => o.clone().downcast::<Watch>().ok(),
            _ => None,
        };
        let monitor_parent = if opts.monitor {
            opts.parent.clone()
        } else {
            None
        };
        if watch.is_none() && monitor_parent.is_none() {
            return Ok(());
        }
        let mut g = self
            .watchers
            .shard(pid)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let e = g.entry(pid.clone()).or_default();
        if let Some(w) = watch {
            e.watches.push(w);
        }
        if monitor_parent.is_some() {
            e.monitor_parent = monitor_parent;
        }
        self.watchers.count.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn on_complete(&self, pid: &Pid, result: &Result<Value, Error>) {
        if self.watchers.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let e = self
            .watchers
            .shard(pid)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(pid);
        let Some(e) = e else {
            return;
        };
        self.watchers.count.fetch_sub(1, Ordering::SeqCst);
        if let Some(parent) = e.monitor_parent {
            let _ = self.handle.send(exit_package(pid, &parent, result));
        }
        for w in e.watches {
            let f = w.0.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(f) = f {
                f(result);
            }
        }
    }
}

/// See the module docs.
pub struct ProcessManager {
    handle: Handle,
    factories: Arc<Factories>,
    names: RwLock<Option<Arc<dyn NameResolver>>>,
}

impl std::fmt::Debug for ProcessManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessManager").finish_non_exhaustive()
    }
}

/// Install the process manager of `sys` (idempotent) and return it.
pub fn install(sys: &Arc<System>) -> Arc<ProcessManager> {
    let cx = sys.handle.app_context();
    if let Some(pm) = cx.get(&PROCESS_MANAGER_KEY) {
        return pm;
    }
    let watchers = Arc::new(Watchers::new());
    sys.handle.add_lifecycle(Arc::new(Hook {
        watchers,
        handle: sys.handle.clone(),
    }));
    let pm = Arc::new(ProcessManager {
        handle: sys.handle.clone(),
        factories: sys.factories.clone(),
        names: RwLock::new(None),
    });
    cx.set_arc(&PROCESS_MANAGER_KEY, pm.clone());
    pm
}

impl ProcessManager {
    /// The process manager of `sys`, if installed.
    pub fn of(sys: &System) -> Option<Arc<ProcessManager>> {
        sys.handle.app_context().get(&PROCESS_MANAGER_KEY)
    }

    /// Set the name resolver (the topology component calls this).
    pub fn set_name_resolver(&self, r: Arc<dyn NameResolver>) {
        *self.names.write().unwrap_or_else(|e| e.into_inner()) = Some(r);
    }

    /// Start a process (see the module docs).
    ///
    /// # Errors
    /// "factory not found: <id>", "host not found", "host is shutting down", the process's
    /// `init` error (e.g. a Lua error in the entry's top-level code), lifecycle errors.
    pub fn start(&self, req: StartRequest) -> Result<Pid, Error> {
        self.start_inner(req, None)
    }

    /// Start a process and call `on_exit` with its result when it ends.
    ///
    /// # Errors
    /// As [`start`](Self::start); on error `on_exit` is not called.
    pub fn start_watched(&self, req: StartRequest, on_exit: ExitFn) -> Result<Pid, Error> {
        self.start_inner(req, Some(on_exit))
    }

    /// `process.exec`: start and complete `done` with the child's result.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn exec(&self, req: StartRequest, done: Completer) -> Result<Pid, Error> {
        self.start_watched(
            req,
            Box::new(move |r| {
                done.complete(r.clone());
            }),
        )
    }

    fn start_inner(&self, req: StartRequest, on_exit: Option<ExitFn>) -> Result<Pid, Error> {
        if let Some(name) = &req.options.name {
            let resolver = self.names.read().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(pid) = resolver.and_then(|r| r.resolve(name))
                && self.handle.is_alive(&pid)
            {
                self.send_messages(&pid, &req.messages);
                return Ok(pid);
            }
        }
        let factory = self.factories.require(&req.source)?;
        let process = factory.create()?;
        let method = req
            .method
            .clone()
            .unwrap_or_else(|| factory.default_method().to_string());
        let mut attrs = req.attrs;
        if !req.context.is_empty() {
            attrs.push((
                ATTR_CONTEXT.to_string(),
                Value::Map(
                    req.context
                        .into_iter()
                        .map(|(k, v)| (Value::from(k), v))
                        .collect(),
                ),
            ));
        }
        if let Some(f) = on_exit {
            attrs.push((
                ATTR_WATCH.to_string(),
                Value::Opaque(Arc::new(Watch(Mutex::new(Some(f))))),
            ));
        }
        let opts = SpawnOptions {
            parent: req.options.parent,
            monitor: req.options.monitor,
            link: req.options.link,
            name: req.options.name,
            source: Some(req.source),
            attrs,
        };
        let pid = self
            .handle
            .spawn(&req.host, process, &method, req.input, opts)?;
        self.send_messages(&pid, &req.messages);
        Ok(pid)
    }

    fn send_messages(&self, pid: &Pid, messages: &[(String, Vec<Value>)]) {
        for (topic, payloads) in messages {
            let _ = self.handle.send(Package::new(
                Pid::zero(),
                pid.clone(),
                topic.as_str(),
                payloads.clone(),
            ));
        }
    }
}

/// The context pairs passed to a spawn (attribute [`ATTR_CONTEXT`]).
pub fn context_of(opts: &SpawnOptions) -> Vec<(String, Value)> {
    match opts.attr(ATTR_CONTEXT) {
        Some(Value::Map(m)) => m
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.clone())))
            .collect(),
        _ => Vec::new(),
    }
}
