//! [`Handle`]: the runtime API used by everything above the core.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::app_context::AppContext;
use crate::bus::Bus;
use crate::dispatch::Dispatcher;
use crate::error::{Error, Kind};
use crate::exec::Reason;
use crate::exec::worker::{SEND_CACHE, WorkerCtx, with_current};
use crate::pid::{Pid, PidGen};
use crate::process::cell::{Cell, KILL_TERMINATE};
use crate::process::table::same_local_pid;
use crate::process::{Completer, Event, Process, ProcessCx, cancel_package};
use crate::reactor::{IoHandle, TimerHandle};
use crate::relay::{Node, Package, Receiver as RelayReceiver, Router};
use crate::runtime::host::{HostReceiver, HostState, host_stopping};
use crate::runtime::step::{finish, panic_error};
use crate::runtime::{
    HostConfig, Lifecycle, ProcessInfo, RuntimeStats, Shared, SpawnOptions, process_not_found,
    push_message, wake,
};
use crate::value::Value;

/// Cheap, cloneable access to a runtime (one `Arc`). Usable from any thread, including inside
/// a process step or a command handler.
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.shared.workers)
            .finish()
    }
}

/// Receives the exit result of a process spawned with [`Handle::spawn_watched`].
#[derive(Debug)]
pub struct ExitWatch {
    rx: Receiver<Result<Value, Error>>,
}

impl ExitWatch {
    /// Block until the process exits.
    ///
    /// # Errors
    /// The process's exit error, or `Internal` "runtime is shut down" if the result was lost.
    pub fn wait(&self) -> Result<Value, Error> {
        self.rx.recv().unwrap_or_else(|_| Err(shut_down()))
    }
    /// Wait up to `d`; None on timeout.
    pub fn wait_timeout(&self, d: Duration) -> Option<Result<Value, Error>> {
        match self.rx.recv_timeout(d) {
            Ok(r) => Some(r),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err(shut_down())),
        }
    }
    /// The underlying channel (for `select!`).
    pub fn receiver(&self) -> &Receiver<Result<Value, Error>> {
        &self.rx
    }
}

#[cold]
fn shut_down() -> Error {
    Error::new(Kind::UNAVAILABLE, "runtime is shut down")
}

/// Deliver to a live local cell: refuse ordinary traffic to a stopping host.
#[inline]
fn deliver(cell: &Arc<Cell>, pkg: Package) -> Result<(), Error> {
    if cell.host.is_stopping() && !pkg.is_control() {
        return Err(host_stopping(cell.host.id.as_str()));
    }
    push_message(cell, pkg)
}

/// Deliver from a worker: immediately, or into the running step's outbox once that step
/// batches (see `exec::worker::Outbox`).
#[inline]
fn deliver_on(ctx: &WorkerCtx, cell: &Arc<Cell>, pkg: Package) -> Result<(), Error> {
    if cell.host.is_stopping() && !pkg.is_control() {
        return Err(host_stopping(cell.host.id.as_str()));
    }
    let mut ob = ctx.outbox.borrow_mut();
    if ob.active {
        let addr = Arc::as_ptr(cell) as usize;
        if ob.batching || ob.last == addr {
            ob.batching = true;
            ob.append(cell, Event::Message(pkg));
            return Ok(());
        }
        ob.last = addr;
    }
    drop(ob);
    push_message(cell, pkg)
}

impl Handle {
    // ===== processes =====

    /// Spawn a process on host `host`: run its `init(method, input)` synchronously on this
    /// thread, register its PID, run the `on_start` hooks, then queue it.
    ///
    /// # Errors
    /// `Unavailable` "scheduler is stopping" / "host is shutting down"; `NotFound` "host not
    /// found"; `LimitExceeded` "max processes limit exceeded"; the error returned by `init` or
    /// by an `on_start` hook (a panic in `init` becomes an `Internal` error).
    pub fn spawn(
        &self,
        host: &str,
        process: Box<dyn Process>,
        method: &str,
        input: Vec<Value>,
        opts: SpawnOptions,
    ) -> Result<Pid, Error> {
        self.spawn_inner(host, process, method, input, opts, None)
    }

