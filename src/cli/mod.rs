//! The `wippy` command line (spec `lua-api.md` §5).
//!
//! * [`run`] — `wippy run [command] [args…]`, `wippy run -x <entry>`, `wippy run list`,
//!   `wippy test [args…]` (the `use_case: test` entrypoint);
//! * [`init`] — `wippy init`;
//! * [`registry`] — `wippy registry list|show|versions|rollback`;
//! * [`bench`] — `wippy bench <pattern>` (end-to-end benchmarks);
//! * `wippy version`.
//!
//! # Exit codes (§5.4)
//!
//! 0 success; a terminal command's exit code; 1 for any CLI, configuration or boot error
//! (printed as `Error: <msg>` on stderr — with `-c`, the bare message in red), for an
//! unknown command or flag, and for a second interrupt during shutdown. `--help` exits 0.

pub mod bench;
pub mod init;
pub mod registry;
pub mod run;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::boot::logging::{self, LogFlags, LogSettings};
use crate::config::{Config, ConfigSources};

/// The runtime version printed by `wippy version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `wippy`.
#[derive(Debug, Parser)]
#[command(
    name = "wippy",
    about = "Wippy application runtime: YAML registry entries plus typed Lua, run as supervised processes",
    disable_version_flag = true
)]
pub struct Cli {
    /// Flags of every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted by every command (global flags: `--config` repeatable and composed left to
/// right, `-v`, `--very-verbose`, `-c`, `-s`, `-e`, `-p`, `-m`).
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Configuration file, repeatable: later files override matching values (default:
    /// .wippy.yaml in the project directory, optional; a named file must exist).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// Debug logging.
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
    /// Trace logging.
    #[arg(long, global = true)]
    pub very_verbose: bool,
    /// Colourful human console logs.
    #[arg(short = 'c', long = "console", global = true)]
    pub console: bool,
    /// No logs.
    #[arg(short = 's', long, global = true)]
    pub silent: bool,
    /// Stream logs to the event bus (`logmanager.stream_to_events`).
    #[arg(short = 'e', long = "event-streams", global = true)]
    pub event_streams: bool,
    /// Enable the profiler (`profiler.enabled`; no pprof server in this runtime).
    #[arg(short = 'p', long, global = true)]
    pub profiler: bool,
    /// Memory limit (e.g. 512M, 2G; K/M/G/T with an optional B). Fallback: GOMEMLIMIT, then 1G.
    #[arg(short = 'm', long = "memory-limit", global = true, value_name = "SIZE")]
    pub memory_limit: Option<String>,
}

impl GlobalArgs {
    /// The logging flags.
    pub fn log_flags(&self) -> LogFlags {
        LogFlags {
            verbose: self.verbose,
            very_verbose: self.very_verbose,
            color: self.console,
            silent: self.silent,
        }
    }

