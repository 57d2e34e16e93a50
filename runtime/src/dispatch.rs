//! The dispatcher table: command id → handler (spec §7).
//!
//! * Ids below 256 index a 256-slot array; larger ids go to an FNV map.
//! * [`Dispatcher::register`] panics on a duplicate id naming both owners, and after
//!   [`Dispatcher::freeze`] — registration is boot wiring; a collision is a build bug.
//! * After `freeze` the table is immutable and read without any lock or reference-count
//!   traffic (a `OnceLock`); before it, lookups take a mutex (boot-time only).
//!
//! A handler receives the command, a [`DispatchCx`] (caller PID and runtime handle) and the
//! [`Completer`] for the yield; it must return quickly and complete later from any thread when
//! the work blocks. An unknown id completes the yield with `NotFound` "unknown command"
//! (detail `command_id`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use fnv::FnvBuildHasher;

use crate::error::Error;
use crate::pid::Pid;
use crate::process::{Command, CommandId, Completer};
use crate::runtime::Handle;
use crate::value::Value;

/// Size of the direct-index table (ids `0..256`, the system command range).
pub const DIRECT_SLOTS: usize = 256;

/// Context passed to a handler.
pub struct DispatchCx<'a> {
    pub(crate) pid: &'a Pid,
    pub(crate) handle: &'a Handle,
    pub(crate) options: &'a crate::runtime::SpawnOptions,
}

impl<'a> DispatchCx<'a> {
    /// The calling process.
    pub fn pid(&self) -> &Pid {
        self.pid
    }
    /// The runtime handle.
    pub fn handle(&self) -> &Handle {
        self.handle
    }
    /// The caller's spawn options (parent, name, attrs…).
    pub fn options(&self) -> &crate::runtime::SpawnOptions {
        self.options
    }
}

impl fmt::Debug for DispatchCx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatchCx").field("pid", self.pid).finish()
    }
}

/// A command handler.
pub trait Handler: Send + Sync + 'static {
    /// Handle `cmd`; complete `done` now or later from any thread.
    fn handle(&self, cx: &DispatchCx<'_>, cmd: Box<dyn Command>, done: Completer);
}

impl<F> Handler for F
where
    F: Fn(&DispatchCx<'_>, Box<dyn Command>, Completer) + Send + Sync + 'static,
{
    fn handle(&self, cx: &DispatchCx<'_>, cmd: Box<dyn Command>, done: Completer) {
        self(cx, cmd, done)
    }
}

#[derive(Clone)]
struct Entry {
    handler: Arc<dyn Handler>,
    owner: &'static str,
}

struct Table {
    direct: Box<[Option<Entry>]>,
    ext: HashMap<CommandId, Entry, FnvBuildHasher>,
}

impl Table {
    fn new() -> Table {
        Table {
            direct: vec![None; DIRECT_SLOTS].into_boxed_slice(),
            ext: HashMap::default(),
        }
    }
    #[inline]
    fn get(&self, id: CommandId) -> Option<&Entry> {
        if (id as usize) < DIRECT_SLOTS {
            self.direct[id as usize].as_ref()
        } else {
            self.ext.get(&id)
        }
    }
}

/// See the module docs.
pub struct Dispatcher {
    building: Mutex<Option<Table>>,
    frozen: OnceLock<Table>,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher::new()
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("frozen", &self.is_frozen())
            .finish()
    }
}

impl Dispatcher {
    /// An empty, unfrozen table.
    pub fn new() -> Dispatcher {
        Dispatcher {
            building: Mutex::new(Some(Table::new())),
            frozen: OnceLock::new(),
        }
    }

    /// Register `handler` for `id`, owned by module `owner`.
    ///
    /// # Panics
    /// `"dispatcher: command <id> registered by '<owner>' is already registered by '<other>'"`
    /// on a duplicate; `"dispatcher: cannot register command <id> ('<owner>') after freeze()"`.
    pub fn register(&self, id: CommandId, owner: &'static str, handler: Arc<dyn Handler>) {
        let mut g = self.building.lock().unwrap_or_else(|p| p.into_inner());
        let Some(t) = g.as_mut() else {
            panic!("dispatcher: cannot register command {id} ('{owner}') after freeze()");
        };
        if let Some(prev) = t.get(id) {
            panic!(
                "dispatcher: command {id} registered by '{owner}' is already registered by '{}'",
                prev.owner
            );
        }
        let e = Entry { handler, owner };
        if (id as usize) < DIRECT_SLOTS {
            t.direct[id as usize] = Some(e);
        } else {
            t.ext.insert(id, e);
        }
    }

    /// Freeze: later registrations panic; lookups become lock-free. Idempotent.
    pub fn freeze(&self) {
        let mut g = self.building.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = g.take() {
            let _ = self.frozen.set(t);
        }
    }

    /// True once frozen.
    pub fn is_frozen(&self) -> bool {
        self.frozen.get().is_some()
    }

    /// The handler for `id`.
    pub fn get(&self, id: CommandId) -> Option<Arc<dyn Handler>> {
        match self.frozen.get() {
            Some(t) => t.get(id).map(|e| e.handler.clone()),
            None => self.lookup_building(id).map(|e| e.handler),
        }
    }

    /// The module that registered `id`.
    pub fn owner(&self, id: CommandId) -> Option<&'static str> {
        match self.frozen.get() {
            Some(t) => t.get(id).map(|e| e.owner),
            None => self.lookup_building(id).map(|e| e.owner),
        }
    }

    fn lookup_building(&self, id: CommandId) -> Option<Entry> {
        let g = self.building.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_ref() {
            Some(t) => t.get(id).cloned(),
            None => self.frozen.get().and_then(|t| t.get(id).cloned()),
        }
    }

    /// Dispatch one command: run its handler, or complete with "unknown command".
    #[inline]
    pub(crate) fn dispatch(&self, cx: &DispatchCx<'_>, cmd: Box<dyn Command>, done: Completer) {
        let id = cmd.id();
        if let Some(t) = self.frozen.get() {
            match t.get(id) {
                Some(e) => e.handler.handle(cx, cmd, done),
                None => unknown(id, done),
            }
            return;
        }
        match self.lookup_building(id) {
            Some(e) => e.handler.handle(cx, cmd, done),
            None => unknown(id, done),
        }
    }
}

#[cold]
fn unknown(id: CommandId, done: Completer) {
    done.complete(Err(unknown_command(id)));
}

/// The error for an unregistered command id.
#[cold]
pub fn unknown_command(id: CommandId) -> Error {
    Error::not_found("unknown command").with_detail("command_id", Value::Int(i64::from(id)))
}
