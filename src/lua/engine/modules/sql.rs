//! `sql` (spec `lua-api.md` §3.8.14): databases from Lua.
//!
//! * `sql.get(id)` → DB, nil / nil, err (`Invalid` "resource id is required", `NotFound`
//!   "database not found: <id>"); a non-string id raises.
//! * DB: `:type()`, `:query(sql[, params])` → rows, `:execute(sql[, params])` →
//!   `{last_insert_id, rows_affected}`, `:prepare(sql)` → Statement, `:begin([{isolation,
//!   read_only}])` → Transaction, `:release()` → true, `:stats()` → pool counters.
//! * Transaction: `:db_type()`, `:query`, `:execute`, `:prepare`, `:commit()`, `:rollback()`,
//!   `:savepoint(name)`, `:rollback_to(name)`, `:release(name)`; after commit/rollback every
//!   method returns `nil, Invalid "transaction is not active"`.
//! * Statement: `:query([params])`, `:execute([params])`, `:close()`.
//! * `sql.NULL`, `sql.as.{int,float,text,binary,null}`, `sql.type.*`, `sql.isolation.*`,
//!   `sql.builder` ([`builder`]).
//!
//! Parameters are **one array table** (`db:query("… ?", {id})`); a `nil` inside it binds NULL
//! up to the table's largest integer key; a non-table → `nil, Invalid "parameters must be a
//! table, got <type>"`. Every database operation suspends the task and runs on the database's
//! connection thread (`crate::services::sql::conn`); the task resumes with the converted
//! result. Row tables are keyed by column name and NULL columns are absent.
//!
//! Handles, statements and transactions are recorded as owned by the calling process
//! ([`crate::services::sql::owners`]): when it exits, an uncommitted transaction is rolled
//! back. As upstream, `db:release()` only marks the handle; it keeps working afterwards.

pub mod builder;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mlua::{
    AnyUserData, Lua, MetaMethod, MultiValue, Table, UserData, UserDataMethods, Value as LuaValue,
};
use wippy_rt::{Error, Kind, Pid, Value};

use super::super::core::{Conv, Op as EngineOp, with_core};
use super::super::rawfn;
use super::super::yields::{self, ret1, ret2};
use crate::lua::modules::errors::{error_value, nil_err, nil_error};
use crate::lua::vm::raise;
use crate::services::sql::job::{self, Job};
use crate::services::sql::owners::{self, Owned};
use crate::services::sql::{self as sqlsvc, Database, Done, Op, Outcome, Request, SqlValue};

/// The `sql.NULL` marker (also `sql.as.null()`).
pub(crate) struct SqlNull;
impl UserData for SqlNull {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, _, ()| Ok("sql.NULL"));
    }
}

/// A value with an explicit SQL type (`sql.as.*`).
pub(crate) struct SqlTyped(pub SqlValue);
impl UserData for SqlTyped {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, t, ()| {
            Ok(match &t.0 {
                SqlValue::Int(_) => "sql.as.int",
                SqlValue::Real(_) => "sql.as.float",
                SqlValue::Text(_) => "sql.as.text",
                SqlValue::Blob(_) => "sql.as.binary",
                _ => "sql.as",
            })
        });
    }
}

/// Lua's `type()` name of a value (`number` for integers and floats alike).
pub(crate) fn lua_type(v: &LuaValue) -> &'static str {
    match v {
        LuaValue::Integer(_) | LuaValue::Number(_) => "number",
        other => other.type_name(),
    }
}

/// Convert one Lua value to a bound parameter (`i` is its 1-based position, for errors).
pub(crate) fn param(v: &LuaValue, i: usize) -> Result<SqlValue, Error> {
    Ok(match v {
        LuaValue::Nil => SqlValue::Null,
        LuaValue::Boolean(b) => SqlValue::Bool(*b),
        LuaValue::Integer(n) => SqlValue::Int(*n),
        LuaValue::Number(f) => SqlValue::Real(*f),
        LuaValue::String(s) => SqlValue::Text(s.as_bytes().to_vec()),
        LuaValue::UserData(ud) if ud.is::<SqlNull>() => SqlValue::Null,
        LuaValue::UserData(ud) if ud.is::<SqlTyped>() => ud
            .borrow::<SqlTyped>()
            .map(|t| t.0.clone())
            .map_err(|e| Error::internal(e.to_string()))?,
        other => {
            return Err(Error::invalid(format!(
                "unsupported parameter type at position {i}: {}",
                lua_type(other)
            ))
            .with_retryable(Some(false)));
        }
    })
}

