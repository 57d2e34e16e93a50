//! The `wippy` command line (spec `lua-api.md` §5).
//!
//! * [`run`] — `wippy run [command] [args…]`, `wippy run -x <entry>`, `wippy run list`;
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

/// Flags accepted by every command.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Configuration file (default: .wippy.yaml in the project directory); a missing file is
    /// no configuration.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
}

impl ProjectArgs {
    /// Configuration sources: `--config` (resolved against the current directory) or
    /// `<dir>/.wippy.yaml`, the environment, `--set`, `-o`.
    pub fn sources(&self, g: &GlobalArgs, dir: &std::path::Path) -> ConfigSources {
        ConfigSources {
            file: Some(g.config.clone().unwrap_or_else(|| {
                if dir == std::path::Path::new(".") {
                    PathBuf::from(".wippy.yaml")
                } else {
                    dir.join(".wippy.yaml")
                }
            })),
            env: std::env::vars().collect(),
            sets: self.sets.clone(),
            overrides: self.overrides.clone(),
        }
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
