//! One database: a dedicated connection thread owning the single SQLite connection.
//!
//! # Protocol
//!
//! Callers (Lua tasks through [`super::job`], the SQL-backed store, Rust code) send
//! [`Request`]s over an unbounded channel; the thread executes them one at a time on its
//! connection and completes each through its [`Done`]. The executor's workers never touch the
//! connection, so a slow query blocks only this thread.
//!
//! As upstream (`database/sql` with one connection), an open **transaction holds the
//! connection**: while process *P* has a transaction open, requests from other processes
//! wait in a FIFO (`deferred`) and run when *P* commits, rolls back, or exits (its
//! transactions are released by [`super::owners`], which rolls them back here). Requests of
//! *P* itself that are not part of the transaction run inside it instead of deadlocking on
//! their own transaction (upstream blocks forever in that case).
//!
//! # Invariants
//!
//! * At most one transaction is active; only requests of its owner (or addressed to it) run
//!   while it is; per-owner order is preserved (blocking depends only on the owner).
//! * A request addressed to a transaction that is not active fails with `Invalid`
//!   "transaction is not active"; a failed `COMMIT` is followed by a `ROLLBACK`, so the
//!   transaction is over either way (as `database/sql`).
//! * Every request is completed exactly once: when the thread stops, deferred requests fail
//!   with `Unavailable` and an open transaction is rolled back.
//!
//! The connection is opened like upstream (`mode=rwc`, then `PRAGMA journal_mode=WAL`), with
//! a busy timeout for other processes touching the same file and a statement cache, so a
//! statement run repeatedly (or `db:prepare`d) is compiled once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rusqlite::fallible_iterator::FallibleIterator as _;
use rusqlite::{Connection, OpenFlags};
use wippy_rt::{Completer, Error, Kind, Pid, Value};

use super::config::{DbConfig, Engine, Location};
use super::job::opaque;
use super::value::{ColKind, ExecResult, Rows, SqlValue, sql_error};

/// Prepared statements kept compiled per connection (LRU).
pub const STATEMENT_CACHE: usize = 256;
/// How long SQLite retries when another OS process holds the file lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Arbitrary work run on the connection thread.
pub type ConnFn = Box<dyn FnOnce(&Connection) -> Result<Value, Error> + Send>;

/// A connection-level operation.
pub enum Op {
    /// Rows of a query.
    Query {
        /// SQL text (may hold several statements: rows of the last).
        sql: Arc<str>,
        /// Positional parameters.
        params: Vec<SqlValue>,
    },
    /// A statement without rows.
    Execute {
        /// SQL text (may hold several statements, run in order).
        sql: Arc<str>,
        /// Positional parameters (consumed in order across statements).
        params: Vec<SqlValue>,
    },
    /// Compile (and cache) a statement.
    Prepare {
        /// SQL text.
        sql: Arc<str>,
    },
    /// `BEGIN` transaction `id`.
    Begin {
        /// Transaction id (chosen by the caller, see [`Database::next_tx_id`]).
        id: u64,
        /// `PRAGMA query_only` for its duration.
        read_only: bool,
    },
    /// `COMMIT` the request's transaction.
    Commit,
    /// `ROLLBACK` the request's transaction.
    Rollback,
    /// Arbitrary work on the connection (the SQL-backed store).
    Call(ConnFn),
}

/// What a finished request produced (inside `Value::Opaque`, see [`super::job::take`]).
#[derive(Debug)]
pub enum Outcome {
    /// Rows of a query.
    Rows(Rows),
    /// Result of an execute.
    Exec(ExecResult),
    /// Prepare, begin, commit, rollback.
    Done,
}

/// Where a request's result goes.
pub enum Done {
    /// A suspended Lua task.
    Task(Completer),
    /// A Rust callback.
    Fn(Box<dyn FnOnce(Result<Value, Error>) + Send>),
}

impl Done {
    fn complete(self, r: Result<Value, Error>) {
        match self {
            Done::Task(c) => {
                c.complete(r);
            }
            Done::Fn(f) => f(r),
        }
    }
}

/// One request.
pub struct Request {
    /// The process on whose behalf it runs (transaction ownership).
    pub owner: Pid,
    /// The transaction it belongs to.
    pub tx: Option<u64>,
    /// The operation.
    pub op: Op,
    /// Completion.
    pub done: Done,
}

enum Msg {
    Run(Request, Instant),
    Release(u64),
    Stop,
}