/// The parameter array of a call (`None`/nil = no parameters).
pub(crate) fn params(v: Option<&LuaValue>) -> Result<Vec<SqlValue>, Error> {
    let t = match v {
        None | Some(LuaValue::Nil) => return Ok(Vec::new()),
        Some(LuaValue::Table(t)) => t,
        Some(other) => {
            return Err(Error::invalid(format!(
                "parameters must be a table, got {}",
                lua_type(other)
            ))
            .with_retryable(Some(false)));
        }
    };
    let border = t.raw_len();
    let mut max = border;
    let mut other_keys = false;
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, _) = pair.map_err(|e| Error::internal(e.to_string()))?;
        match k {
            LuaValue::Integer(i) if i >= 1 => max = max.max(i as usize),
            LuaValue::Number(f) if f >= 1.0 && f.fract() == 0.0 => max = max.max(f as usize),
            _ => other_keys = true,
        }
    }
    if max == 0 {
        if other_keys {
            return Err(Error::invalid(
                "only positional parameters (array-like tables) are supported",
            )
            .with_retryable(Some(false)));
        }
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(max);
    for i in 1..=max {
        let v: LuaValue = t.raw_get(i).map_err(|e| Error::internal(e.to_string()))?;
        out.push(param(&v, i)?);
    }
    Ok(out)
}

/// A database handle (`sql.get`).
pub(crate) struct Db {
    pub(crate) db: Arc<Database>,
    record: Arc<Flag>,
}

