//! A bench session: boot the bench app once, run the pattern `warmup + runs` times, check
//! and record every measured run.
//!
//! # One run
//!
//! 1. The progress count is reset and the peak-RSS counter is reset to the current RSS
//!    ([`rss::reset_peak`]);
//! 2. driver patterns: the driver is started on [`HOST`] and the session waits for its exit
//!    (at most `timeout`: a lost message shows up as a run that never ends) and checks its
//!    result ([`patterns::check`]); `latency` runs [`latency::run`];
//! 3. the session waits until no process is left on [`HOST`] ([`DRAIN_TIMEOUT`]): every
//!    process the pattern started has exited;
//! 4. the peak RSS of the run is read.
//!
//! Only one session runs at a time in an OS process ([`SESSION`]): the probe's progress
//! counter and latency histogram are process-wide, and two benchmarks sharing the CPUs would
//! measure each other.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use wippy_rt::{ExitWatch, Handle, Pid, SpawnOptions, Value};

use super::app::{BenchApp, HOST, StartError};
use super::options::{BenchOptions, Params};
use super::patterns::{self, Measured};
use super::progress::Progress;
use super::report::RunRecord;
use super::{latency, probe, rss};
use crate::system::System;

/// How long processes of a finished run may take to exit.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Poll period while waiting for processes to exit.
const DRAIN_POLL: Duration = Duration::from_millis(2);

/// Serialises sessions within one OS process.
static SESSION: Mutex<()> = Mutex::new(());

/// Why a session failed.
#[derive(Debug)]
pub enum BenchError {
    /// Bad sizes or options.
    Options(String),
    /// The bench app did not boot.
    Start(StartError),
    /// A run failed: a count was off, a process failed, a run timed out.
    Run {
        /// 1-based run number (warm-up runs count).
        run: usize,
        /// What went wrong.
        message: String,
    },
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Options(m) => f.write_str(m),
            BenchError::Start(e) => write!(f, "{e}"),
            BenchError::Run { run, message } => write!(f, "run {run}: {message}"),
        }
    }
}

impl std::error::Error for BenchError {}

/// Processes the harness started; those still alive when this is dropped are terminated
/// (a failed run must not leave a CPU hog spinning).
pub(crate) struct Started {
    handle: Handle,
    pids: Vec<Pid>,
}

impl Started {
    pub(crate) fn new(handle: Handle) -> Started {
        Started {
            handle,
            pids: Vec::new(),
        }
    }

    /// Start process entry `entry` on [`HOST`] with `input` (one argument per value), as a
    /// host starts an entry: its factory creates the process, the runtime runs its `init`
    /// (the Lua chunk) on this thread and queues it.
    pub(crate) fn start(
        &mut self,
        sys: &System,
        entry: &str,
        input: Vec<Value>,
    ) -> Result<(Pid, ExitWatch), String> {
        let factory = sys
            .factories
            .require(entry)
            .map_err(|e| format!("start {entry}: {e}"))?;
        let process = factory
            .create()
            .map_err(|e| format!("start {entry}: {e}"))?;
        let opts = SpawnOptions {
            source: Some(entry.to_string()),
            ..SpawnOptions::default()
        };
        let (pid, watch) = sys
            .handle
            .spawn_watched(HOST, process, factory.default_method(), input, opts)
            .map_err(|e| format!("start {entry}: {e}"))?;
        self.pids.push(pid.clone());
        Ok((pid, watch))
    }

    /// The run ended normally: nothing to terminate.
    pub(crate) fn forget_all(&mut self) {
        self.pids.clear();
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for pid in self.pids.drain(..) {
            let _ = self.handle.terminate(&pid);
        }
    }
}

/// Wait for a watched process to exit by `deadline`; its result value. A timeout error
/// lists what is still alive on the bench host ([`describe_live`]).
pub(crate) fn wait_exit(
    h: &Handle,
    watch: &ExitWatch,
    deadline: Instant,
    what: &str,
) -> Result<Value, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    match watch.wait_timeout(left) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(format!("{what} failed: {e}")),
        None => Err(timed_out(h, what)),
    }
}

#[cold]
fn timed_out(h: &Handle, what: &str) -> String {
    format!(
        "{what} did not finish in time (a lost message or a stuck process); alive on {HOST}: {}",
        describe_live(h)
    )
}

/// Most process groups listed in a timeout message.
const DESCRIBE_MAX: usize = 12;

/// The live processes on the bench host grouped by entry and state, with their steps and
/// queued events: `2 × bench:latency_hog running (steps 340..352, queued 0..1), …`.
pub fn describe_live(h: &Handle) -> String {
    use std::collections::BTreeMap;
    /// count, fewest / most steps, fewest / most queued events.
    type Group = (usize, u64, u64, usize, usize);
    let mut groups: BTreeMap<(String, &'static str), Group> = BTreeMap::new();
    for p in h.processes().into_iter().filter(|p| p.host == HOST) {
        let key = (p.source.clone().unwrap_or_default(), p.state.name());
        let g = groups.entry(key).or_insert((0, u64::MAX, 0, usize::MAX, 0));
        g.0 += 1;
        g.1 = g.1.min(p.steps);
        g.2 = g.2.max(p.steps);
        g.3 = g.3.min(p.queued_events);
        g.4 = g.4.max(p.queued_events);
    }
    if groups.is_empty() {
        return "nothing".into();
    }
    let n = groups.len();
    let mut parts: Vec<String> = groups
        .into_iter()
        .take(DESCRIBE_MAX)
        .map(|((src, state), (c, s0, s1, q0, q1))| {
            format!("{c} × {src} {state} (steps {s0}..{s1}, queued events {q0}..{q1})")
        })
        .collect();
    if n > DESCRIBE_MAX {
        parts.push(format!("… {} more groups", n - DESCRIBE_MAX));
    }
    parts.join(", ")
}

/// Live processes on the bench host.
fn live_on_host(h: &Handle) -> usize {
    h.processes().iter().filter(|p| p.host == HOST).count()
}

/// Wait until no process is left on the bench host.
fn drain(h: &Handle) -> Result<(), String> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let left = live_on_host(h);
        if left == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{left} processes still alive on {HOST} {}s after the run ended",
                DRAIN_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(DRAIN_POLL);
    }
}

