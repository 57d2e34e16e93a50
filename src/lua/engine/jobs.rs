//! The blocking-job pool: where `Op::Job` closures run (registry apply, terminal reads, …).
//!
//! Jobs block (disk, stdin, a registry transaction), so they never run on a scheduler worker.
//! Spawning one OS thread per job cost ~30–60 µs and a fresh stack per call; this pool keeps
//! threads around instead:
//!
//! * [`submit`] queues the job (FIFO). If a thread is idle it is woken; otherwise, while
//!   fewer than [`MAX_THREADS`] exist, a new one is started for it; at the cap the job waits
//!   in the queue for the next free thread.
//! * A thread takes jobs until the queue stays empty for [`IDLE_TIMEOUT`], then exits, so an
//!   idle runtime holds no job threads.
//!
//! Invariants (under the state mutex): `idle <= threads <= MAX_THREADS`; after `submit`
//! returns, `queue.len() <= idle` or `threads == MAX_THREADS` (every queued job has a
//! waiting thread that was notified, or the cap is reached and it waits its turn); a thread
//! counted in `idle` is blocked in (or just woken from) the condition variable and re-checks
//! the queue before it may exit. A panicking job is caught and does not kill its thread.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use wippy_rt::Error;

/// One queued job.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Most job threads alive at once. Jobs may block indefinitely (a terminal read waits for a
/// line), so the cap is generous: it only bounds a runaway burst (thousands of processes
/// applying registry changes at once), it does not size the normal case.
pub const MAX_THREADS: usize = 64;

/// How long an idle job thread waits for work before exiting: long enough that bursts of
/// registry operations reuse threads, short enough that an idle node holds none.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

struct Pool {
    state: Mutex<State>,
    cv: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(State::default()),
        cv: Condvar::new(),
    })
}

/// Run `job` on a pool thread (see the module docs). Fails only when no thread exists and
/// none can be started; the job is then dropped (its completer with it).
pub(crate) fn submit(job: Job) -> Result<(), Error> {
    let p = pool();
    let mut s = p.state.lock().unwrap_or_else(|e| e.into_inner());
    s.queue.push_back(job);
    if s.idle > 0 {
        p.cv.notify_one();
    }
    // Idle threads stay counted until they wake and re-take the lock, so more queued jobs
    // than idle threads means some job has nobody coming for it.
    if s.queue.len() <= s.idle || s.threads >= MAX_THREADS {
        return Ok(());
    }
    s.threads += 1;
    drop(s);
    let started = std::thread::Builder::new()
        .name("wippy-lua-job".into())
        .spawn(|| worker(pool()));
    if let Err(e) = started {
        let mut s = p.state.lock().unwrap_or_else(|e| e.into_inner());
        s.threads -= 1;
        if s.threads == 0 {
            // Nobody will ever run the queue: report the failure for the newest job.
            s.queue.pop_back();
            return Err(Error::internal(format!("starting a blocking job: {e}")));
        }
        // Other threads exist and will drain the queue in order.
    }
    Ok(())
}

/// A pool thread: run queued jobs; exit after [`IDLE_TIMEOUT`] without work.
fn worker(p: &'static Pool) {
    let mut s = p.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = s.queue.pop_front() {
            drop(s);
            // A panicking job must not take the thread (and its count) with it; the panic
            // drops the job's completer, which fails the waiting task.
            let _ = catch_unwind(AssertUnwindSafe(job));
            s = p.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        s.idle += 1;
        let (g, timeout) =
            p.cv.wait_timeout(s, IDLE_TIMEOUT)
                .unwrap_or_else(|e| e.into_inner());
        s = g;
        s.idle -= 1;
        if timeout.timed_out() && s.queue.is_empty() {
            s.threads -= 1;
            return;
        }
    }
}

/// Threads currently alive and idle (for tests and diagnostics).
pub fn stats() -> (usize, usize) {
    let s = pool().state.lock().unwrap_or_else(|e| e.into_inner());
    (s.threads, s.idle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    #[test]
    fn runs_every_job_even_after_a_panic() {
        let ran = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        submit(Box::new(|| panic!("job panics"))).unwrap();
        for _ in 0..200 {
            let ran = ran.clone();
            let tx = tx.clone();
            submit(Box::new(move || {
                ran.fetch_add(1, Ordering::SeqCst);
                tx.send(()).unwrap();
            }))
            .unwrap();
        }
        for _ in 0..200 {
            rx.recv_timeout(Duration::from_secs(30)).unwrap();
        }
        assert_eq!(ran.load(Ordering::SeqCst), 200);
        let (threads, idle) = stats();
        assert!(threads <= MAX_THREADS && idle <= threads);
    }

    #[test]
    fn blocked_jobs_do_not_starve_others() {
        // One job blocks until a later one runs: needs a second thread.
        let (tx, rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        submit(Box::new(move || {
            rx.recv_timeout(Duration::from_secs(30)).unwrap();
            done_tx.send(()).unwrap();
        }))
        .unwrap();
        submit(Box::new(move || tx.send(()).unwrap())).unwrap();
        done_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    }
}
