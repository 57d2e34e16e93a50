//! In-memory history (the default backend): a map version → (parent, changeset), seeded with
//! the empty root v0.

use std::collections::BTreeMap;
use std::sync::Mutex;

use wippy_rt::Error;

use super::History;
use crate::registry::changeset::ChangeSet;

#[derive(Debug)]
struct Inner {
    versions: BTreeMap<u64, (Option<u64>, ChangeSet)>,
    head: u64,
}

/// Keeps every version in memory for the life of the process.
#[derive(Debug)]
pub struct MemoryHistory {
    inner: Mutex<Inner>,
}

impl Default for MemoryHistory {
    fn default() -> Self {
        let mut versions = BTreeMap::new();
        versions.insert(0, (None, ChangeSet::new()));
        MemoryHistory {
            inner: Mutex::new(Inner { versions, head: 0 }),
        }
    }
}

impl MemoryHistory {
    /// An empty history (root only).
    pub fn new() -> MemoryHistory {
        MemoryHistory::default()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl History for MemoryHistory {
    fn save(&self, version: u64, parent: u64, changes: &ChangeSet) -> Result<(), Error> {
        let mut g = self.lock();
        g.versions.insert(version, (Some(parent), changes.clone()));
        g.head = version;
        Ok(())
    }
    fn set_head(&self, version: u64) -> Result<(), Error> {
        let mut g = self.lock();
        if !g.versions.contains_key(&version) {
            return Err(Error::not_found(format!("version not found: {version}")));
        }
        g.head = version;
        Ok(())
    }
    fn head(&self) -> Result<u64, Error> {
        Ok(self.lock().head)
    }
    fn versions(&self) -> Result<Vec<(u64, Option<u64>)>, Error> {
        Ok(self
            .lock()
            .versions
            .iter()
            .map(|(v, (p, _))| (*v, *p))
            .collect())
    }
    fn changeset(&self, version: u64) -> Result<Option<ChangeSet>, Error> {
        Ok(self.lock().versions.get(&version).map(|(_, c)| c.clone()))
    }
}
