//! SQLite history backend (spec §9.8 schema, version 1).
//!
//! ```sql
//! metadata(key TEXT PRIMARY KEY, value TEXT NOT NULL)        -- schema_version, head
//! versions(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES versions(id))
//! changesets(version_id INTEGER PRIMARY KEY REFERENCES versions(id) ON DELETE CASCADE,
//!            data BLOB NOT NULL)                              -- MessagePack op list
//! ```
//!
//! Durability argument: the database runs in WAL mode with `synchronous=FULL`. [`save`]
//! writes the version row, its changeset and the new head inside **one** SQLite transaction,
//! so a process killed at any instant leaves either the whole version (it was committed: the
//! WAL frame with the commit marker is on disk) or none of it (an uncommitted WAL tail is
//! ignored on the next open). The registry swaps its in-memory state only after `save`
//! returned, and replays from the head at boot, so a version is never half-applied.
//!
//! The changeset blob is a MessagePack array of
//! `{Kind, Entry: {ID: {ns, name}, Kind, Meta, Data: {Format, Data}}, OriginalEntry?}` maps
//! (named fields, the original's layout; `Format` is `"wippy/value"`). Strings that are not
//! valid UTF-8 are stored lossily.
//!
//! [`save`]: SqliteHistory::save

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use wippy_rt::{Error, Value};

use super::History;
use crate::registry::changeset::{ChangeSet, OpKind, Operation};
use crate::registry::entry::{Entry, Id};

/// The schema version this code writes and understands.
pub const SCHEMA_VERSION: u32 = 1;

/// Tag stored in `Data.Format`.
const DATA_FORMAT: &str = "wippy/value";

/// A history stored in a SQLite file.
pub struct SqliteHistory {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteHistory")
            .field("path", &self.path)
            .finish()
    }
}

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::internal(format!("registry history {}: {e}", path.display()))
}

impl SqliteHistory {
    /// Open (creating directories and the file when missing) and migrate.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteHistory, Error> {
        let path = std::path::absolute(path.as_ref()).map_err(Error::from)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::from(e).wrap(format!("cannot create {}", dir.display())))?;
        }
        let conn = Connection::open(&path).map_err(|e| db_err(&path, e))?;
        let e = |err| db_err(&path, err);
        conn.busy_timeout(std::time::Duration::from_millis(5000))
            .map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(e)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS versions (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES versions(id));
             CREATE INDEX IF NOT EXISTS idx_versions_parent ON versions(parent_id);
             CREATE TABLE IF NOT EXISTS changesets (
                 version_id INTEGER PRIMARY KEY REFERENCES versions(id) ON DELETE CASCADE,
                 data BLOB NOT NULL);",
        )
        .map_err(e)?;
        let schema: Option<String> = conn
            .query_row(
                "SELECT value FROM metadata WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?;
        match schema.as_deref().map(str::parse::<u32>) {
            None => {}
            Some(Ok(v)) if v <= SCHEMA_VERSION => {}
            Some(Ok(v)) => {
                return Err(Error::invalid(format!(
                    "registry history {}: schema version {v} is newer than supported {SCHEMA_VERSION}",
                    path.display()
                )));
            }
            Some(Err(_)) => {
                return Err(Error::invalid(format!(
                    "registry history {}: corrupt schema_version",
                    path.display()
                )));
            }
        }
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE;
             INSERT OR REPLACE INTO metadata(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
             INSERT OR IGNORE INTO versions(id, parent_id) VALUES (0, NULL);
             INSERT OR IGNORE INTO changesets(version_id, data) VALUES (0, x'90');
             INSERT OR IGNORE INTO metadata(key, value) VALUES ('head', '0');
             COMMIT;"
        ))
        .map_err(e)?;
        Ok(SqliteHistory {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl History for SqliteHistory {
    fn save(&self, version: u64, parent: u64, changes: &ChangeSet) -> Result<(), Error> {
        let blob = encode(changes)?;
        let mut conn = self.lock();
        let e = |err| db_err(&self.path, err);
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        tx.execute(
            "INSERT OR REPLACE INTO versions(id, parent_id) VALUES (?1, ?2)",
            params![version as i64, parent as i64],
        )
        .map_err(e)?;
        tx.execute(
            "INSERT OR REPLACE INTO changesets(version_id, data) VALUES (?1, ?2)",
            params![version as i64, blob],
        )
        .map_err(e)?;
        tx.execute(
            "INSERT OR REPLACE INTO metadata(key, value) VALUES ('head', ?1)",
            params![version.to_string()],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    fn set_head(&self, version: u64) -> Result<(), Error> {
        let conn = self.lock();
        let e = |err| db_err(&self.path, err);
        let known: bool = conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM versions WHERE id = ?1)",
                [version as i64],
                |r| r.get(0),
            )
            .map_err(e)?;
        if !known {
            return Err(Error::not_found(format!("version not found: {version}")));
        }
        conn.execute(
            "INSERT OR REPLACE INTO metadata(key, value) VALUES ('head', ?1)",
            [version.to_string()],
        )
        .map_err(e)?;
        Ok(())
    }

    fn head(&self) -> Result<u64, Error> {
        let conn = self.lock();
        let v: Option<String> = conn
            .query_row("SELECT value FROM metadata WHERE key = 'head'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| db_err(&self.path, e))?;
        match v {
            None => Ok(0),
            Some(s) => s.parse().map_err(|_| {
                Error::invalid(format!(
                    "registry history {}: corrupt head {s:?}",
                    self.path.display()
                ))
            }),
        }
    }

    fn versions(&self) -> Result<Vec<(u64, Option<u64>)>, Error> {
        let conn = self.lock();
        let e = |err| db_err(&self.path, err);
        let mut stmt = conn
            .prepare("SELECT id, parent_id FROM versions ORDER BY id")
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, Option<i64>>(1)?.map(|p| p as u64),
                ))
            })
            .map_err(e)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(e)
    }

    fn changeset(&self, version: u64) -> Result<Option<ChangeSet>, Error> {
        let conn = self.lock();
        let blob: Option<Vec<u8>> = conn
            .query_row(
                "SELECT data FROM changesets WHERE version_id = ?1",
                [version as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_err(&self.path, e))?;
        drop(conn);
        blob.map(|b| {
            decode(&b).map_err(|e| {
                e.wrap(format!(
                    "registry history {} version {version}",
                    self.path.display()
                ))
            })
        })
        .transpose()
    }
}

