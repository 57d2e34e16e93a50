//! What to run: the pattern, its sizes and the session options.
//!
//! Sizes are given as optional named values ([`Sizes`]); [`Params::resolve`] fills in the
//! pattern's defaults and rejects sizes that do not apply to the pattern and sizes of zero,
//! with a message naming the flag.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use wippy_rt::Value;

/// One benchmark pattern (see `docs/benchmarks.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// N trivial processes spawned and exited.
    Spawn,
    /// Two processes, M round trips.
    Pingpong,
    /// K processes passing a token L laps.
    Ring,
    /// S senders × M messages to one receiver.
    Fanin,
    /// `funcs.call` of a trivial function, M times.
    Call,
    /// P idle processes; resident bytes per process.
    Idle,
    /// Open-loop message load with CPU-heavy background processes; delivery latency.
    Latency,
}

impl Pattern {
    /// Every pattern, in documentation order.
    pub const ALL: [Pattern; 7] = [
        Pattern::Spawn,
        Pattern::Pingpong,
        Pattern::Ring,
        Pattern::Fanin,
        Pattern::Call,
        Pattern::Idle,
        Pattern::Latency,
    ];

    /// The pattern's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Spawn => "spawn",
            Pattern::Pingpong => "pingpong",
            Pattern::Ring => "ring",
            Pattern::Fanin => "fanin",
            Pattern::Call => "call",
            Pattern::Idle => "idle",
            Pattern::Latency => "latency",
        }
    }

    /// What one operation is (for the report).
    pub fn op_name(self) -> &'static str {
        match self {
            Pattern::Spawn => "process (spawn + message + exit)",
            Pattern::Pingpong => "round trip",
            Pattern::Ring => "hop",
            Pattern::Fanin => "message",
            Pattern::Call => "call",
            Pattern::Idle => "idle process (spawn + park)",
            Pattern::Latency => "delivered message",
        }
    }

    /// The sizes the pattern accepts.
    pub fn sizes(self) -> &'static [SizeKey] {
        use SizeKey::*;
        match self {
            Pattern::Spawn => &[Procs],
            Pattern::Pingpong => &[Messages],
            Pattern::Ring => &[Procs, Laps],
            Pattern::Fanin => &[Senders, Messages],
            Pattern::Call => &[Messages],
            Pattern::Idle => &[Procs],
            Pattern::Latency => &[Rate, Duration, Receivers, Hogs, Work],
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Pattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Pattern, String> {
        Pattern::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Pattern::ALL.iter().map(|p| p.name()).collect();
                format!("unknown pattern '{s}' (one of: {})", names.join(", "))
            })
    }
}

/// A size option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeKey {
    /// `--procs`: processes (spawn N, ring K, idle P).
    Procs,
    /// `--messages`: messages / round trips / calls (pingpong M, fanin M per sender, call M).
    Messages,
    /// `--laps`: ring laps L.
    Laps,
    /// `--senders`: fan-in senders S.
    Senders,
    /// `--rate`: latency load, messages per second.
    Rate,
    /// `--duration`: latency load duration.
    Duration,
    /// `--receivers`: latency receivers.
    Receivers,
    /// `--hogs`: latency background CPU-heavy processes.
    Hogs,
    /// `--work`: latency hog loop iterations between inbox polls.
    Work,
}

impl SizeKey {
    /// The command-line flag.
    pub fn flag(self) -> &'static str {
        match self {
            SizeKey::Procs => "--procs",
            SizeKey::Messages => "--messages",
            SizeKey::Laps => "--laps",
            SizeKey::Senders => "--senders",
            SizeKey::Rate => "--rate",
            SizeKey::Duration => "--duration",
            SizeKey::Receivers => "--receivers",
            SizeKey::Hogs => "--hogs",
            SizeKey::Work => "--work",
        }
    }
}

