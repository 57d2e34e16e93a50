//! SQL databases (`db.sql.*` entries, spec `lua-api.md` §2.9) and the plumbing shared by all
//! data services.
//!
//! | file | what |
//! |---|---|
//! | [`config`] | entry configuration |
//! | [`conn`] | [`Database`]: the connection thread, transactions, requests |
//! | [`value`] | parameters, result cells, SQLite error mapping |
//! | [`builder`] | the query builder behind `sql.builder` |
//! | [`component`] | shared: the `services.data` boot component |
//! | [`job`] | shared: suspending a Lua task on work done elsewhere |
//! | [`owners`] | shared: resources released when their process exits |
//! | [`supervise`] | shared: registering a kind's services with the supervisor |
//!
//! The Lua side is `crate::lua::engine::modules::sql`.
//!
//! # Kind manager
//!
//! [`install`] registers a listener for `db.sql.*`: **create** parses the entry
//! ([`config::DbConfig`]) and registers a [`Database`] as a supervised service (its
//! `lifecycle` decides `auto_start`); **update** replaces the database when its configuration
//! changed (the old connection thread is stopped, rolling back an open transaction) and keeps
//! it otherwise; **delete** stops and forgets it. A database that was never started opens on
//! first use (`sql.get` works without `auto_start`); one stopped by its service refuses work
//! until started again. Component stop closes every database.

pub mod builder;
pub mod component;
pub mod config;
pub mod conn;
pub mod job;
pub mod owners;
pub mod supervise;
pub mod value;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use wippy_rt::app_context::Key;
use wippy_rt::{Error, Kind};

pub use conn::{Database, Done, Op, Outcome, Request};
pub use value::{ExecResult, Rows, SqlValue};

use crate::registry::{EntryEvent, HandlerId, OpKind};
use crate::system::System;
use crate::system::components::supervision::{Service, ServiceCtx};
use config::DbConfig;

/// Kind pattern this manager listens to.
pub const KINDS: &str = "db.sql.*";
const NAME: &str = "services.sql";

/// App-context slot of the [`SqlManager`].
pub static SQL: Key<SqlManager> = Key::new("data.sql");

/// A database as a supervised service.
struct DbService(Arc<Database>);

impl Service for DbService {
    fn start(&self, _ctx: ServiceCtx) -> Result<(), Error> {
        self.0.start(true)?;
        log::info!(target: "wippy::sql", "database {} open", self.0.id);
        Ok(())
    }
    fn stop(&self, deadline: Instant) -> Result<(), Error> {
        self.0.stop(deadline);
        Ok(())
    }
}

/// The `db.sql.*` kind manager.
pub struct SqlManager {
    base: PathBuf,
    dbs: RwLock<HashMap<String, Arc<Database>>>,
    regs: Mutex<Vec<HandlerId>>,
}

impl std::fmt::Debug for SqlManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlManager")
            .field("dbs", &self.ids())
            .finish()
    }
}

/// Install the manager (load phase): registers the kind listener, the SQL job command and the
/// process-exit hook of [`owners`]. Relative SQLite paths resolve against `base`.
///
/// # Errors
/// A listener named `services.sql` exists already.
pub fn install(sys: &Arc<System>, base: &Path) -> Result<Arc<SqlManager>, Error> {
    if let Some(m) = sys.handle.app_context().get(&SQL) {
        return Ok(m);
    }
    job::register(&sys.handle, job::SQL, "sql");
    owners::install(&sys.handle);
    let m = Arc::new(SqlManager {
        base: base.to_path_buf(),
        dbs: RwLock::new(HashMap::new()),
        regs: Mutex::new(Vec::new()),
    });
    sys.handle.app_context().set_arc(&SQL, m.clone());
    let l = m.clone();
    let sys2 = sys.clone();
    let id = sys
        .registry
        .handlers()
        .add_listener_fn(KINDS, NAME, move |ev| l.on_entry(&sys2, ev));
    m.regs.lock().unwrap_or_else(|p| p.into_inner()).push(id);
    Ok(m)
}

/// The manager of `sys`, if installed.
pub fn manager(sys: &System) -> Option<Arc<SqlManager>> {
    sys.handle.app_context().get(&SQL)
}

impl SqlManager {
    /// The database of entry `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Database>> {
        self.dbs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Managed entry ids (sorted).
    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .dbs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    fn on_entry(&self, sys: &Arc<System>, ev: &EntryEvent) -> Result<(), Error> {
        let id = ev.entry.id.to_string();
        let kind = ev.entry.kind.as_str();
        match ev.op {
            OpKind::Create | OpKind::Update => {
                if config::Engine::of_kind(kind).is_none() {
                    return Err(
                        Error::invalid(format!("{id}: unsupported entry kind: {kind}"))
                            .with_retryable(Some(false)),
                    );
                }
                let cfg = DbConfig::parse(&id, kind, &ev.entry.data, &self.base)?;
                let lifecycle = cfg.lifecycle.clone();
                let old = self.get(&id);
                let db = match &old {
                    Some(db) if db.config == cfg => db.clone(),
                    _ => Arc::new(Database::new(&id, cfg)),
                };
                supervise::register(sys, ev, &id, Arc::new(DbService(db.clone())), lifecycle)?;
                if let Some(old) = old
                    && !Arc::ptr_eq(&old, &db)
                {
                    retire(old);
                }
                self.dbs
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, db);
                Ok(())
            }
            OpKind::Delete => {
                let old = self
                    .dbs
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                if let Some(old) = old {
                    supervise::remove(sys, ev, &id)?;
                    retire(old);
                }
                Ok(())
            }
        }
    }

    /// Unregister from the registry and close every database (component stop).
    pub fn shutdown(&self, registry: &crate::registry::Registry, deadline: Instant) {
        for id in self
            .regs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            registry.handlers().remove(id);
        }
        let dbs: Vec<Arc<Database>> = self
            .dbs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for db in dbs {
            db.stop(deadline);
        }
    }
}

/// How long a replaced or deleted database may take to finish its current request.
const RETIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Stop a replaced or deleted database off the registry's thread.
fn retire(db: Arc<Database>) {
    let _ = std::thread::Builder::new()
        .name(format!("sql-retire:{}", db.id))
        .spawn(move || db.stop(Instant::now() + RETIRE_TIMEOUT));
}

/// The error for an unknown database id (`sql.get`).
#[cold]
pub fn not_found(id: &str) -> Error {
    Error::new(Kind::NOT_FOUND, format!("database not found: {id}"))
        .with_retryable(Some(false))
        .with_detail("id", id)
}