/// Counters behind `db:stats()`.
#[derive(Debug, Default)]
pub struct Stats {
    /// The connection is open.
    pub open: AtomicBool,
    /// A request is executing or a transaction is open.
    pub in_use: AtomicBool,
    /// Requests that had to wait for another process's transaction.
    pub wait_count: AtomicU64,
    /// Their total wait, in nanoseconds.
    pub wait_ns: AtomicU64,
    /// Transactions currently open (0 or 1).
    pub open_tx: AtomicU64,
    /// Requests executed.
    pub executed: AtomicU64,
}

enum State {
    /// Never started: the first use starts it.
    Idle,
    Running {
        tx: Sender<Msg>,
        thread: Option<JoinHandle<()>>,
    },
    /// Stopped by its service; uses fail until it starts again.
    Stopped,
}

/// See the module docs.
pub struct Database {
    /// Registry id of the entry.
    pub id: String,
    /// Configuration.
    pub config: DbConfig,
    state: Mutex<State>,
    /// Why the connection could not be opened (reported to every request).
    open_error: Arc<Mutex<Option<Error>>>,
    next_tx: AtomicU64,
    /// Counters.
    pub stats: Arc<Stats>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("id", &self.id)
            .field("engine", &self.config.engine)
            .finish_non_exhaustive()
    }
}

#[cold]
fn not_running(id: &str) -> Error {
    Error::new(Kind::UNAVAILABLE, "database is not running")
        .with_retryable(Some(true))
        .with_detail("id", id)
}

#[cold]
fn no_driver(engine: Engine) -> Error {
    Error::new(
        Kind::UNAVAILABLE,
        format!(
            "{} driver is not available in this build",
            engine.type_name()
        ),
    )
    .with_retryable(Some(false))
}

impl Database {
    /// A database for entry `id` (not started).
    pub fn new(id: &str, config: DbConfig) -> Database {
        Database {
            id: id.to_string(),
            config,
            state: Mutex::new(State::Idle),
            open_error: Arc::new(Mutex::new(None)),
            next_tx: AtomicU64::new(1),
            stats: Arc::new(Stats::default()),
        }
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        self.config.engine
    }

    /// A fresh transaction id.
    pub fn next_tx_id(&self) -> u64 {
        self.next_tx.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open the connection thread. With `wait`, block until the connection is open and
    /// return the open error if it failed. Starting a running database is a no-op.
    ///
    /// # Errors
    /// The driver is unavailable; the file cannot be opened (with `wait`).
    pub fn start(&self, wait: bool) -> Result<(), Error> {
        if self.config.engine != Engine::Sqlite {
            return Err(no_driver(self.config.engine));
        }
        let mut g = self.lock();
        if let State::Running { thread, .. } = &*g
            && thread.as_ref().is_some_and(|t| !t.is_finished())
        {
            return Ok(());
        }
        *self.open_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let (tx, rx) = crossbeam_channel::unbounded();
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        let location = self.config.location.clone();
        let stats = self.stats.clone();
        let open_error = self.open_error.clone();
        let id = self.id.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sql:{}", self.id))
            .spawn(move || match open(&location) {
                Ok(conn) => {
                    stats.open.store(true, Ordering::SeqCst);
                    let _ = ack_tx.send(Ok(()));
                    Worker {
                        conn,
                        active: None,
                        deferred: VecDeque::new(),
                        stats: stats.clone(),
                    }
                    .run(rx);
                    stats.open.store(false, Ordering::SeqCst);
                }
                Err(e) => {
                    let e = e.with_detail("id", id.as_str());
                    log::error!(target: "wippy::sql", "database {id}: {e}");
                    *open_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                    let _ = ack_tx.send(Err(e.clone()));
                    drain_failed(rx, &e);
                }
            })
            .map_err(|e| Error::internal(format!("cannot start database thread: {e}")))?;
        *g = State::Running {
            tx,
            thread: Some(thread),
        };
        drop(g);
        if wait {
            match ack_rx.recv() {
                Ok(r) => r,
                Err(_) => Err(Error::internal("database thread exited during open")),
            }
        } else {
            Ok(())
        }
    }

    /// Stop the thread (open transaction rolled back, waiting requests failed), waiting up to
    /// `deadline`. Later uses fail until [`start`](Self::start).
    pub fn stop(&self, deadline: Instant) {
        let (tx, thread) = {
            let mut g = self.lock();
            match std::mem::replace(&mut *g, State::Stopped) {
                State::Running { tx, thread } => (Some(tx), thread),
                _ => (None, None),
            }
        };
        if let Some(tx) = tx {
            let _ = tx.send(Msg::Stop);
        }
        if let Some(t) = thread {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                log::warn!(target: "wippy::sql", "database {}: connection thread still busy at stop deadline", self.id);
            }
        }
    }

