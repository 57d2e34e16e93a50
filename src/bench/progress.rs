//! The progress indicator: one status line on stderr, redrawn every [`REDRAW`] while a run
//! is in progress — label, percentage of the pattern's progress count
//! ([`Params::progress_total`](super::options::Params::progress_total), published from Lua
//! with `bench.progress`) and elapsed time. The line is erased when the run ends, so the
//! report that follows is clean. The caller turns it on only when stderr is a terminal.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::probe;

/// Redraw period.
pub const REDRAW: Duration = Duration::from_millis(100);

/// A running indicator; dropping it stops and erases it.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Start showing `label` with the progress count out of `total`.
    pub fn start(label: String, total: u64) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wippy-bench-progress".into())
            .spawn(move || draw_loop(&label, total, &s))
            .ok();
        Progress { stop, thread }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The status line for `done` of `total` after `elapsed`.
pub fn line(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let pct = if total == 0 {
        0.0
    } else {
        (done.min(total) as f64 * 100.0 / total as f64).min(100.0)
    };
    let width = 20usize;
    let filled = ((pct / 100.0) * width as f64).round() as usize;
    format!(
        "{label} [{}{}] {pct:5.1}% {:6.1}s",
        "#".repeat(filled),
        "-".repeat(width - filled),
        elapsed.as_secs_f64()
    )
}

fn draw_loop(label: &str, total: u64, stop: &AtomicBool) {
    let started = Instant::now();
    let mut err = std::io::stderr();
    let mut last_len = 0;
    while !stop.load(Ordering::Relaxed) {
        let l = line(label, probe::progress(), total, started.elapsed());
        last_len = l.len();
        let _ = write!(err, "\r{l}");
        let _ = err.flush();
        std::thread::sleep(REDRAW);
    }
    let _ = write!(err, "\r{}\r", " ".repeat(last_len));
    let _ = err.flush();
}
