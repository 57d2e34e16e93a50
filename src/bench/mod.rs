//! `wippy bench`: an end-to-end benchmark harness that boots the real runtime and measures
//! one pattern on real Lua processes (see `docs/benchmarks.md`, "End-to-end").
//!
//! | file | what |
//! |---|---|
//! | [`options`] | [`Pattern`], sizes and their defaults ([`Params`]), session options |
//! | [`app`] | the bench app (YAML + Lua under `apps/`, compiled in) and booting it |
//! | [`probe`] | the `bench` Lua module: monotonic clock, progress, latency histogram, RSS |
//! | [`patterns`] | driver-based patterns: the driver's argument and the checks of its counts |
//! | [`latency`] | the open-loop latency pattern with the CPU-heavy background mix |
//! | [`runner`] | a session: boot once, warm-up and measured runs, leftover-process check |
//! | [`rss`] | `/proc/self/status` (VmRSS, VmHWM) and the peak reset |
//! | [`progress`] | the progress line on stderr |
//! | [`report`] | the per-run record (`--json` line) and the human summary table |
//!
//! # Measuring
//!
//! Boot is excluded and reported separately. Driver patterns time themselves inside Lua with
//! `bench.now()` (a monotonic clock shared with the harness) around the measured part only;
//! `latency` times its load generator. Every count a run reports comes from the Lua
//! processes and is checked before the run is recorded; a run that loses or duplicates a
//! message fails instead of producing a number.
//!
//! ```no_run
//! use wippy::bench::{BenchOptions, Pattern, run};
//! let mut opts = BenchOptions::new(Pattern::Ring);
//! opts.sizes.procs = Some(100);
//! opts.sizes.laps = Some(10);
//! opts.runs = 1;
//! let records = run(&opts, |r| println!("{}", r.to_json_line())).expect("bench");
//! assert_eq!(records[0].ops, 1000);
//! ```

pub mod app;
pub mod latency;
pub mod options;
pub mod patterns;
pub mod probe;
pub mod progress;
pub mod report;
pub mod rss;
pub mod runner;

pub use options::{BenchOptions, Params, Pattern, Sizes};
pub use report::{RunRecord, Spread};
pub use runner::{BenchError, Session, run};