    /// True while the connection thread runs with an open connection.
    pub fn is_open(&self) -> bool {
        self.stats.open.load(Ordering::SeqCst)
    }

    /// Submit a request (starting a never-started database on first use).
    pub fn submit(&self, req: Request) {
        if self.config.engine != Engine::Sqlite {
            req.done.complete(Err(no_driver(self.config.engine)));
            return;
        }
        let msg = Msg::Run(req, Instant::now());
        let sent = {
            let mut g = self.lock();
            if matches!(*g, State::Idle) {
                drop(g);
                let _ = self.start(false);
                g = self.lock();
            }
            match &*g {
                State::Running { tx, .. } => tx.send(msg).map_err(|e| e.into_inner()),
                _ => Err(msg),
            }
        };
        if let Err(Msg::Run(req, _)) = sent {
            let e = self
                .open_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_else(|| not_running(&self.id));
            req.done.complete(Err(e));
        }
    }

    /// End transaction `id` if it is still open (rolled back): its owner exited or dropped it.
    pub fn release_tx(&self, id: u64) {
        if let State::Running { tx, .. } = &*self.lock() {
            let _ = tx.send(Msg::Release(id));
        }
    }
}

fn open(location: &Location) -> Result<Connection, Error> {
    let conn = match location {
        Location::Memory => Connection::open_in_memory(),
        Location::File(p) => Connection::open_with_flags(
            p,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ),
    }
    .map_err(|e| {
        let e = sql_error(e, "open");
        Error::new(
            Kind::INTERNAL,
            format!("failed to create SQLite connection: {}", e.message()),
        )
        .with_retryable(Some(false))
    })?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .map_err(|e| {
            Error::internal(format!(
                "failed to enable WAL mode: {}",
                sql_error(e, "open").message()
            ))
        })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_error(e, "open"))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// After a failed open: fail every request until the channel closes or stops.
fn drain_failed(rx: Receiver<Msg>, e: &Error) {
    while let Ok(m) = rx.recv() {
        match m {
            Msg::Run(req, _) => req.done.complete(Err(e.clone())),
            Msg::Release(_) => {}
            Msg::Stop => break,
        }
    }
}

struct ActiveTx {
    id: u64,
    owner: Pid,
    read_only: bool,
}

struct Worker {
    conn: Connection,
    active: Option<ActiveTx>,
    deferred: VecDeque<(Request, Instant)>,
    stats: Arc<Stats>,
}

#[cold]
fn tx_not_active() -> Error {
    Error::invalid("transaction is not active").with_retryable(Some(false))
}

impl Worker {
    fn run(mut self, rx: Receiver<Msg>) {
        while let Ok(m) = rx.recv() {
            match m {
                Msg::Run(req, at) => {
                    if self.blocked(&req) {
                        self.deferred.push_back((req, at));
                    } else {
                        self.exec(req, at);
                        self.drain();
                    }
                }
                Msg::Release(id) => self.release(id),
                Msg::Stop => break,
            }
        }
        if self.active.is_some() {
            self.finish_tx("ROLLBACK");
        }
        for (req, _) in self.deferred.drain(..) {
            req.done
                .complete(Err(Error::new(Kind::UNAVAILABLE, "database is closed")));
        }
        // Late requests still in the channel.
        while let Ok(m) = rx.try_recv() {
            if let Msg::Run(req, _) = m {
                req.done
                    .complete(Err(Error::new(Kind::UNAVAILABLE, "database is closed")));
            }
        }
    }

    /// Transaction `id` was released by its owner (exit): roll it back if open, or drop its
    /// `BEGIN` if that is still waiting (so a dead process never holds the connection).
    fn release(&mut self, id: u64) {
        if self.active.as_ref().is_some_and(|a| a.id == id) {
            self.finish_tx("ROLLBACK");
            self.drain();
            return;
        }
        let pos = self
            .deferred
            .iter()
            .position(|(r, _)| matches!(r.op, Op::Begin { id: b, .. } if b == id));
        if let Some(i) = pos
            && let Some((req, _)) = self.deferred.remove(i)
        {
            req.done.complete(Err(tx_not_active()));
        }
    }

