//! Process factories: how a registry entry becomes a runnable [`Process`].
//!
//! Kind managers (e.g. the Lua engine for `process.lua`) register one factory per entry id
//! when the registry accepts the entry and remove it on delete; an update replaces it, so the
//! next spawn uses the new code while running processes keep theirs. Hosts and the process
//! manager look factories up by the `source` id given to a spawn.

use std::sync::{Arc, RwLock};

use fnv::FnvHashMap;
use wippy_rt::{Error, Kind, Process};

/// Creates fresh process instances for one registry entry.
pub trait ProcessFactory: Send + Sync + 'static {
    /// A new, not yet initialised process. `init` is called by the runtime inside the spawn.
    fn create(&self) -> Result<Box<dyn Process>, Error>;
    /// The method used when a spawn names none (the entry's `method`, default `main`).
    fn default_method(&self) -> &str {
        "main"
    }
}

/// Factories by registry entry id.
#[derive(Default)]
pub struct Factories {
    map: RwLock<FnvHashMap<String, Arc<dyn ProcessFactory>>>,
}

impl Factories {
    /// An empty table.
    pub fn new() -> Factories {
        Factories::default()
    }

    /// Register (or replace) the factory of `id`.
    pub fn register(&self, id: &str, factory: Arc<dyn ProcessFactory>) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), factory);
    }

    /// Remove the factory of `id`; true if there was one.
    pub fn remove(&self, id: &str) -> bool {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .is_some()
    }

    /// The factory of `id`.
    pub fn get(&self, id: &str) -> Option<Arc<dyn ProcessFactory>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// The factory of `id`, or the original's error (`factory not found`, kind NotFound).
    pub fn require(&self, id: &str) -> Result<Arc<dyn ProcessFactory>, Error> {
        self.get(id).ok_or_else(|| {
            Error::new(Kind::NOT_FOUND, format!("factory not found: {id}")).with_detail("id", id)
        })
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

impl std::fmt::Debug for Factories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factories")
            .field("ids", &self.ids())
            .finish()
    }
}
