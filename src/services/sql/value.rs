//! Values crossing the SQL boundary: bound parameters, result cells, result sets, and the
//! mapping of SQLite errors to structured errors (spec `lua-api.md` §3.8.14).
//!
//! # Result mapping (as the original's go-sqlite3 driver)
//!
//! * INTEGER → integer, REAL → float, TEXT → string, BLOB → string (bytes), NULL → absent;
//! * a column **declared** `BOOLEAN`/`BOOL` holding an integer → boolean;
//! * a column declared `DATE`, `DATETIME` or `TIMESTAMP` holding text in one of SQLite's
//!   timestamp layouts (`YYYY-MM-DD[ T]HH:MM[:SS[.fff]][Z|±HH:MM]`, or a bare date) →
//!   RFC 3339 string in UTC without fractional seconds (`2024-01-02T03:04:05Z`); text that does
//!   not parse is returned unchanged.
//!
//! # Errors
//!
//! SQLite result codes map to kinds: `SQLITE_ERROR` (syntax, unknown table/column),
//! `MISMATCH`, `RANGE`, `TOOBIG` and API misuse → `Invalid`; `CONSTRAINT` → `Conflict`;
//! `BUSY`/`LOCKED` → `Unavailable` (retryable); `READONLY` and `PERM` → `PermissionDenied`;
//! anything else → `Internal`. The primary and extended codes are kept as the details
//! `sqlite_code` / `sqlite_extended_code`, the message is SQLite's own
//! (`docs/decisions/0090-sql-connection-thread.md`).

use crate::civil::{civil_from_days, days_from_civil, days_in_month};
use rusqlite::types::{ToSqlOutput, ValueRef};
use wippy_rt::{Error, Kind};

/// A bound parameter or a result cell.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    /// NULL.
    Null,
    /// Boolean (results of BOOLEAN columns; bound as 1/0).
    Bool(bool),
    /// 64-bit integer.
    Int(i64),
    /// Float.
    Real(f64),
    /// Text (bytes; usually UTF-8).
    Text(Vec<u8>),
    /// Blob.
    Blob(Vec<u8>),
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            SqlValue::Null => ValueRef::Null,
            SqlValue::Bool(b) => ValueRef::Integer(i64::from(*b)),
            SqlValue::Int(i) => ValueRef::Integer(*i),
            SqlValue::Real(f) => ValueRef::Real(*f),
            SqlValue::Text(t) => ValueRef::Text(t),
            SqlValue::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// How a result column's cells are interpreted (from its declared type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColKind {
    /// As stored.
    Plain,
    /// Declared BOOLEAN/BOOL: integers become booleans.
    Bool,
    /// Declared DATE/DATETIME/TIMESTAMP: timestamp text becomes RFC 3339 UTC.
    Time,
}

impl ColKind {
    /// The kind for a declared column type.
    pub fn from_decl(decl: Option<&str>) -> ColKind {
        let Some(d) = decl else {
            return ColKind::Plain;
        };
        let d = d.trim();
        if d.eq_ignore_ascii_case("boolean") || d.eq_ignore_ascii_case("bool") {
            ColKind::Bool
        } else if d.eq_ignore_ascii_case("date")
            || d.eq_ignore_ascii_case("datetime")
            || d.eq_ignore_ascii_case("timestamp")
        {
            ColKind::Time
        } else {
            ColKind::Plain
        }
    }

    /// Convert one stored cell.
    pub fn cell(self, v: ValueRef<'_>) -> SqlValue {
        match (self, v) {
            (_, ValueRef::Null) => SqlValue::Null,
            (ColKind::Bool, ValueRef::Integer(i)) => SqlValue::Bool(i != 0),
            (ColKind::Time, ValueRef::Text(t)) => {
                match std::str::from_utf8(t).ok().and_then(parse_timestamp) {
                    Some(s) => SqlValue::Text(s.into_bytes()),
                    None => SqlValue::Text(t.to_vec()),
                }
            }
            (_, ValueRef::Integer(i)) => SqlValue::Int(i),
            (_, ValueRef::Real(f)) => SqlValue::Real(f),
            (_, ValueRef::Text(t)) => SqlValue::Text(t.to_vec()),
            (_, ValueRef::Blob(b)) => SqlValue::Blob(b.to_vec()),
        }
    }
}

/// A result set: column names and the cells row by row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    /// Column names in select order.
    pub columns: Vec<String>,
    /// Cells, row-major (`columns.len()` per row).
    pub cells: Vec<SqlValue>,
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        if self.columns.is_empty() {
            0
        } else {
            self.cells.len() / self.columns.len()
        }
    }
    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The cells of row `i`.
    pub fn row(&self, i: usize) -> &[SqlValue] {
        let n = self.columns.len();
        &self.cells[i * n..(i + 1) * n]
    }
}

/// The result of a statement that does not return rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecResult {
    /// `sqlite3_last_insert_rowid` after the statement.
    pub last_insert_id: i64,
    /// `sqlite3_changes` after the statement.
    pub rows_affected: i64,
}