/// The owned record of a handle or statement: only a released flag.
struct Flag(AtomicBool);
impl Owned for Flag {
    fn release(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn is_released(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The owned record of a transaction: rolled back when released while still open.
pub(crate) struct TxRecord {
    db: Arc<Database>,
    id: u64,
    done: AtomicBool,
}

impl TxRecord {
    /// The transaction ended on the connection (commit, rollback, failed begin).
    fn ended(&self) {
        self.done.store(true, Ordering::SeqCst);
    }
    pub(crate) fn is_active(&self) -> bool {
        !self.done.load(Ordering::SeqCst)
    }
}

impl Owned for TxRecord {
    fn release(&self) {
        if !self.done.swap(true, Ordering::SeqCst) {
            self.db.release_tx(self.id);
        }
    }
    fn is_released(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

/// A transaction.
pub(crate) struct Tx {
    pub(crate) record: Arc<TxRecord>,
}

/// A prepared statement (compiled and cached on the connection; executed by its text).
struct Stmt {
    db: Arc<Database>,
    sql: Arc<str>,
    tx: Option<Arc<TxRecord>>,
    record: Arc<Flag>,
}

/// The calling process and its owner table.
fn caller() -> Result<(Pid, Option<Arc<owners::Owners>>), Error> {
    with_core(|c| (c.pid.clone(), owners::of(&c.handle))).map_err(|e| Error::internal(e.message()))
}

fn own(owners: &Option<Arc<owners::Owners>>, pid: &Pid, r: Arc<dyn Owned>) {
    if let Some(o) = owners {
        o.add(pid, r);
    }
}

/// How a completion becomes Lua values.
type ConvFn = Box<dyn FnOnce(&Lua, Arc<Outcome>) -> mlua::Result<Vec<LuaValue>> + Send>;

/// Suspend the task on `op` against `db` (see the module docs).
fn submit(
    lua: &Lua,
    db: &Arc<Database>,
    tx: Option<u64>,
    op: Op,
    on_err: Option<Box<dyn FnOnce() + Send>>,
    conv: ConvFn,
) -> mlua::Result<MultiValue> {
    let owner = match with_core(|c| c.pid.clone()) {
        Ok(p) => p,
        Err(e) => return yields::core_error(lua, e),
    };
    let db = db.clone();
    let job = Job::new(job::SQL, move |done| {
        db.submit(Request {
            owner,
            tx,
            op,
            done: Done::Task(done),
        })
    });
    let conv = Conv::Custom(Box::new(move |lua: &Lua, r: Result<Value, Error>| match r
        .and_then(job::take::<Outcome>)
    {
        Ok(o) => conv(lua, o),
        Err(e) => {
            if let Some(f) = on_err {
                f();
            }
            Ok(vec![LuaValue::Nil, error_value(lua, e)?])
        }
    }));
    yields::suspend(lua, EngineOp::Command(Box::new(job), conv))
}

/// Rows → array of row tables (NULL columns absent).
pub(crate) fn rows_value(lua: &Lua, o: &Outcome) -> mlua::Result<LuaValue> {
    let Outcome::Rows(rows) = o else {
        return Ok(LuaValue::Table(lua.create_table()?));
    };
    let n = rows.len();
    let out = lua.create_table_with_capacity(n, 0)?;
    let cols: Vec<mlua::LuaString> = rows
        .columns
        .iter()
        .map(|c| lua.create_string(c))
        .collect::<mlua::Result<_>>()?;
    for i in 0..n {
        let r = lua.create_table_with_capacity(0, cols.len())?;
        for (j, cell) in rows.row(i).iter().enumerate() {
            let v = match cell {
                SqlValue::Null => continue,
                SqlValue::Bool(b) => LuaValue::Boolean(*b),
                SqlValue::Int(x) => LuaValue::Integer(*x),
                SqlValue::Real(f) => LuaValue::Number(*f),
                SqlValue::Text(t) | SqlValue::Blob(t) => LuaValue::String(lua.create_string(t)?),
            };
            r.raw_set(cols[j].clone(), v)?;
        }
        out.raw_set(i + 1, r)?;
    }
    Ok(LuaValue::Table(out))
}

/// Exec result → `{last_insert_id, rows_affected}`.
pub(crate) fn exec_value(lua: &Lua, o: &Outcome) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 2)?;
    if let Outcome::Exec(r) = o {
        t.raw_set("last_insert_id", r.last_insert_id)?;
        t.raw_set("rows_affected", r.rows_affected)?;
    }
    Ok(LuaValue::Table(t))
}

fn conv_rows() -> ConvFn {
    Box::new(|lua, o| Ok(vec![rows_value(lua, &o)?, LuaValue::Nil]))
}

fn conv_exec() -> ConvFn {
    Box::new(|lua, o| Ok(vec![exec_value(lua, &o)?, LuaValue::Nil]))
}

fn conv_true() -> ConvFn {
    Box::new(|_, _| Ok(vec![LuaValue::Boolean(true), LuaValue::Nil]))
}

// ---- argument helpers ----

#[cold]
fn bad_self(lua: &Lua, method: &str, what: &str) -> mlua::Result<MultiValue> {
    raise::raise_msg(
        lua,
        format!("bad argument #1 to '{method}' ({what} expected)"),
    )
}

fn str_arg(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    method: &str,
) -> Result<String, mlua::Result<MultiValue>> {
    match args.get(i) {
        Some(LuaValue::String(s)) => Ok(s.to_string_lossy()),
        Some(v @ (LuaValue::Integer(_) | LuaValue::Number(_))) => Ok(lua
            .coerce_string(v.clone())
            .ok()
            .flatten()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default()),
        other => {
            let got = other.map(lua_type).unwrap_or("no value");
            Err(raise::raise_msg(
                lua,
                format!(
                    "bad argument #{} to '{method}' (string expected, got {got})",
                    i + 1
                ),
            ))
        }
    }
}

fn ud_arg<T: 'static, R>(args: &MultiValue, f: impl FnOnce(&T) -> R) -> Option<R> {
    match args.front() {
        Some(LuaValue::UserData(ud)) => ud.borrow::<T>().ok().map(|t| f(&t)),
        _ => None,
    }
}

// ---- DB ----

fn db_query(lua: &Lua, args: MultiValue, exec: bool) -> mlua::Result<MultiValue> {
    let m = if exec { "execute" } else { "query" };
    let Some(db) = ud_arg::<Db, _>(&args, |d| d.db.clone()) else {
        return bad_self(lua, m, "sql.DB");
    };
    let sql = match str_arg(lua, &args, 1, m) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let params = match params(args.get(2)) {
        Ok(p) => p,
        Err(e) => return nil_error(lua, e.with_context("check params")),
    };
    let sql: Arc<str> = Arc::from(sql);
    if exec {
        submit(
            lua,
            &db,
            None,
            Op::Execute { sql, params },
            None,
            conv_exec(),
        )
    } else {
        submit(lua, &db, None, Op::Query { sql, params }, None, conv_rows())
    }
}

fn prepare_on(
    lua: &Lua,
    db: Arc<Database>,
    tx: Option<Arc<TxRecord>>,
    sql: String,
) -> mlua::Result<MultiValue> {
    let (pid, owners) = match caller() {
        Ok(c) => c,
        Err(e) => return nil_error(lua, e),
    };
    let sql: Arc<str> = Arc::from(sql);
    let stmt_sql = sql.clone();
    let db2 = db.clone();
    let tx_id = tx.as_ref().map(|t| t.id);
    let conv: ConvFn = Box::new(move |lua, _| {
        let record = Arc::new(Flag(AtomicBool::new(false)));
        own(&owners, &pid, record.clone());
        let s = lua.create_userdata(Stmt {
            db: db2,
            sql: stmt_sql,
            tx,
            record,
        })?;
        Ok(vec![LuaValue::UserData(s), LuaValue::Nil])
    });
    submit(lua, &db, tx_id, Op::Prepare { sql }, None, conv)
}

fn db_prepare(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let Some(db) = ud_arg::<Db, _>(&args, |d| d.db.clone()) else {
        return bad_self(lua, "prepare", "sql.DB");
    };
    let sql = match str_arg(lua, &args, 1, "prepare") {
        Ok(s) => s,
        Err(r) => return r,
    };
    prepare_on(lua, db, None, sql)
}

const ISOLATIONS: &[&str] = &[
    "default",
    "read_uncommitted",
    "read_committed",
    "write_committed",
    "repeatable_read",
    "serializable",
];

fn db_begin(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let Some(db) = ud_arg::<Db, _>(&args, |d| d.db.clone()) else {
        return bad_self(lua, "begin", "sql.DB");
    };
    let mut read_only = false;
    if let Some(LuaValue::Table(t)) = args.get(1) {
        if let LuaValue::Boolean(b) = t.raw_get::<LuaValue>("read_only")? {
            read_only = b;
        }
        if let LuaValue::String(s) = t.raw_get::<LuaValue>("isolation")? {
            let s = s.to_string_lossy();
            if !ISOLATIONS.contains(&s.as_str()) {
                return nil_err(lua, Kind::INVALID, format!("invalid isolation level: {s}"));
            }
        }
    }
    let (pid, owners) = match caller() {
        Ok(c) => c,
        Err(e) => return nil_error(lua, e),
    };
    let id = db.next_tx_id();
    let record = Arc::new(TxRecord {
        db: db.clone(),
        id,
        done: AtomicBool::new(false),
    });
    own(&owners, &pid, record.clone());
    let ok_rec = record.clone();
    let err_rec = record.clone();
    let conv: ConvFn = Box::new(move |lua, _| {
        let t = lua.create_userdata(Tx { record: ok_rec })?;
        Ok(vec![LuaValue::UserData(t), LuaValue::Nil])
    });
    submit(
        lua,
        &db,
        None,
        Op::Begin { id, read_only },
        Some(Box::new(move || err_rec.ended())),
        conv,
    )
}

fn db_stats(lua: &Lua, db: &Database) -> mlua::Result<LuaValue> {
    let s = &db.stats;
    let open = i64::from(s.open.load(Ordering::SeqCst));
    let in_use = i64::from(s.in_use.load(Ordering::SeqCst) && open == 1);
    let t = lua.create_table_with_capacity(0, 9)?;
    t.raw_set("max_open_connections", 1)?;
    t.raw_set("open_connections", open)?;
    t.raw_set("in_use", in_use)?;
    t.raw_set("idle", open - in_use)?;
    t.raw_set("wait_count", s.wait_count.load(Ordering::Relaxed) as i64)?;
    t.raw_set(
        "wait_duration",
        crate::config::format_duration(std::time::Duration::from_nanos(
            s.wait_ns.load(Ordering::Relaxed),
        )),
    )?;
    t.raw_set("max_idle_closed", 0)?;
    t.raw_set("max_idle_time_closed", 0)?;
    t.raw_set("max_lifetime_closed", 0)?;
    Ok(LuaValue::Table(t))
}

impl UserData for Db {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, d, ()| {
            Ok(format!("sql.DB{{{}}}", d.db.id))
        });
    }

    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| {
            let t = lua.create_table_with_capacity(0, 7)?;
            t.raw_set(
                "type",
                raise::function(lua, |lua, args| {
                    match ud_arg::<Db, _>(&args, |d| d.db.engine().type_name()) {
                        Some(n) => Ok(ret2(LuaValue::String(lua.create_string(n)?), LuaValue::Nil)),
                        None => bad_self(lua, "type", "sql.DB"),
                    }
                })?,
            )?;
            rawfn::set(lua, &t, "query", crate::lua_fn!(db_query_q))?;
            rawfn::set(lua, &t, "execute", crate::lua_fn!(db_query_x))?;
            rawfn::set(lua, &t, "prepare", crate::lua_fn!(db_prepare))?;
            rawfn::set(lua, &t, "begin", crate::lua_fn!(db_begin))?;
            t.raw_set(
                "release",
                raise::function(lua, |lua, args| {
                    match ud_arg::<Db, _>(&args, |d| d.record.release()) {
                        Some(()) => Ok(ret2(LuaValue::Boolean(true), LuaValue::Nil)),
                        None => bad_self(lua, "release", "sql.DB"),
                    }
                })?,
            )?;
            t.raw_set(
                "stats",
                raise::function(lua, |lua, args| {
                    match ud_arg::<Db, _>(&args, |d| d.db.clone()) {
                        Some(db) => Ok(ret2(db_stats(lua, &db)?, LuaValue::Nil)),
                        None => bad_self(lua, "stats", "sql.DB"),
                    }
                })?,
            )?;
            Ok(t)
        });
    }
}

