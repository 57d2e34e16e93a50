//! Entry configuration of the `db.sql.*` kinds (spec `lua-api.md` §2.9).
//!
//! ```yaml
//! - name: main
//!   kind: db.sql.sqlite
//!   file: ./data/app.db        # or ":memory:"
//!   pool: {max_lifetime: 1h}   # accepted; the single connection is never recycled
//!   options: {}                # accepted, ignored (as upstream)
//!   lifecycle: {auto_start: true}
//! ```
//!
//! `db.sql.postgres` / `db.sql.mysql` entries are parsed for their lifecycle only: this build
//! has no network database drivers, so such a database reports `Unavailable` when started or
//! used (the entry itself loads, so a project declaring one still boots unless the database is
//! a required `auto_start` service).

use std::path::{Path, PathBuf};

use wippy_rt::{Error, Value};

use crate::system::components::supervision::LifecycleConfig;

/// The database engines the `sql` module knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `db.sql.sqlite`.
    Sqlite,
    /// `db.sql.postgres`.
    Postgres,
    /// `db.sql.mysql`.
    Mysql,
}

impl Engine {
    /// The engine of an entry kind.
    pub fn of_kind(kind: &str) -> Option<Engine> {
        match kind {
            "db.sql.sqlite" => Some(Engine::Sqlite),
            "db.sql.postgres" => Some(Engine::Postgres),
            "db.sql.mysql" => Some(Engine::Mysql),
            _ => None,
        }
    }

    /// The `sql.type` constant (`db:type()`).
    pub fn type_name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }
}

/// Where a SQLite database lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `:memory:` — one in-memory database shared by every user of the entry.
    Memory,
    /// A file (absolute after resolution).
    File(PathBuf),
}

/// A parsed `db.sql.*` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DbConfig {
    /// Engine.
    pub engine: Engine,
    /// SQLite location (SQLite only).
    pub location: Location,
    /// Lifecycle block.
    pub lifecycle: LifecycleConfig,
}

fn bad(id: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{id}: invalid configuration: {msg}")).with_retryable(Some(false))
}

impl DbConfig {
    /// Parse entry `id` of `kind` with `data`; relative SQLite paths are resolved against
    /// `base` (the project directory, which is the working directory of `wippy run`).
    ///
    /// # Errors
    /// `Invalid` naming the entry and the field.
    pub fn parse(id: &str, kind: &str, data: &Value, base: &Path) -> Result<DbConfig, Error> {
        let engine = Engine::of_kind(kind)
            .ok_or_else(|| bad(id, format!("unsupported entry kind: {kind}")))?;
        let ns = id.split_once(':').map(|(n, _)| n).unwrap_or("");
        let lifecycle = LifecycleConfig::parse(data.get("lifecycle").unwrap_or(&Value::Nil), ns)
            .map_err(|e| bad(id, e))?;
        if let Some(p) = data.get("pool")
            && !matches!(p, Value::Nil | Value::Map(_))
            && !matches!(p, Value::Array(a) if a.is_empty())
        {
            return Err(bad(
                id,
                format!("pool must be a mapping, got {}", p.type_name()),
            ));
        }
        let location = match engine {
            Engine::Sqlite => {
                let file = match data.get("file") {
                    None | Some(Value::Nil) => return Err(bad(id, "file is required")),
                    Some(v) => v.as_str().ok_or_else(|| {
                        bad(id, format!("file must be a string, got {}", v.type_name()))
                    })?,
                };
                let file = file.trim();
                if file.is_empty() {
                    return Err(bad(id, "file is required"));
                }
                if file == ":memory:" {
                    Location::Memory
                } else {
                    let p = Path::new(file.strip_prefix("file:").unwrap_or(file));
                    Location::File(if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        base.join(p)
                    })
                }
            }
            Engine::Postgres | Engine::Mysql => Location::Memory,
        };
        Ok(DbConfig {
            engine,
            location,
            lifecycle,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn sqlite_paths_resolve_against_the_project() {
        let c = DbConfig::parse(
            "app:db",
            "db.sql.sqlite",
            &yaml("{file: data/x.db}"),
            Path::new("/p"),
        )
        .unwrap();
        assert_eq!(c.location, Location::File("/p/data/x.db".into()));
        let m = DbConfig::parse(
            "app:db",
            "db.sql.sqlite",
            &yaml("{file: ':memory:'}"),
            Path::new("/p"),
        )
        .unwrap();
        assert_eq!(m.location, Location::Memory);
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        let e = |s: &str| {
            DbConfig::parse("app:db", "db.sql.sqlite", &yaml(s), Path::new("/"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(e("{}"), "app:db: invalid configuration: file is required");
        assert_eq!(
            e("{file: 3}"),
            "app:db: invalid configuration: file must be a string, got number"
        );
        assert!(e("{file: a.db, lifecycle: 3}").contains("lifecycle"));
    }
}
