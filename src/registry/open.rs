//! Building a registry from the typed configuration (`registry.*`, `finder.*`), and the
//! library side of `wippy registry versions` / `wippy registry rollback <version>`.

use std::path::Path;
use std::sync::Arc;

use wippy_rt::Error;

use super::deps::DepResolver;
use super::history::{History, MemoryHistory, NoHistory, SqliteHistory};
use super::instance::{Registry, RegistryOptions, Version};
use super::transition::DEFAULT_INTERNAL_KINDS;
use crate::config::{Config, HistoryType};

/// Open the configured history backend; a relative `history_path` is resolved against
/// `project_dir`.
pub fn open_history(cfg: &Config, project_dir: &Path) -> Result<Box<dyn History>, Error> {
    Ok(match cfg.registry.history_type {
        HistoryType::Memory => Box::new(MemoryHistory::new()),
        HistoryType::None => Box::new(NoHistory),
        HistoryType::Sqlite => {
            let p = &cfg.registry.history_path;
            let p = if p.is_absolute() {
                p.clone()
            } else {
                project_dir.join(p)
            };
            Box::new(SqliteHistory::open(p)?)
        }
    })
}

/// A registry configured from `cfg` (history opened, timeouts and caches set). The state is
/// empty until [`Registry::load_state`].
pub fn open_registry(cfg: &Config, project_dir: &Path) -> Result<Registry, Error> {
    Registry::new(RegistryOptions {
        history: open_history(cfg, project_dir)?,
        event_wait_timeout: cfg.registry.event_wait_timeout,
        internal_kinds: cfg
            .registry
            .dispatch_internal_kinds
            .clone()
            .unwrap_or_else(|| {
                DEFAULT_INTERNAL_KINDS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }),
        query_cache_size: cfg.finder.query_cache_size,
        regex_cache_size: cfg.finder.regex_cache_size,
        resolver: Arc::new(DepResolver::with_core_patterns()),
    })
}

/// One row of `wippy registry versions`.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionRow {
    /// The version.
    pub version: Version,
    /// Number of operations in its changeset.
    pub ops: usize,
    /// True for the head.
    pub current: bool,
}

/// List versions straight from a history backend (no registry or handlers needed).
pub fn list_versions(history: &dyn History) -> Result<Vec<VersionRow>, Error> {
    let head = history.head()?;
    history
        .versions()?
        .into_iter()
        .map(|(id, parent)| {
            let ops = history.changeset(id)?.map_or(0, |c| c.len());
            Ok(VersionRow {
                version: Version { id, parent },
                ops,
                current: id == head,
            })
        })
        .collect()
}

/// `wippy registry rollback <version>` without a running runtime: move the history head.
/// The next boot replays the root → head path, so the project comes up at that version.
pub fn rollback_offline(history: &dyn History, version: u64) -> Result<(), Error> {
    if !history.is_enabled() {
        return Err(Error::unavailable("registry history is disabled"));
    }
    history.set_head(version)
}