// ---- Transaction ----

fn tx_of(args: &MultiValue) -> Option<Arc<TxRecord>> {
    ud_arg::<Tx, _>(args, |t| t.record.clone())
}

#[cold]
fn inactive(lua: &Lua) -> mlua::Result<MultiValue> {
    nil_error(
        lua,
        Error::invalid("transaction is not active").with_retryable(Some(false)),
    )
}

fn tx_query(lua: &Lua, args: MultiValue, exec: bool) -> mlua::Result<MultiValue> {
    let m = if exec { "execute" } else { "query" };
    let Some(tx) = tx_of(&args) else {
        return bad_self(lua, m, "sql.Transaction");
    };
    if !tx.is_active() {
        return inactive(lua);
    }
    let sql = match str_arg(lua, &args, 1, m) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let params = match params(args.get(2)) {
        Ok(p) => p,
        Err(e) => return nil_error(lua, e.with_context("check params")),
    };
    let sql: Arc<str> = Arc::from(sql);
    let op = if exec {
        Op::Execute { sql, params }
    } else {
        Op::Query { sql, params }
    };
    submit(
        lua,
        &tx.db,
        Some(tx.id),
        op,
        None,
        if exec { conv_exec() } else { conv_rows() },
    )
}

fn tx_end(lua: &Lua, args: MultiValue, commit: bool) -> mlua::Result<MultiValue> {
    let m = if commit { "commit" } else { "rollback" };
    let Some(tx) = tx_of(&args) else {
        return bad_self(lua, m, "sql.Transaction");
    };
    if !tx.is_active() {
        return inactive(lua);
    }
    let ok = tx.clone();
    let err = tx.clone();
    submit(
        lua,
        &tx.db,
        Some(tx.id),
        if commit { Op::Commit } else { Op::Rollback },
        Some(Box::new(move || err.ended())),
        Box::new(move |_, _| {
            ok.ended();
            Ok(vec![LuaValue::Boolean(true), LuaValue::Nil])
        }),
    )
}