    /// Must `req` wait for another process's transaction?
    fn blocked(&self, req: &Request) -> bool {
        match (&self.active, req.tx) {
            (Some(a), None) => a.owner != req.owner,
            _ => false,
        }
    }

    /// Run deferred requests that are no longer blocked, in arrival order.
    fn drain(&mut self) {
        let mut i = 0;
        while i < self.deferred.len() {
            if self.blocked(&self.deferred[i].0) {
                i += 1;
                continue;
            }
            let Some((req, at)) = self.deferred.remove(i) else {
                break;
            };
            self.stats.wait_count.fetch_add(1, Ordering::Relaxed);
            self.stats
                .wait_ns
                .fetch_add(at.elapsed().as_nanos() as u64, Ordering::Relaxed);
            let before = self.active.as_ref().map(|a| a.id);
            self.exec(req, at);
            if self.active.as_ref().map(|a| a.id) != before {
                i = 0;
            }
        }
    }

    fn exec(&mut self, req: Request, _at: Instant) {
        self.stats.in_use.store(true, Ordering::Relaxed);
        let Request {
            tx,
            op,
            done,
            owner,
        } = req;
        if let (Op::Begin { .. }, Done::Task(c)) = (&op, &done)
            && !c.is_alive()
        {
            // The owner exited while its BEGIN waited: never open a transaction for it.
            done.complete(Err(tx_not_active()));
            self.settle_in_use();
            return;
        }
        if let Some(id) = tx
            && self.active.as_ref().is_none_or(|a| a.id != id)
        {
            done.complete(Err(tx_not_active()));
            self.settle_in_use();
            return;
        }
        let r = match op {
            Op::Query { sql, params } => query(&self.conn, &sql, &params)
                .map(|r| opaque(Outcome::Rows(r)))
                .map_err(|e| e.with_context("query")),
            Op::Execute { sql, params } => execute(&self.conn, &sql, &params)
                .map(|r| opaque(Outcome::Exec(r)))
                .map_err(|e| e.with_context("execute")),
            Op::Prepare { sql } => prepare(&self.conn, &sql).map(|()| opaque(Outcome::Done)),
            Op::Begin { id, read_only } => self.begin(id, owner, read_only),
            Op::Commit => self.end_tx("COMMIT"),
            Op::Rollback => self.end_tx("ROLLBACK"),
            Op::Call(f) => f(&self.conn),
        };
        self.stats.executed.fetch_add(1, Ordering::Relaxed);
        done.complete(r);
        self.settle_in_use();
    }

    fn settle_in_use(&self) {
        self.stats
            .in_use
            .store(self.active.is_some(), Ordering::Relaxed);
    }

    fn begin(&mut self, id: u64, owner: Pid, read_only: bool) -> Result<Value, Error> {
        self.conn
            .execute_batch("BEGIN")
            .map_err(|e| sql_error(e, "begin"))?;
        if read_only && let Err(e) = self.conn.execute_batch("PRAGMA query_only = ON") {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(sql_error(e, "begin"));
        }
        self.active = Some(ActiveTx {
            id,
            owner,
            read_only,
        });
        self.stats.open_tx.store(1, Ordering::Relaxed);
        Ok(opaque(Outcome::Done))
    }

    fn end_tx(&mut self, verb: &str) -> Result<Value, Error> {
        let r = self.conn.execute_batch(verb);
        let r = match r {
            Ok(()) => Ok(opaque(Outcome::Done)),
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(sql_error(e, &verb.to_ascii_lowercase()))
            }
        };
        self.finish_tx_state();
        r
    }

    fn finish_tx(&mut self, verb: &str) {
        if !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch(verb)
        {
            log::warn!(target: "wippy::sql", "releasing a transaction: {e}");
        }
        self.finish_tx_state();
    }

    fn finish_tx_state(&mut self) {
        if let Some(a) = self.active.take()
            && a.read_only
        {
            let _ = self.conn.execute_batch("PRAGMA query_only = OFF");
        }
        self.stats.open_tx.store(0, Ordering::Relaxed);
    }
}

/// Bind `params[*next..]` to `stmt` (as many as it takes).
fn bind(
    stmt: &mut rusqlite::Statement<'_>,
    params: &[SqlValue],
    next: &mut usize,
) -> Result<(), Error> {
    let n = stmt.parameter_count();
    if *next + n > params.len() {
        return Err(Error::invalid(format!(
            "sql: expected {} arguments, got {}",
            *next + n,
            params.len()
        ))
        .with_retryable(Some(false)));
    }
    for i in 0..n {
        stmt.raw_bind_parameter(i + 1, &params[*next + i])
            .map_err(|e| sql_error(e, "bind"))?;
    }
    *next += n;
    Ok(())
}