fn kind_of(code: rusqlite::ErrorCode) -> Kind {
    use rusqlite::ErrorCode as C;
    match code {
        C::Unknown => Kind::INVALID,
        C::ConstraintViolation => Kind::CONFLICT,
        C::DatabaseBusy | C::DatabaseLocked => Kind::UNAVAILABLE,
        C::ReadOnly | C::PermissionDenied | C::AuthorizationForStatementDenied => {
            Kind::PERMISSION_DENIED
        }
        C::TypeMismatch | C::ParameterOutOfRange | C::TooBig | C::ApiMisuse => Kind::INVALID,
        _ => Kind::INTERNAL,
    }
}

fn failure(f: rusqlite::ffi::Error, msg: String) -> Error {
    use rusqlite::ErrorCode as C;
    let retryable = matches!(f.code, C::DatabaseBusy | C::DatabaseLocked);
    Error::new(kind_of(f.code), msg)
        .with_retryable(Some(retryable))
        .with_detail("sqlite_code", i64::from(f.extended_code & 0xff))
        .with_detail("sqlite_extended_code", i64::from(f.extended_code))
}

/// Convert a SQLite error (`op` names the operation, kept as the error's context).
#[cold]
pub fn sql_error(e: rusqlite::Error, op: &str) -> Error {
    let err = match e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            let text = msg.unwrap_or_else(|| f.to_string());
            failure(f, text)
        }
        rusqlite::Error::SqlInputError { error, msg, .. } => failure(error, msg),
        rusqlite::Error::InvalidParameterCount(got, want) => {
            Error::invalid(format!("sql: expected {want} arguments, got {got}"))
                .with_retryable(Some(false))
        }
        rusqlite::Error::Utf8Error(..) | rusqlite::Error::NulError(..) => {
            Error::invalid(e.to_string()).with_retryable(Some(false))
        }
        rusqlite::Error::MultipleStatement => {
            Error::invalid("multiple statements are not allowed here").with_retryable(Some(false))
        }
        other => Error::internal(other.to_string()),
    };
    err.with_context(op)
}

/// Parse a timestamp in one of SQLite's layouts (see the module docs) into RFC 3339 UTC.
pub fn parse_timestamp(s: &str) -> Option<String> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = b.get(r)?;
        if t.is_empty() || !t.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(t).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (mut h, mut mi, mut sec, mut off) = (0, 0, 0, 0i64);
    let mut i = 10;
    if i < b.len() {
        if b[i] != b' ' && b[i] != b'T' {
            return None;
        }
        if b.len() < i + 6 || b[i + 3] != b':' {
            return None;
        }
        h = num(i + 1..i + 3)?;
        mi = num(i + 4..i + 6)?;
        i += 6;
        if i < b.len() && b[i] == b':' {
            sec = num(i + 1..i + 3)?;
            i += 3;
            if i < b.len() && b[i] == b'.' {
                i += 1;
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i == start {
                    return None;
                }
            }
        }
        if i < b.len() {
            match b[i] {
                b'Z' if i + 1 == b.len() => {}
                b'+' | b'-' if b.len() == i + 6 && b[i + 3] == b':' => {
                    let sign = if b[i] == b'-' { -1 } else { 1 };
                    off = sign * (num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60);
                }
                _ => return None,
            }
        }
    }
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let t = days * 86400 + h * 3600 + mi * 60 + sec - off;
    let (dd, rem) = (t.div_euclid(86400), t.rem_euclid(86400));
    let (y, mo, d) = civil_from_days(dd);
    Some(format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_rfc3339_utc() {
        let p = |s| parse_timestamp(s);
        assert_eq!(
            p("2024-01-02 03:04:05").as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            p("2024-01-02T03:04:05Z").as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            p("2024-01-02 03:04:05.123456").as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            p("2024-01-02 03:04").as_deref(),
            Some("2024-01-02T03:04:00Z")
        );
        assert_eq!(p("2024-01-02").as_deref(), Some("2024-01-02T00:00:00Z"));
        assert_eq!(
            p("2024-01-02 01:00:00+02:00").as_deref(),
            Some("2024-01-01T23:00:00Z")
        );
        assert_eq!(
            p("2024-12-31 23:30:00-01:00").as_deref(),
            Some("2025-01-01T00:30:00Z")
        );
        assert_eq!(p("2024-02-30"), None);
        assert_eq!(p("yesterday"), None);
        assert_eq!(p("2024-01-02x"), None);
    }

    #[test]
    fn declared_types_pick_the_conversion() {
        assert_eq!(ColKind::from_decl(Some("BOOLEAN")), ColKind::Bool);
        assert_eq!(ColKind::from_decl(Some("datetime")), ColKind::Time);
        assert_eq!(ColKind::from_decl(Some("INTEGER")), ColKind::Plain);
        assert_eq!(ColKind::from_decl(None), ColKind::Plain);
        assert_eq!(
            ColKind::Bool.cell(ValueRef::Integer(0)),
            SqlValue::Bool(false)
        );
        assert_eq!(
            ColKind::Bool.cell(ValueRef::Text(b"x")),
            SqlValue::Text(b"x".to_vec())
        );
        assert_eq!(
            ColKind::Time.cell(ValueRef::Text(b"2024-01-02 03:04:05")),
            SqlValue::Text(b"2024-01-02T03:04:05Z".to_vec())
        );
    }
}