fn valid_savepoint(name: &str) -> bool {
    name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn tx_savepoint(
    lua: &Lua,
    args: MultiValue,
    verb: &'static str,
    m: &str,
) -> mlua::Result<MultiValue> {
    let Some(tx) = tx_of(&args) else {
        return bad_self(lua, m, "sql.Transaction");
    };
    if !tx.is_active() {
        return inactive(lua);
    }
    let name = match str_arg(lua, &args, 1, m) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if name.is_empty() {
        return nil_error(
            lua,
            Error::invalid("savepoint name is required").with_retryable(Some(false)),
        );
    }
    if !valid_savepoint(&name) {
        return nil_error(
            lua,
            Error::invalid(
                "savepoint name can only contain alphanumeric characters and underscores",
            )
            .with_retryable(Some(false)),
        );
    }
    let sql: Arc<str> = Arc::from(format!("{verb} {name}"));
    submit(
        lua,
        &tx.db,
        Some(tx.id),
        Op::Execute {
            sql,
            params: Vec::new(),
        },
        None,
        conv_true(),
    )
}

fn tx_prepare(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let Some(tx) = tx_of(&args) else {
        return bad_self(lua, "prepare", "sql.Transaction");
    };
    if !tx.is_active() {
        return inactive(lua);
    }
    let sql = match str_arg(lua, &args, 1, "prepare") {
        Ok(s) => s,
        Err(r) => return r,
    };
    prepare_on(lua, tx.db.clone(), Some(tx), sql)
}

impl UserData for Tx {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, t, ()| {
            Ok(format!(
                "sql.Transaction{{{}}}",
                if t.record.is_active() {
                    "active"
                } else {
                    "done"
                }
            ))
        });
    }

    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| {
            let t = lua.create_table_with_capacity(0, 9)?;
            t.raw_set(
                "db_type",
                raise::function(lua, |lua, args| match tx_of(&args) {
                    Some(tx) if tx.is_active() => Ok(ret2(
                        LuaValue::String(lua.create_string(tx.db.engine().type_name())?),
                        LuaValue::Nil,
                    )),
                    Some(_) => inactive(lua),
                    None => bad_self(lua, "db_type", "sql.Transaction"),
                })?,
            )?;
            rawfn::set(lua, &t, "query", crate::lua_fn!(tx_query_q))?;
            rawfn::set(lua, &t, "execute", crate::lua_fn!(tx_query_x))?;
            rawfn::set(lua, &t, "prepare", crate::lua_fn!(tx_prepare))?;
            rawfn::set(lua, &t, "commit", crate::lua_fn!(tx_commit))?;
            rawfn::set(lua, &t, "rollback", crate::lua_fn!(tx_rollback))?;
            rawfn::set(lua, &t, "savepoint", crate::lua_fn!(tx_savepoint_set))?;
            rawfn::set(
                lua,
                &t,
                "rollback_to",
                crate::lua_fn!(tx_savepoint_rollback),
            )?;
            rawfn::set(lua, &t, "release", crate::lua_fn!(tx_savepoint_release))?;
            Ok(t)
        });
    }
}