// ===== wire format =====

#[derive(Serialize, Deserialize)]
struct WireId {
    ns: String,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct WireData {
    #[serde(rename = "Format")]
    format: String,
    #[serde(rename = "Data", default)]
    data: Value,
}

#[derive(Serialize, Deserialize)]
struct WireEntry {
    #[serde(rename = "ID")]
    id: WireId,
    #[serde(rename = "Kind", default)]
    kind: String,
    #[serde(rename = "Meta", default)]
    meta: Value,
    #[serde(rename = "Data", default)]
    data: Option<WireData>,
}

#[derive(Serialize, Deserialize)]
struct WireOp {
    #[serde(rename = "Kind")]
    kind: OpKind,
    #[serde(rename = "Entry")]
    entry: WireEntry,
    #[serde(
        rename = "OriginalEntry",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    original: Option<WireEntry>,
}

fn to_wire(e: &Entry) -> WireEntry {
    WireEntry {
        id: WireId {
            ns: e.id.ns().into(),
            name: e.id.name().into(),
        },
        kind: e.kind.clone(),
        meta: e.meta.clone(),
        data: Some(WireData {
            format: DATA_FORMAT.into(),
            data: e.data.clone(),
        }),
    }
}

fn from_wire(w: WireEntry) -> Entry {
    Entry {
        id: Id::new(&w.id.ns, &w.id.name),
        kind: w.kind,
        meta: w.meta,
        data: w.data.map(|d| d.data).unwrap_or(Value::Nil),
    }
}

/// Encode a changeset as the history blob.
pub fn encode(cs: &ChangeSet) -> Result<Vec<u8>, Error> {
    let wire: Vec<WireOp> = cs
        .ops
        .iter()
        .map(|op| WireOp {
            kind: op.kind,
            entry: to_wire(&op.entry),
            original: op.original.as_deref().map(to_wire),
        })
        .collect();
    rmp_serde::to_vec_named(&wire).map_err(|e| Error::internal(format!("encode changeset: {e}")))
}

/// Decode a history blob.
pub fn decode(blob: &[u8]) -> Result<ChangeSet, Error> {
    let wire: Vec<WireOp> = rmp_serde::from_slice(blob)
        .map_err(|e| Error::invalid(format!("decode changeset: {e}")))?;
    Ok(ChangeSet {
        ops: wire
            .into_iter()
            .map(|w| Operation {
                kind: w.kind,
                entry: Arc::new(from_wire(w.entry)),
                original: w.original.map(|o| Arc::new(from_wire(o))),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trip() {
        let a = Entry::new("n:a", "k")
            .with_meta("x", 1)
            .with_data(Value::Array(vec![Value::str("s"), Value::Float(1.5)]));
        let b = Entry::new("n:a", "k");
        let cs = ChangeSet::from(vec![Operation::update(a).with_original(Some(Arc::new(b)))]);
        assert_eq!(decode(&encode(&cs).unwrap()).unwrap(), cs);
        assert_eq!(decode(&[0x90]).unwrap(), ChangeSet::new());
    }
}