    /// Like [`Handle::spawn`], also returning an [`ExitWatch`] that receives the exit result.
    ///
    /// # Errors
    /// As [`Handle::spawn`].
    pub fn spawn_watched(
        &self,
        host: &str,
        process: Box<dyn Process>,
        method: &str,
        input: Vec<Value>,
        opts: SpawnOptions,
    ) -> Result<(Pid, ExitWatch), Error> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let pid = self.spawn_inner(host, process, method, input, opts, Some(tx))?;
        Ok((pid, ExitWatch { rx }))
    }

    fn spawn_inner(
        &self,
        host_id: &str,
        process: Box<dyn Process>,
        method: &str,
        input: Vec<Value>,
        opts: SpawnOptions,
        exit_tx: Option<crossbeam_channel::Sender<Result<Value, Error>>>,
    ) -> Result<Pid, Error> {
        let sh = &self.shared;
        if sh.stopping.load(SeqCst) {
            return Err(
                Error::new(Kind::UNAVAILABLE, "scheduler is stopping").with_retryable(Some(false))
            );
        }
        let cell = self.prepare_cell(host_id, process, opts, exit_tx)?;
        let host = &cell.host;
        let pid = cell.pid.clone();
        // SAFETY: the cell is not published yet (not in the table, not queued), so this thread
        // is its only user; the closure does not re-enter `with_owned`.
        let init = unsafe {
            cell.with_owned(|o| {
                let p = o.process.as_mut().expect("fresh cell has a process");
                let mut cx = ProcessCx {
                    cell: &cell,
                    handle: self,
                };
                catch_unwind(AssertUnwindSafe(|| p.init(&mut cx, method, input)))
            })
        };
        let init = match init {
            Ok(r) => r,
            Err(p) => Err(panic_error(p)),
        };
        if let Err(e) = init {
            self.abort_spawn(&cell, host);
            return Err(e);
        }
        let key = pid.uniq_num().expect("generated pids are numeric");
        if !sh.table.insert(key, cell.clone()) {
            self.abort_spawn(&cell, host);
            return Err(
                Error::internal("pid collision in process table").with_detail("pid", pid.as_str())
            );
        }
        if let Err(e) = self.run_on_start(&cell) {
            sh.table.remove(key, &cell);
            self.abort_spawn(&cell, host);
            return Err(e);
        }
        sh.count(true);
        sh.exec.schedule(cell, Reason::Spawn);
        Ok(pid)
    }

    /// Find the host, reserve a slot, and build the cell — on a worker from its cell pool and
    /// host cache (no allocation and no shared reference-count traffic in the common case),
    /// elsewhere from scratch.
    fn prepare_cell(
        &self,
        host_id: &str,
        process: Box<dyn Process>,
        opts: SpawnOptions,
        exit_tx: Option<crossbeam_channel::Sender<Result<Value, Error>>>,
    ) -> Result<Arc<Cell>, Error> {
        let sh = &self.shared;
        let mut parts = Some((process, opts, exit_tx));
        let fast = with_current(&sh.exec, |ctx| {
            let hc = ctx.host_cache.borrow();
            let host = match &*hc {
                Some(h) if h.id == host_id && !h.is_removed() => h,
                _ => return None,
            };
            Some(Self::build_cell(
                sh,
                host,
                ctx.pool.borrow_mut().pop(),
                &mut parts,
            ))
        })
        .flatten();
        if let Some(r) = fast {
            return r;
        }
        let host = sh
            .host(host_id)
            .ok_or_else(|| crate::relay::host_not_found(host_id, sh.node.id()))?;
        with_current(&sh.exec, |ctx| {
            *ctx.host_cache.borrow_mut() = Some(host.clone())
        });
        Self::build_cell(sh, &host, None, &mut parts)
    }

    #[allow(clippy::type_complexity)]
    fn build_cell(
        sh: &Arc<Shared>,
        host: &Arc<HostState>,
        recycled: Option<Arc<Cell>>,
        parts: &mut Option<(
            Box<dyn Process>,
            SpawnOptions,
            Option<crossbeam_channel::Sender<Result<Value, Error>>>,
        )>,
    ) -> Result<Arc<Cell>, Error> {
        if host.is_stopping() {
            return Err(host_stopping(&host.id));
        }
        host.reserve()?;
        let (process, opts, exit_tx) = parts.take().expect("cell parts used once");
        let pid = sh.pidgen.generate(&host.id);
        Ok(match recycled {
            Some(mut c) => {
                Arc::get_mut(&mut c)
                    .expect("pooled cells are uniquely owned")
                    .reinit(pid, opts, host, process, exit_tx);
                c
            }
            None => Arc::new(Cell::new(
                pid,
                opts,
                host.clone(),
                sh.clone(),
                process,
                exit_tx,
            )),
        })
    }

    fn abort_spawn(&self, cell: &Arc<Cell>, host: &HostState) {
        // A killer may have seized the cell between the table insert and here; then it owns
        // the exit path (and releases the slot itself).
        if !cell.state.try_seize() {
            return;
        }
        cell.state.complete();
        cell.queue.close();
        // SAFETY: seized above (READY → RUNNING by this thread), then COMPLETE: exclusive.
        let p = unsafe { cell.with_owned(|o| o.process.take()) };
        if let Some(mut p) = p
            && catch_unwind(AssertUnwindSafe(|| p.close())).is_err()
        {
            log::error!(pid:% = cell.pid; "process close panicked after a failed spawn");
        }
        host.release();
    }

    fn run_on_start(&self, cell: &Cell) -> Result<(), Error> {
        let call = |l: &dyn Lifecycle| match catch_unwind(AssertUnwindSafe(|| {
            l.on_start(&cell.pid, &cell.options)
        })) {
            Ok(r) => r,
            Err(p) => Err(panic_error(p)),
        };
        if let Some(ls) = self.shared.lifecycles() {
            for l in ls.iter() {
                call(&**l)?;
            }
        }
        if let Some(l) = &cell.host.lifecycle {
            call(&**l)?;
        }
        Ok(())
    }

    /// Send a package. A live local process gets it straight into its event queue; anything
    /// else goes through the router (other hosts, peers, other nodes).
    ///
    /// # Errors
    /// `NotFound` "process not found" for a dead local PID; `Unavailable` "host is shutting
    /// down"; the router's errors ("host not found", "node not found", …).
    #[inline]
    pub fn send(&self, pkg: Package) -> Result<(), Error> {
        let sh = &self.shared;
        if !sh.node.is_local(&pkg.to) {
            return sh.router.send(pkg);
        }
        let Some(key) = pkg.to.uniq_num() else {
            return sh.router.send(pkg);
        };
        let slot = (key as usize) & (SEND_CACHE - 1);
        // Fast path: a worker's send cache (no table lock, no reference-count traffic).
        let mut pkg = Some(pkg);
        let hit = with_current(&sh.exec, |ctx| {
            let cache = ctx.send_cache.borrow();
            match &cache[slot] {
                Some(c)
                    if same_local_pid(&c.pid, &pkg.as_ref().expect("package").to)
                        && !c.state.is_complete() =>
                {
                    Some(deliver_on(ctx, c, pkg.take().expect("package")))
                }
                _ => None,
            }
        })
        .flatten();
        if let Some(r) = hit {
            return r;
        }
        let pkg = pkg.expect("package not consumed on a cache miss");
        match sh.table.get(&pkg.to) {
            Some(cell) => {
                let mut pkg = Some(pkg);
                let on_worker = with_current(&sh.exec, |ctx| {
                    let r = deliver_on(ctx, &cell, pkg.take().expect("package"));
                    ctx.send_cache.borrow_mut()[slot] = Some(cell.clone());
                    r
                });
                match on_worker {
                    Some(r) => r,
                    None => deliver(&cell, pkg.take().expect("package")),
                }
            }
            // Not a live process of ours: another host (mailbox, function pool), or dead.
            None => sh.router.send(pkg),
        }
    }

    /// Convenience: send `payloads` on `topic` from `from` to `to`.
    ///
    /// # Errors
    /// As [`Handle::send`].
    pub fn send_to(
        &self,
        from: &Pid,
        to: &Pid,
        topic: &str,
        payloads: Vec<Value>,
    ) -> Result<(), Error> {
        self.send(Package::new(from.clone(), to.clone(), topic, payloads))
    }

    /// Hard kill: the process exits with `Internal` "process terminated" without running
    /// further steps (a step in progress finishes first — there is no preemption). Pending
    /// completions are discarded.
    ///
    /// # Errors
    /// `NotFound` "process not found".
    pub fn terminate(&self, pid: &Pid) -> Result<(), Error> {
        let cell = self
            .shared
            .table
            .get(pid)
            .ok_or_else(|| process_not_found(pid))?;
        self.kill(&cell, KILL_TERMINATE);
        Ok(())
    }

    pub(crate) fn kill(&self, cell: &Arc<Cell>, code: u32) {
        debug_assert!(code != 0);
        cell.kill.store(code, SeqCst);
        if cell.state.try_seize() {
            let err = cell.kill_error().expect("kill code set");
            finish(self, cell, Err(err));
        } else {
            // RUNNING: the owner sees the flag after its step (the wake-up bit makes it look).
            wake(cell);
        }
    }

    /// Graceful cancel: deliver a CANCEL event (`pid.cancel`, topic `@pid/events`) from
    /// `from` with `reason`. Cooperative: the process decides what to do.
    ///
    /// # Errors
    /// As [`Handle::send`].
    pub fn cancel(&self, pid: &Pid, from: &Pid, reason: &str) -> Result<(), Error> {
        self.send(cancel_package(from, pid, reason))
    }

    /// True when `pid` is a live local process.
    pub fn is_alive(&self, pid: &Pid) -> bool {
        self.shared.table.get(pid).is_some()
    }

    // ===== hosts =====

    /// Add a process host and register it on the relay node under `id`.
    ///
    /// # Errors
    /// `AlreadyExists` "host already exists".
    pub fn add_host(&self, id: &str, cfg: HostConfig) -> Result<(), Error> {
        let host = Arc::new(HostState::new(id, cfg));
        {
            let mut g = self.shared.hosts.write().unwrap_or_else(|p| p.into_inner());
            if g.contains_key(id) {
                return Err(Error::new(Kind::ALREADY_EXISTS, "host already exists")
                    .with_detail("host_id", id));
            }
            let recv = Arc::new(HostReceiver {
                host: host.clone(),
                rt: Arc::downgrade(&self.shared),
            });
            self.shared.node.register_host(id, recv)?;
            g.insert(id.to_owned(), host);
        }
        Ok(())
    }

    /// Stop a host gracefully: reject new spawns and sends, CANCEL its processes, wait up to
    /// `timeout`, then force the rest (spec §2.12 for one host). The host stays registered.
    ///
    /// # Errors
    /// `NotFound` "host not found".
    pub fn stop_host(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<crate::runtime::StopReport, Error> {
        let host = self
            .shared
            .host(id)
            .ok_or_else(|| crate::relay::host_not_found(id, self.shared.node.id()))?;
        host.stopping.store(true, SeqCst);
        Ok(self.stop_where(timeout, |c| Arc::ptr_eq(&c.host, &host)))
    }

    /// Remove a host: terminate its remaining processes and unregister it from the node.
    ///
    /// # Errors
    /// `NotFound` "host not found".
    pub fn remove_host(&self, id: &str) -> Result<(), Error> {
        let host = {
            let mut g = self.shared.hosts.write().unwrap_or_else(|p| p.into_inner());
            g.remove(id)
                .ok_or_else(|| crate::relay::host_not_found(id, self.shared.node.id()))?
        };
        host.stopping.store(true, SeqCst);
        host.removed.store(true, SeqCst);
        self.shared.node.unregister_host(id);
        for c in self.shared.table.snapshot() {
            if Arc::ptr_eq(&c.host, &host) {
                self.kill(&c, KILL_TERMINATE);
            }
        }
        Ok(())
    }

    /// Ids of the process hosts (sorted).
    pub fn hosts(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .shared
            .hosts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Add a global lifecycle hook (runs for processes spawned from now on, before host hooks).
    pub fn add_lifecycle(&self, l: Arc<dyn Lifecycle>) {
        let mut g = self
            .shared
            .lifecycles
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<Arc<dyn Lifecycle>> = g.iter().cloned().collect();
        v.push(l);
        *g = v.into();
        self.shared.has_lifecycles.store(true, SeqCst);
    }

    // ===== timers and I/O =====

    /// Complete `done` with `Ok(nil)` at `deadline` (cancel → `Canceled` "timer stopped").
    pub fn sleep(&self, deadline: Instant, done: Completer) -> TimerHandle {
        self.shared.reactor.sleep(deadline, done)
    }

    /// Send one message `{from: {|}, to, topic, payloads: [at]}` at `deadline` (`at` = float unix
    /// seconds of the firing).
    pub fn timer(&self, deadline: Instant, to: &Pid, topic: &str) -> TimerHandle {
        self.shared
            .reactor
            .after(deadline, Pid::zero(), to.clone(), topic.to_owned())
    }

    /// Send `{from: {|}, to, topic, [at]}` every `period`, dropping missed ticks; stops by
    /// itself when `to` no longer exists.
    pub fn ticker(&self, period: Duration, to: &Pid, topic: &str) -> TimerHandle {
        self.shared
            .reactor
            .ticker(period, Pid::zero(), to.clone(), topic.to_owned())
    }

    /// Register a mio source with the runtime's poller.
    ///
    /// # Errors
    /// The OS error from `epoll_ctl`.
    pub fn register_io<S: mio::event::Source + ?Sized>(
        &self,
        source: &mut S,
        interest: mio::Interest,
    ) -> Result<IoHandle, Error> {
        self.shared.reactor.register(source, interest)
    }

    /// Install SIGINT/SIGTERM handling (on first use) and add `f` to the callbacks run on the
    /// first signal; a second signal exits the process with status 1.
    pub fn on_shutdown_signal(&self, f: impl Fn() + Send + Sync + 'static) {
        self.shared.reactor.on_signal(Arc::new(f));
    }

    /// Behave as if SIGTERM arrived (run the callbacks; a second call exits with status 1).
    pub fn raise_shutdown_signal(&self) {
        self.shared.reactor.shared.signal();
    }

    // ===== services =====

    /// The command dispatcher.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.shared.dispatcher
    }
    /// The local relay node.
    pub fn node(&self) -> &Arc<Node> {
        &self.shared.node
    }
    /// The router (local → peer → internode).
    pub fn router(&self) -> &Router {
        &self.shared.router
    }
    /// The event bus.
    pub fn bus(&self) -> &Bus {
        &self.shared.bus
    }
    /// The PID generator.
    pub fn pidgen(&self) -> &PidGen {
        &self.shared.pidgen
    }
    /// The application context.
    pub fn app_context(&self) -> &AppContext {
        &self.shared.app
    }
    /// Register a non-process host (e.g. a [`Mailbox`](crate::relay::Mailbox)) on the node.
    ///
    /// # Errors
    /// "host already exists".
    pub fn register_receiver(&self, id: &str, r: Arc<dyn RelayReceiver>) -> Result<(), Error> {
        self.shared.node.register_host(id, r)
    }

    // ===== introspection =====

    /// Executor and process counters.
    pub fn stats(&self) -> RuntimeStats {
        RuntimeStats::collect(&self.shared)
    }

    /// All live processes.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.shared
            .table
            .snapshot()
            .iter()
            .map(|c| ProcessInfo::of(c))
            .collect()
    }

    /// One live process.
    pub fn process_info(&self, pid: &Pid) -> Option<ProcessInfo> {
        self.shared.table.get(pid).map(|c| ProcessInfo::of(&c))
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.shared.workers
    }
}