// ---- Statement ----

fn stmt_run(lua: &Lua, args: MultiValue, exec: bool) -> mlua::Result<MultiValue> {
    let m = if exec { "execute" } else { "query" };
    let Some((db, sql, tx, closed)) = ud_arg::<Stmt, _>(&args, |s| {
        (
            s.db.clone(),
            s.sql.clone(),
            s.tx.clone(),
            s.record.is_released(),
        )
    }) else {
        return bad_self(lua, m, "sql.Statement");
    };
    if closed {
        return nil_error(
            lua,
            Error::invalid("statement is closed").with_retryable(Some(false)),
        );
    }
    if let Some(t) = &tx
        && !t.is_active()
    {
        return inactive(lua);
    }
    let params = match params(args.get(1)) {
        Ok(p) => p,
        Err(e) => return nil_error(lua, e.with_context("check params")),
    };
    let tx_id = tx.map(|t| t.id);
    if exec {
        submit(
            lua,
            &db,
            tx_id,
            Op::Execute { sql, params },
            None,
            conv_exec(),
        )
    } else {
        submit(
            lua,
            &db,
            tx_id,
            Op::Query { sql, params },
            None,
            conv_rows(),
        )
    }
}

impl UserData for Stmt {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, s, ()| {
            Ok(if s.record.is_released() {
                "sql.Statement{closed}".to_string()
            } else {
                "sql.Statement{}".to_string()
            })
        });
    }

    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| {
            let t = lua.create_table_with_capacity(0, 3)?;
            rawfn::set(lua, &t, "query", crate::lua_fn!(stmt_query))?;
            rawfn::set(lua, &t, "execute", crate::lua_fn!(stmt_execute))?;
            t.raw_set(
                "close",
                raise::function(lua, |lua, args| {
                    match ud_arg::<Stmt, _>(&args, |s| s.record.0.swap(true, Ordering::SeqCst)) {
                        Some(false) => Ok(ret2(LuaValue::Boolean(true), LuaValue::Nil)),
                        Some(true) => nil_error(
                            lua,
                            Error::invalid("statement is already closed")
                                .with_retryable(Some(false)),
                        ),
                        None => bad_self(lua, "close", "sql.Statement"),
                    }
                })?,
            )?;
            Ok(t)
        });
    }
}