fn check_all_used(params: &[SqlValue], used: usize) -> Result<(), Error> {
    if used != params.len() {
        return Err(Error::invalid(format!(
            "sql: expected {used} arguments, got {}",
            params.len()
        ))
        .with_retryable(Some(false)));
    }
    Ok(())
}

fn collect_rows(stmt: &mut rusqlite::Statement<'_>) -> Result<Rows, Error> {
    let columns: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let kinds: Vec<ColKind> = stmt
        .columns()
        .map(|c| ColKind::from_decl(c.decl_type()))
        .collect();
    let mut out = Rows {
        columns,
        cells: Vec::new(),
    };
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next().map_err(|e| sql_error(e, "query"))? {
        for (i, k) in kinds.iter().enumerate() {
            let v = row.get_ref(i).map_err(|e| sql_error(e, "query"))?;
            out.cells.push(k.cell(v));
        }
    }
    Ok(out)
}

fn step_all(stmt: &mut rusqlite::Statement<'_>) -> Result<(), Error> {
    let mut rows = stmt.raw_query();
    while rows.next().map_err(|e| sql_error(e, "execute"))?.is_some() {}
    Ok(())
}

/// Should a failed single-statement prepare be retried statement by statement? Yes for
/// rusqlite's "multiple statements", and for any error on text with a `;` before its end:
/// rusqlite compiles the tail at once to detect extra statements, which fails when a later
/// statement depends on an earlier one (`CREATE TABLE t …; INSERT INTO t …`). A genuine error
/// in the first statement is reported again by the statement-by-statement run.
fn multi(e: &rusqlite::Error, sql: &str) -> bool {
    matches!(e, rusqlite::Error::MultipleStatement)
        || sql.trim_end().trim_end_matches(';').contains(';')
}

/// Run `sql` (one or more statements) and return the rows of the last one.
pub fn query(conn: &Connection, sql: &str, params: &[SqlValue]) -> Result<Rows, Error> {
    match conn.prepare_cached(sql) {
        Ok(mut stmt) => {
            let mut next = 0;
            bind(&mut stmt, params, &mut next)?;
            check_all_used(params, next)?;
            collect_rows(&mut stmt)
        }
        Err(e) if multi(&e, sql) => {
            let mut batch = rusqlite::Batch::new(conn, sql);
            let mut next = 0;
            let mut last = Rows::default();
            while let Some(mut stmt) = batch.next().map_err(|e| sql_error(e, "query"))? {
                bind(&mut stmt, params, &mut next)?;
                last = collect_rows(&mut stmt)?;
            }
            check_all_used(params, next)?;
            Ok(last)
        }
        Err(e) => Err(sql_error(e, "query")),
    }
}

/// Run `sql` (one or more statements, rows discarded).
pub fn execute(conn: &Connection, sql: &str, params: &[SqlValue]) -> Result<ExecResult, Error> {
    match conn.prepare_cached(sql) {
        Ok(mut stmt) => {
            let mut next = 0;
            bind(&mut stmt, params, &mut next)?;
            check_all_used(params, next)?;
            step_all(&mut stmt)?;
        }
        Err(e) if multi(&e, sql) => {
            let mut batch = rusqlite::Batch::new(conn, sql);
            let mut next = 0;
            while let Some(mut stmt) = batch.next().map_err(|e| sql_error(e, "execute"))? {
                bind(&mut stmt, params, &mut next)?;
                step_all(&mut stmt)?;
            }
            check_all_used(params, next)?;
        }
        Err(e) => return Err(sql_error(e, "execute")),
    }
    Ok(ExecResult {
        last_insert_id: conn.last_insert_rowid(),
        rows_affected: conn.changes() as i64,
    })
}

/// Compile every statement of `sql` (caching single statements).
fn prepare(conn: &Connection, sql: &str) -> Result<(), Error> {
    match conn.prepare_cached(sql) {
        Ok(_) => Ok(()),
        Err(e) if multi(&e, sql) => {
            let mut batch = rusqlite::Batch::new(conn, sql);
            while batch.next().map_err(|e| sql_error(e, "prepare"))?.is_some() {}
            Ok(())
        }
        Err(e) => Err(sql_error(e, "prepare")),
    }
}