/// Sizes as given (None = the pattern's default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sizes {
    /// `--procs`.
    pub procs: Option<u64>,
    /// `--messages`.
    pub messages: Option<u64>,
    /// `--laps`.
    pub laps: Option<u64>,
    /// `--senders`.
    pub senders: Option<u64>,
    /// `--rate` (messages/s).
    pub rate: Option<u64>,
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--receivers`.
    pub receivers: Option<u64>,
    /// `--hogs` (0 = no background load).
    pub hogs: Option<u64>,
    /// `--work`.
    pub work: Option<u64>,
}

impl Sizes {
    fn given(&self, k: SizeKey) -> bool {
        match k {
            SizeKey::Procs => self.procs.is_some(),
            SizeKey::Messages => self.messages.is_some(),
            SizeKey::Laps => self.laps.is_some(),
            SizeKey::Senders => self.senders.is_some(),
            SizeKey::Rate => self.rate.is_some(),
            SizeKey::Duration => self.duration.is_some(),
            SizeKey::Receivers => self.receivers.is_some(),
            SizeKey::Hogs => self.hogs.is_some(),
            SizeKey::Work => self.work.is_some(),
        }
    }
}

/// Default sizes (the defaults; `call` and `idle` are ours).
pub mod defaults {
    /// spawn N.
    pub const SPAWN_PROCS: u64 = 100_000;
    /// pingpong M.
    pub const PINGPONG_MESSAGES: u64 = 1_000_000;
    /// ring K.
    pub const RING_PROCS: u64 = 10_000;
    /// ring L.
    pub const RING_LAPS: u64 = 100;
    /// fanin S.
    pub const FANIN_SENDERS: u64 = 1000;
    /// fanin M per sender.
    pub const FANIN_MESSAGES: u64 = 1000;
    /// call M: a call costs microseconds, so 10⁵ calls take well under a second per run.
    pub const CALL_MESSAGES: u64 = 100_000;
    /// idle P: large enough that the per-process figure settles (allocator slack is spread
    /// over many processes), small enough for a few GB at worst.
    pub const IDLE_PROCS: u64 = 50_000;
    /// latency rate, messages/s (the target rate).
    pub const LATENCY_RATE: u64 = 100_000;
    /// latency duration.
    pub const LATENCY_DURATION: std::time::Duration = std::time::Duration::from_secs(5);
    /// latency receivers: the load is spread round-robin, like requests over connections.
    pub const LATENCY_RECEIVERS: u64 = 16;
    /// latency hogs per worker: two keep every worker's run queue non-empty.
    pub const LATENCY_HOGS_PER_WORKER: u64 = 2;
    /// latency hog loop iterations between inbox polls (≈10–30 ms of Lua per round: far
    /// above any preemption slice, so only preemption keeps the receivers' tails short).
    pub const LATENCY_WORK: u64 = 1_000_000;
}

/// Resolved sizes of one pattern (every field the pattern uses is set).
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// The pattern.
    pub pattern: Pattern,
    /// Processes.
    pub procs: u64,
    /// Messages / round trips / calls.
    pub messages: u64,
    /// Ring laps.
    pub laps: u64,
    /// Fan-in senders.
    pub senders: u64,
    /// Latency rate (messages/s).
    pub rate: u64,
    /// Latency duration.
    pub duration: Duration,
    /// Latency receivers.
    pub receivers: u64,
    /// Latency hogs.
    pub hogs: u64,
    /// Latency hog work per round.
    pub work: u64,
}

impl Params {
    /// Fill in defaults for `pattern` (`workers` sizes the default hog count).
    ///
    /// # Errors
    /// A size the pattern does not take (`--laps does not apply to spawn (it takes --procs)`),
    /// a zero where zero makes no sense, a ring of fewer than 2 processes.
    pub fn resolve(pattern: Pattern, s: &Sizes, workers: usize) -> Result<Params, String> {
        use SizeKey::*;
        let all = [
            Procs, Messages, Laps, Senders, Rate, Duration, Receivers, Hogs, Work,
        ];
        let accepted = pattern.sizes();
        for k in all {
            if s.given(k) && !accepted.contains(&k) {
                let takes: Vec<&str> = accepted.iter().map(|k| k.flag()).collect();
                return Err(format!(
                    "{} does not apply to {pattern} (it takes {})",
                    k.flag(),
                    takes.join(", ")
                ));
            }
        }
        use defaults::*;
        let (procs, messages) = match pattern {
            Pattern::Spawn => (s.procs.unwrap_or(SPAWN_PROCS), 0),
            Pattern::Pingpong => (0, s.messages.unwrap_or(PINGPONG_MESSAGES)),
            Pattern::Ring => (s.procs.unwrap_or(RING_PROCS), 0),
            Pattern::Fanin => (0, s.messages.unwrap_or(FANIN_MESSAGES)),
            Pattern::Call => (0, s.messages.unwrap_or(CALL_MESSAGES)),
            Pattern::Idle => (s.procs.unwrap_or(IDLE_PROCS), 0),
            Pattern::Latency => (0, 0),
        };
        let lat = pattern == Pattern::Latency;
        let p = Params {
            pattern,
            procs,
            messages,
            laps: if pattern == Pattern::Ring {
                s.laps.unwrap_or(RING_LAPS)
            } else {
                0
            },
            senders: if pattern == Pattern::Fanin {
                s.senders.unwrap_or(FANIN_SENDERS)
            } else {
                0
            },
            rate: if lat {
                s.rate.unwrap_or(LATENCY_RATE)
            } else {
                0
            },
            duration: if lat {
                s.duration.unwrap_or(LATENCY_DURATION)
            } else {
                std::time::Duration::ZERO
            },
            receivers: if lat {
                s.receivers.unwrap_or(LATENCY_RECEIVERS)
            } else {
                0
            },
            hogs: if lat {
                s.hogs
                    .unwrap_or(LATENCY_HOGS_PER_WORKER * workers.max(1) as u64)
            } else {
                0
            },
            work: if lat {
                s.work.unwrap_or(LATENCY_WORK)
            } else {
                0
            },
        };
        for k in accepted {
            let zero = match k {
                Procs => p.procs == 0,
                Messages => p.messages == 0,
                Laps => p.laps == 0,
                Senders => p.senders == 0,
                Rate => p.rate == 0,
                Duration => p.duration.is_zero(),
                Receivers => p.receivers == 0,
                Hogs => false,
                Work => p.work == 0,
            };
            if zero {
                return Err(format!("{} must be greater than 0", k.flag()));
            }
        }
        if pattern == Pattern::Ring && p.procs < 2 {
            return Err("--procs must be at least 2 for ring".into());
        }
        if lat && p.total_messages() == 0 {
            return Err("--rate × --duration sends no message".into());
        }
        const MAX_SEQ: u64 = u32::MAX as u64;
        if pattern == Pattern::Fanin && p.messages > MAX_SEQ {
            return Err(format!("--messages must be at most {MAX_SEQ} for fanin"));
        }
        Ok(p)
    }

    /// Operations a run performs.
    pub fn ops(&self) -> u64 {
        match self.pattern {
            Pattern::Spawn | Pattern::Idle => self.procs,
            Pattern::Pingpong | Pattern::Call => self.messages,
            Pattern::Ring => self.procs * self.laps,
            Pattern::Fanin => self.senders * self.messages,
            Pattern::Latency => self.total_messages(),
        }
    }

    /// Latency: messages the load generator sends (rate × duration).
    pub fn total_messages(&self) -> u64 {
        (self.rate as f64 * self.duration.as_secs_f64()).round() as u64
    }

    /// The count `bench.progress` reaches at the end of a run (for the progress indicator).
    pub fn progress_total(&self) -> u64 {
        match self.pattern {
            Pattern::Spawn | Pattern::Idle => 2 * self.procs,
            Pattern::Pingpong | Pattern::Call => self.messages,
            Pattern::Ring => self.laps,
            Pattern::Fanin => self.senders * self.messages,
            Pattern::Latency => self.total_messages(),
        }
    }

    /// The sizes as `(name, value)` pairs (report and JSON `params`).
    pub fn pairs(&self) -> Vec<(&'static str, Value)> {
        let mut v = Vec::new();
        for k in self.pattern.sizes() {
            let name = &k.flag()[2..];
            let val = match k {
                SizeKey::Procs => Value::Int(self.procs as i64),
                SizeKey::Messages => Value::Int(self.messages as i64),
                SizeKey::Laps => Value::Int(self.laps as i64),
                SizeKey::Senders => Value::Int(self.senders as i64),
                SizeKey::Rate => Value::Int(self.rate as i64),
                SizeKey::Duration => Value::Float(self.duration.as_secs_f64()),
                SizeKey::Receivers => Value::Int(self.receivers as i64),
                SizeKey::Hogs => Value::Int(self.hogs as i64),
                SizeKey::Work => Value::Int(self.work as i64),
            };
            v.push((name, val));
        }
        v
    }

    /// `procs=10000 laps=100`.
    pub fn describe(&self) -> String {
        self.pairs()
            .iter()
            .map(|(k, v)| match v {
                Value::Float(f) => format!("{k}={f}s"),
                Value::Int(i) => format!("{k}={i}"),
                other => format!("{k}={other:?}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Session options.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The pattern.
    pub pattern: Pattern,
    /// Sizes as given.
    pub sizes: Sizes,
    /// Worker threads (None = one per CPU of the affinity mask).
    pub workers: Option<usize>,
    /// Pin workers to CPUs.
    pub pin: bool,
    /// Measured runs (≥ 1).
    pub runs: usize,
    /// Unmeasured runs before the measured ones.
    pub warmup: usize,
    /// Longest a single run may take before the session fails.
    pub timeout: Duration,
    /// Show a progress indicator on stderr.
    pub progress: bool,
}

/// Default per-run timeout: generous for the full default sizes on a loaded 2-core machine;
/// its purpose is to turn a lost message (a run that never completes) into an error.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

impl BenchOptions {
    /// Defaults for `pattern`: default sizes, one worker per CPU, pinned, 3 runs, no
    /// warm-up, no progress indicator.
    pub fn new(pattern: Pattern) -> BenchOptions {
        BenchOptions {
            pattern,
            sizes: Sizes::default(),
            workers: None,
            pin: true,
            runs: 3,
            warmup: 0,
            timeout: DEFAULT_TIMEOUT,
            progress: false,
        }
    }
}
