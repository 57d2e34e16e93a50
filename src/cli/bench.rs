//! `wippy bench <pattern> [options]`: boot the runtime with the built-in bench app and
//! measure one pattern (see [`crate::bench`] and `docs/benchmarks.md`).
//!
//! Output: with `--json`, one JSON object per measured run on its own line (stdout), printed
//! as each run finishes; otherwise a progress line on stderr while it runs (when stderr is
//! a terminal), then a summary table (stdout). Exit status 0, or 1 with `Error: <msg>` when
//! an option is invalid, the app does not boot or a run fails its checks.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;

use super::{GlobalArgs, fail, init_logging};
use crate::bench::{self, BenchOptions, Params, Pattern, Sizes};
use crate::config::parse_duration;

/// `wippy bench` arguments.
#[derive(Debug, Args)]
#[command(after_help = "\
Patterns (sizes and defaults):
  spawn     N trivial processes spawned and exited       --procs 100000
  pingpong  two processes, M round trips                 --messages 1000000
  ring      K processes pass a token L laps              --procs 10000 --laps 100
  fanin     S senders x M messages to one receiver       --senders 1000 --messages 1000
  call      funcs.call of a trivial function, M times    --messages 100000
  idle      P idle processes; resident bytes each        --procs 50000
  latency   open-loop load with CPU-heavy processes      --rate 100000 --duration 5s
            running; delivery latency percentiles        --receivers 16 --hogs 2/worker
                                                         --work 1000000
")]
pub struct BenchArgs {
    /// The pattern: spawn, pingpong, ring, fanin, call, idle or latency.
    #[arg(value_name = "PATTERN", value_parser = parse_pattern)]
    pub pattern: Pattern,
    /// Worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Pin workers to CPUs (default).
    #[arg(long, overrides_with = "no_pin")]
    pub pin: bool,
    /// Let the OS place workers.
    #[arg(long = "no-pin", overrides_with = "pin")]
    pub no_pin: bool,
    /// Measured runs; the report gives the median and the spread.
    #[arg(long, value_name = "R", default_value_t = 3)]
    pub runs: usize,
    /// Unmeasured runs before the measured ones.
    #[arg(long, value_name = "W", default_value_t = 0)]
    pub warmup: usize,
    /// One JSON object per run on its own line instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Longest one run may take (Go duration; default 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_go_duration)]
    pub timeout: Option<Duration>,
    /// Processes (spawn, ring, idle).
    #[arg(long, value_name = "N")]
    pub procs: Option<u64>,
    /// Round trips (pingpong), messages per sender (fanin), calls (call).
    #[arg(long, value_name = "M")]
    pub messages: Option<u64>,
    /// Ring laps.
    #[arg(long, value_name = "L")]
    pub laps: Option<u64>,
    /// Fan-in senders.
    #[arg(long, value_name = "S")]
    pub senders: Option<u64>,
    /// Latency: messages per second.
    #[arg(long, value_name = "R")]
    pub rate: Option<u64>,
    /// Latency: how long the load runs (Go duration, e.g. 5s).
    #[arg(long, value_name = "DURATION", value_parser = parse_go_duration)]
    pub duration: Option<Duration>,
    /// Latency: receiving processes.
    #[arg(long, value_name = "K")]
    pub receivers: Option<u64>,
    /// Latency: CPU-heavy background processes (0 = none).
    #[arg(long, value_name = "H")]
    pub hogs: Option<u64>,
    /// Latency: loop iterations a background process runs between inbox polls.
    #[arg(long, value_name = "W")]
    pub work: Option<u64>,
}

fn parse_pattern(s: &str) -> Result<Pattern, String> {
    s.parse()
}

fn parse_go_duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

impl BenchArgs {
    /// The session options these arguments ask for.
    pub fn options(&self) -> BenchOptions {
        let mut o = BenchOptions::new(self.pattern);
        o.workers = self.workers;
        o.pin = !self.no_pin;
        o.runs = self.runs;
        o.warmup = self.warmup;
        if let Some(t) = self.timeout {
            o.timeout = t;
        }
        o.sizes = Sizes {
            procs: self.procs,
            messages: self.messages,
            laps: self.laps,
            senders: self.senders,
            rate: self.rate,
            duration: self.duration,
            receivers: self.receivers,
            hogs: self.hogs,
            work: self.work,
        };
        o.progress = !self.json && std::io::stderr().is_terminal();
        o
    }
}

/// Run `wippy bench`; returns the exit code.
pub fn run(g: &GlobalArgs, a: BenchArgs) -> i32 {
    // Errors only unless asked: the latency pattern's CPU hogs are preempted on purpose, and
    // the engine logs every preemption as a warning.
    init_logging(g, None, log::LevelFilter::Error);
    let opts = a.options();
    let json = a.json;
    let result = bench::run(&opts, |rec| {
        if json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", rec.to_json_line());
            let _ = out.flush();
        }
    });
    match result {
        Ok(records) => {
            if !json && let Some(first) = records.first() {
                // The sizes the session used (resolved with the real worker count).
                match Params::resolve(opts.pattern, &opts.sizes, first.workers) {
                    Ok(p) => print!("{}", bench::report::table(&p, &records)),
                    Err(e) => return fail(g, e),
                }
            }
            0
        }
        Err(e) => fail(g, format!("bench {}: {e}", opts.pattern)),
    }
}
