//! The function registry: callable entries (`function.lua`, later contracts and others) by
//! registry entry id (spec `runtime-internals.md` §11.8).
//!
//! A call is asynchronous: the handler starts it and later invokes the [`Reply`] exactly once,
//! from any thread. Callers inside a process wrap their `Completer` in the reply; Rust callers
//! (tests, the benchmark harness, HTTP) may pass any closure.

use std::sync::{Arc, RwLock};

use fnv::FnvHashMap;
use wippy_rt::{Error, Kind, Pid, Value};

/// Receives the result of one call, exactly once.
pub type Reply = Box<dyn FnOnce(Result<Value, Error>) + Send + 'static>;

/// One function call.
#[derive(Clone, Debug, Default)]
pub struct CallRequest {
    /// Registry id of the target (`ns:name`).
    pub target: String,
    /// Positional arguments (one payload each).
    pub args: Vec<Value>,
    /// The calling process, when there is one (its cancellation cancels the call).
    pub caller: Option<Pid>,
    /// Context values propagated to the callee (`ctx` module), read-only for it.
    pub context: Vec<(String, Value)>,
    /// Call options (`funcs.new():with_options`), merged over the entry's `meta.options`.
    pub options: Vec<(String, Value)>,
}

/// Executes calls for one registry entry.
pub trait FunctionHandler: Send + Sync + 'static {
    /// Start `req`; `reply` must be called exactly once (possibly before returning).
    fn call(&self, req: CallRequest, reply: Reply);
}

/// Handlers by registry entry id.
#[derive(Default)]
pub struct Functions {
    map: RwLock<FnvHashMap<String, Arc<dyn FunctionHandler>>>,
}

impl Functions {
    /// An empty table.
    pub fn new() -> Functions {
        Functions::default()
    }

    /// Register (or replace) the handler of `id`.
    pub fn register(&self, id: &str, handler: Arc<dyn FunctionHandler>) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), handler);
    }

    /// Remove the handler of `id`; true if there was one.
    pub fn remove(&self, id: &str) -> bool {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .is_some()
    }

    /// The handler of `id`.
    pub fn get(&self, id: &str) -> Option<Arc<dyn FunctionHandler>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Dispatch a call; an unknown target replies with the original's NotFound error
    /// ("no handler registered for target", detail `target`).
    pub fn call(&self, req: CallRequest, reply: Reply) {
        match self.get(&req.target) {
            Some(h) => h.call(req, reply),
            None => {
                let target = req.target.clone();
                reply(Err(Error::new(
                    Kind::NOT_FOUND,
                    "no handler registered for target",
                )
                .with_detail("target", target)))
            }
        }
    }

    /// Registered ids (sorted), for introspection.
    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions")
            .field("ids", &self.ids())
            .finish()
    }
}