// ---- module ----

fn sql_get(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let id = match args.front() {
        Some(LuaValue::String(s)) => s.to_string_lossy(),
        other => {
            let got = other.map(lua_type).unwrap_or("no value");
            return raise::raise_msg(
                lua,
                format!("bad argument #1 to 'get' (string expected, got {got})"),
            );
        }
    };
    if id.is_empty() {
        return nil_error(
            lua,
            Error::invalid("resource id is required").with_retryable(Some(false)),
        );
    }
    let found = with_core(|c| {
        let mgr = sqlsvc::manager(&c.engine.sys);
        (
            c.pid.clone(),
            owners::of(&c.handle),
            mgr.and_then(|m| m.get(&id)),
        )
    });
    let (pid, owners, db) = match found {
        Ok(x) => x,
        Err(e) => return yields::core_error(lua, e),
    };
    let Some(db) = db else {
        return nil_error(lua, sqlsvc::not_found(&id));
    };
    let record = Arc::new(Flag(AtomicBool::new(false)));
    own(&owners, &pid, record.clone());
    let ud = lua.create_userdata(Db { db, record })?;
    Ok(ret2(LuaValue::UserData(ud), LuaValue::Nil))
}

fn as_int(lua: &Lua, v: LuaValue) -> mlua::Result<AnyUserData> {
    let n = match v {
        LuaValue::Integer(i) => i,
        LuaValue::Number(f) => f as i64,
        LuaValue::String(s) => {
            let s = s.to_string_lossy();
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(|f| f as i64))
                .unwrap_or(0)
        }
        _ => 0,
    };
    lua.create_userdata(SqlTyped(SqlValue::Int(n)))
}

fn as_float(lua: &Lua, v: LuaValue) -> mlua::Result<AnyUserData> {
    let f = match v {
        LuaValue::Integer(i) => i as f64,
        LuaValue::Number(f) => f,
        LuaValue::String(s) => s.to_string_lossy().trim().parse::<f64>().unwrap_or(0.0),
        _ => 0.0,
    };
    lua.create_userdata(SqlTyped(SqlValue::Real(f)))
}

fn as_text(lua: &Lua, v: LuaValue) -> mlua::Result<AnyUserData> {
    let t = match &v {
        LuaValue::String(s) => s.as_bytes().to_vec(),
        LuaValue::Integer(_) | LuaValue::Number(_) => lua
            .coerce_string(v.clone())?
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    lua.create_userdata(SqlTyped(SqlValue::Text(t)))
}

fn as_binary(lua: &Lua, v: LuaValue) -> mlua::Result<AnyUserData> {
    let b = match v {
        LuaValue::String(s) => SqlValue::Blob(s.as_bytes().to_vec()),
        _ => SqlValue::Null,
    };
    lua.create_userdata(SqlTyped(b))
}

fn constants(lua: &Lua, pairs: &[(&str, &str)]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, pairs.len())?;
    for (k, v) in pairs {
        t.raw_set(*k, *v)?;
    }
    Ok(t)
}