/// A booted bench app, ready to run patterns.
pub struct Session {
    bench: BenchApp,
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("bench", &self.bench)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Boot the bench app (waits for any other session in this OS process to end).
    ///
    /// # Errors
    /// [`BenchError::Start`].
    pub fn start(workers: Option<usize>, pin: bool) -> Result<Session, BenchError> {
        let guard = SESSION.lock().unwrap_or_else(|p| p.into_inner());
        let bench = BenchApp::start(workers, pin).map_err(BenchError::Start)?;
        Ok(Session {
            bench,
            _one_at_a_time: guard,
        })
    }

    /// The system of the booted app.
    pub fn system(&self) -> &Arc<System> {
        self.bench.app.system()
    }

    /// Boot time.
    pub fn boot(&self) -> Duration {
        self.bench.boot
    }

    /// Worker threads of the runtime.
    pub fn workers(&self) -> usize {
        self.system().handle.workers()
    }

    /// Whether the workers are pinned.
    pub fn pinned(&self) -> bool {
        self.system().handle.stats().pinned
    }

    /// Run the pattern once and check it (see the module docs). Returns the measurement and
    /// the run's peak RSS.
    ///
    /// # Errors
    /// Why the run failed (a count, a process failure, a timeout, leftover processes).
    pub fn run_once(&self, p: &Params, timeout: Duration) -> Result<(Measured, u64), String> {
        let sys = self.system();
        probe::reset_progress();
        rss::reset_peak();
        let measured = match self.measure(p, timeout) {
            Ok(m) => m,
            Err(e) => {
                // Leave the session usable (and its shutdown quick): whatever the failed run
                // left on the bench host is terminated.
                terminate_all(&sys.handle);
                return Err(e);
            }
        };
        drain(&sys.handle)?;
        let peak = rss::read().map(|m| m.peak_bytes).unwrap_or(0);
        Ok((measured, peak))
    }

    fn measure(&self, p: &Params, timeout: Duration) -> Result<Measured, String> {
        let sys = self.system();
        match patterns::driver_entry(p.pattern) {
            Some(entry) => {
                let mut started = Started::new(sys.handle.clone());
                let (_, watch) = started.start(sys, entry, vec![patterns::driver_input(p)])?;
                let r = wait_exit(&sys.handle, &watch, Instant::now() + timeout, entry)?;
                started.forget_all();
                patterns::check(p, &r)
            }
            None => latency::run(sys, p, timeout),
        }
    }
}

/// Terminate every process on the bench host.
fn terminate_all(h: &Handle) {
    for info in h.processes() {
        if info.host == HOST {
            let _ = h.terminate(&info.pid);
        }
    }
}

/// Run a whole session: boot, `warmup` unmeasured runs, `runs` measured runs. `on_run` sees
/// every measured run as soon as it is checked (JSON lines are printed from there).
///
/// # Errors
/// [`BenchError`]; runs before the failing one were already passed to `on_run`.
pub fn run(
    opts: &BenchOptions,
    mut on_run: impl FnMut(&RunRecord),
) -> Result<Vec<RunRecord>, BenchError> {
    if opts.runs == 0 {
        return Err(BenchError::Options("--runs must be at least 1".into()));
    }
    if opts.workers == Some(0) {
        return Err(BenchError::Options("--workers must be at least 1".into()));
    }
    // Validate the sizes before booting (the hog default needs the worker count: use the
    // requested one, or the CPUs, as the runtime will).
    let guess = opts.workers.unwrap_or_else(available_cpus);
    Params::resolve(opts.pattern, &opts.sizes, guess).map_err(BenchError::Options)?;
    let session = Session::start(opts.workers, opts.pin)?;
    let params = Params::resolve(opts.pattern, &opts.sizes, session.workers())
        .map_err(BenchError::Options)?;
    let total = opts.warmup + opts.runs;
    let mut records = Vec::with_capacity(opts.runs);
    for i in 0..total {
        let warm = i < opts.warmup;
        let label = if warm {
            format!("warm-up {}/{}", i + 1, opts.warmup)
        } else {
            format!("run {}/{}", i - opts.warmup + 1, opts.runs)
        };
        let indicator = opts
            .progress
            .then(|| Progress::start(format!("{} {label}", opts.pattern), params.progress_total()));
        let r = session.run_once(&params, opts.timeout);
        drop(indicator);
        let (m, peak) = r.map_err(|message| BenchError::Run {
            run: i + 1,
            message,
        })?;
        if warm {
            continue;
        }
        let rec = RunRecord::new(
            &params,
            records.len() + 1,
            session.workers(),
            session.pinned(),
            session.boot(),
            &m,
            peak,
        );
        on_run(&rec);
        records.push(rec);
    }
    Ok(records)
}

/// CPUs this process may run on (the runtime's default worker count).
fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