    /// True when some log flag was given explicitly.
    pub fn any_log_flag(&self) -> bool {
        self.verbose || self.very_verbose || self.console || self.silent
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot the project and run until SIGINT/SIGTERM, or run one command.
    Run(run::RunArgs),
    /// Boot the project and run its test entrypoint (`meta.command.use_case: test`).
    Test(run::RunArgs),
    /// Write a wippy.lock with the project directories.
    Init(init::InitArgs),
    /// Query the registry entries and its history.
    Registry {
        /// What to do.
        #[command(subcommand)]
        command: registry::RegistryCommand,
    },
    /// Benchmark one pattern end to end on real Lua processes.
    Bench(bench::BenchArgs),
    /// Print the version.
    Version,
}

/// Where the project is and how to configure it (run and registry commands).
#[derive(Debug, Clone, Args)]
pub struct ProjectArgs {
    /// Project directory (wippy.lock, .wippy.yaml).
    #[arg(short = 'd', long = "dir", value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Set a configuration value (repeatable).
    #[arg(long = "set", value_name = "SECTION.PATH=VALUE")]
    pub sets: Vec<String>,
    /// Override an entry field (repeatable).
    #[arg(short = 'o', long = "override", value_name = "NS:ENTRY:PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Apply a profile from the configuration's `profiles:` section (repeatable, in order).
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
}

impl ProjectArgs {
    /// Configuration sources: the `--config` files (resolved against the current directory)
    /// or the optional `<dir>/.wippy.yaml`, the `--profile` overlays, the environment,
    /// `--set` (after the settings implied by `-e`/`-p`), `-o`.
    pub fn sources(&self, g: &GlobalArgs, dir: &std::path::Path) -> ConfigSources {
        let mut sets = Vec::new();
        if g.event_streams {
            sets.push("logmanager.stream_to_events=true".to_string());
        }
        if g.profiler {
            sets.push("profiler.enabled=true".to_string());
        }
        sets.extend(self.sets.iter().cloned());
        ConfigSources {
            file: Some(if dir == std::path::Path::new(".") {
                PathBuf::from(".wippy.yaml")
            } else {
                dir.join(".wippy.yaml")
            }),
            files: g.config.clone(),
            profiles: self.profiles.clone(),
            env: std::env::vars().collect(),
            sets,
            overrides: self.overrides.clone(),
        }
    }
}

/// Default memory limit when neither `--memory-limit` nor `GOMEMLIMIT` is set.
pub const DEFAULT_MEMORY_LIMIT: u64 = 1 << 30;

/// Parse a memory size: digits with an optional `K`/`M`/`G`/`T` unit (powers of 1024) and an
/// optional trailing `B`, case-insensitive (`512M`, `2G`, `1gb`, `1048576`).
pub fn parse_memory_limit(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let t = t.strip_suffix("IB").map(|x| format!("{x}B")).unwrap_or(t);
    let t = t.strip_suffix('B').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid memory limit {s:?} (expected e.g. 512M, 2G)"))?;
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("invalid memory limit {s:?} (expected e.g. 512M, 2G)"))
}

/// The effective memory limit: `--memory-limit`, then `GOMEMLIMIT`, then 1 GiB.
pub fn memory_limit(g: &GlobalArgs) -> Result<u64, String> {
    if let Some(m) = &g.memory_limit {
        return parse_memory_limit(m).map_err(|e| format!("--memory-limit: {e}"));
    }
    match std::env::var("GOMEMLIMIT") {
        Ok(v) if !v.trim().is_empty() => {
            parse_memory_limit(&v).map_err(|e| format!("GOMEMLIMIT: {e}"))
        }
        _ => Ok(DEFAULT_MEMORY_LIMIT),
    }
}

/// Parse the arguments, run, and return the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    let g = cli.global.clone();
    match cli.command {
        Command::Version => {
            println!("wippy {VERSION}");
            0
        }
        Command::Init(a) => {
            init_logging(&g, None, log::LevelFilter::Info);
            finish(&g, init::run(&a))
        }
        Command::Registry { command } => registry::run(&g, command),
        Command::Run(a) => run::run(&g, a),
        Command::Test(a) => run::test(&g, a),
        Command::Bench(a) => bench::run(&g, a),
    }
}

fn usage_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            0
        }
        _ => {
            let text = e.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            eprint!("Error: {text}");
            1
        }
    }
}

/// Print an error the CLI way and return exit code 1.
pub fn fail(g: &GlobalArgs, msg: impl std::fmt::Display) -> i32 {
    if g.console {
        eprintln!("\x1b[31m{msg}\x1b[0m");
    } else {
        eprintln!("Error: {msg}");
    }
    1
}

fn finish(g: &GlobalArgs, r: Result<(), String>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => fail(g, e),
    }
}

/// Configure logging for a command: the config's logger section (defaults when `cfg` is
/// None), the flags, `RUST_LOG`; the level is at most `floor` unless a flag asks for more.
pub fn init_logging(g: &GlobalArgs, cfg: Option<&Config>, floor: log::LevelFilter) {
    let defaults;
    let cfg = match cfg {
        Some(c) => c,
        None => {
            defaults = Config::defaults();
            &defaults
        }
    };
    let rust_log = std::env::var("RUST_LOG").ok();
    let mut s = LogSettings::resolve(&cfg.logger, g.log_flags(), rust_log.as_deref());
    if !g.verbose && !g.very_verbose && s.level > floor {
        s.level = floor;
    }
    // A second init (only possible in-process) keeps the first logger.
    let _ = logging::init(&s);
}