/// The `sql` table.
pub(crate) fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 7)?;
    t.raw_set("get", raise::function(lua, sql_get)?)?;
    t.raw_set("NULL", lua.create_userdata(SqlNull)?)?;
    t.raw_set(
        "type",
        constants(
            lua,
            &[
                ("POSTGRES", "postgres"),
                ("MYSQL", "mysql"),
                ("SQLITE", "sqlite"),
                ("MSSQL", "mssql"),
                ("ORACLE", "oracle"),
                ("UNKNOWN", "unknown"),
            ],
        )?,
    )?;
    t.raw_set(
        "isolation",
        constants(
            lua,
            &[
                ("DEFAULT", "default"),
                ("READ_UNCOMMITTED", "read_uncommitted"),
                ("READ_COMMITTED", "read_committed"),
                ("WRITE_COMMITTED", "write_committed"),
                ("REPEATABLE_READ", "repeatable_read"),
                ("SERIALIZABLE", "serializable"),
            ],
        )?,
    )?;
    let as_t = lua.create_table_with_capacity(0, 5)?;
    as_t.raw_set("int", lua.create_function(as_int)?)?;
    as_t.raw_set("float", lua.create_function(as_float)?)?;
    as_t.raw_set("text", lua.create_function(as_text)?)?;
    as_t.raw_set("binary", lua.create_function(as_binary)?)?;
    as_t.raw_set(
        "null",
        lua.create_function(|lua, ()| lua.create_userdata(SqlNull))?,
    )?;
    t.raw_set("as", as_t)?;
    t.raw_set("builder", builder::build(lua)?)?;
    let _ = ret1;
    Ok(LuaValue::Table(t))
}

/// Database and transaction userdata the builder's `run_with` accepts.
pub(crate) enum Target {
    Db(Arc<Database>),
    Tx(Arc<TxRecord>),
}

/// The database or transaction behind a userdata (for `run_with`).
pub(crate) fn target_of(ud: &AnyUserData) -> Option<Target> {
    if let Ok(d) = ud.borrow::<Db>() {
        return Some(Target::Db(d.db.clone()));
    }
    if let Ok(t) = ud.borrow::<Tx>() {
        return Some(Target::Tx(t.record.clone()));
    }
    None
}

/// Run builder SQL against a target (the executor of `sql.builder`).
pub(crate) fn run_target(
    lua: &Lua,
    target: &Target,
    sql: String,
    params: Vec<SqlValue>,
    exec: bool,
) -> mlua::Result<MultiValue> {
    let sql: Arc<str> = Arc::from(sql);
    let op = if exec {
        Op::Execute { sql, params }
    } else {
        Op::Query { sql, params }
    };
    let conv = if exec { conv_exec() } else { conv_rows() };
    match target {
        Target::Db(db) => submit(lua, db, None, op, None, conv),
        Target::Tx(tx) => {
            if !tx.is_active() {
                return inactive(lua);
            }
            submit(lua, &tx.db, Some(tx.id), op, None, conv)
        }
    }
}

// Light-function entry points (`rawfn`) of the blocking methods.

fn db_query_q(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    db_query(lua, args, false)
}

fn db_query_x(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    db_query(lua, args, true)
}

fn tx_query_q(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    tx_query(lua, args, false)
}

fn tx_query_x(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    tx_query(lua, args, true)
}

fn tx_commit(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    tx_end(lua, args, true)
}

fn tx_rollback(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    tx_end(lua, args, false)
}

fn tx_savepoint_set(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    tx_savepoint(lua, args, "SAVEPOINT", "savepoint")
}

fn tx_savepoint_rollback(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    tx_savepoint(lua, args, "ROLLBACK TO SAVEPOINT", "rollback_to")
}

fn tx_savepoint_release(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    tx_savepoint(lua, args, "RELEASE SAVEPOINT", "release")
}

fn stmt_query(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    stmt_run(lua, args, false)
}

fn stmt_execute(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    stmt_run(lua, args, true)
}
