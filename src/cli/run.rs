//! `wippy run [command] [args…]` (spec `lua-api.md` §5.2).
//!
//! | invocation | behaviour |
//! |---|---|
//! | `wippy run` | boot, start `auto_start` services, run until SIGINT/SIGTERM (second signal: exit 1) |
//! | `wippy run list` | print the commands (`meta.command`) without booting |
//! | `wippy run <cmd> [args…]` | boot, run the process entry whose `meta.command.name` is `<cmd>` on the terminal host with each argument as one string; exit with its exit code |
//! | `wippy run -x ns:entry [args…]` | boot, run that process entry the same way (unlike the original, positional arguments are passed to it) |
//!
//! `-d DIR` makes `DIR` the working directory first (as if `wippy` were started there), so
//! relative paths in the configuration and entries resolve against the project. A command or
//! `-x` run is silent unless a log flag is given. `--workers N` and `--pin auto|none` size and
//! place the runtime's worker pool. `WIPPY_SHUTDOWN_DELAY` (a Go duration) delays the stop
//! after the shutdown signal (load-balancer drain).
//!
//! A watchdog ends the process with exit 1 if the graceful shutdown overruns
//! `shutdown.timeout` (plus the drain delay and [`WATCHDOG_GRACE`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{GlobalArgs, ProjectArgs, fail, init_logging};
use crate::boot::{App, BootError, BootOptions, commands};
use crate::config::{Config, format_duration, parse_duration};
use crate::loader::{LoadOptions, load_project};

/// Extra time the shutdown watchdog allows beyond `shutdown.timeout`.
pub const WATCHDOG_GRACE: Duration = Duration::from_secs(5);

/// Worker pinning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum PinMode {
    /// Pin worker i to the i-th CPU of the affinity mask.
    #[default]
    Auto,
    /// Let the OS place workers.
    None,
}

/// `wippy run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Project and configuration.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Run this process entry (ns:name) on the terminal host.
    #[arg(short = 'x', long = "exec", value_name = "NS:ENTRY")]
    pub exec: Option<String>,
    /// Terminal host to run on (default: the only terminal.host).
    #[arg(long, value_name = "ID")]
    pub host: Option<String>,
    /// Worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Worker pinning.
    #[arg(long, value_enum, default_value_t = PinMode::Auto)]
    pub pin: PinMode,
    /// `[command] [args…]` (`list` prints the commands).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub args: Vec<String>,
}

/// Flags given after `wippy run list` (the command name ends flag parsing for commands).
#[derive(Debug, clap::Parser)]
#[command(name = "wippy run list", no_binary_name = true)]
struct ListFlags {
    #[command(flatten)]
    project: ProjectArgs,
}

/// Run `wippy run`; returns the exit code.
pub fn run(g: &GlobalArgs, mut a: RunArgs) -> i32 {
    if a.exec.is_none() && a.args.first().map(String::as_str) == Some("list") && a.args.len() > 1 {
        match <ListFlags as clap::Parser>::try_parse_from(&a.args[1..]) {
            Ok(f) => {
                if f.project.dir != Path::new(".") {
                    a.project.dir = f.project.dir;
                }
                a.project.sets.extend(f.project.sets);
                a.project.overrides.extend(f.project.overrides);
                a.args.truncate(1);
            }
            Err(e) => {
                return fail(
                    g,
                    e.render()
                        .to_string()
                        .trim_start_matches("error: ")
                        .trim_end(),
                );
            }
        }
    }
    // Resolve --config against the directory wippy was started in, then enter the project.
    let mut g = g.clone();
    if let Some(c) = &g.config {
        g.config = Some(std::path::absolute(c).unwrap_or_else(|_| c.clone()));
    }
    if a.project.dir != Path::new(".")
        && let Err(e) = std::env::set_current_dir(&a.project.dir)
    {
        return fail(
            &g,
            format!(
                "cannot enter project directory {}: {e}",
                a.project.dir.display()
            ),
        );
    }
    let dir = PathBuf::from(".");
    let sources = a.project.sources(&g, &dir);
    let mut positional = a.args.into_iter();
    let command = if a.exec.is_none() {
        positional.next()
    } else {
        None
    };
    let args: Vec<String> = positional.collect();

    let cfg = match Config::load(&sources) {
        Ok(c) => c,
        Err(e) => return fail(&g, BootError::Config(e)),
    };
    if command.as_deref() == Some("list") {
        init_logging(&g, Some(&cfg), log::LevelFilter::Warn);
        return list(&g, &dir, &cfg);
    }
    let exec_run = command.is_some() || a.exec.is_some();
    let mut flags_g = g.clone();
    if exec_run && !g.any_log_flag() {
        flags_g.silent = true;
    }
    init_logging(&flags_g, Some(&cfg), log::LevelFilter::Trace);

    let drain_delay = match std::env::var("WIPPY_SHUTDOWN_DELAY") {
        Ok(s) if !s.trim().is_empty() => match parse_duration(&s) {
            Ok(d) => Some(d),
            Err(e) => return fail(&g, format!("WIPPY_SHUTDOWN_DELAY: {e}")),
        },
        _ => None,
    };
    let timeout = cfg.shutdown.timeout;
    let mut opts = BootOptions::new(&dir);
    opts.config = sources;
    opts.workers = a.workers;
    opts.pin = a.pin == PinMode::Auto;
    opts.signals = true;
    opts.drain_delay = drain_delay;
    let app = match App::start_with(cfg, opts) {
        Ok(app) => app,
        Err(e) => return fail(&g, e),
    };

    let launched = match (&a.exec, &command) {
        (Some(entry), _) => Some(app.exec(a.host.as_deref(), entry, args)),
        (None, Some(cmd)) => Some(app.run_command_on(a.host.as_deref(), cmd, args)),
        (None, None) => None,
    };
    let cli_error = match launched {
        Some(Err(e)) => {
            app.request_shutdown(1);
            Some(e)
        }
        Some(Ok(pid)) => {
            log::debug!(target: "wippy::cli", "command running as {pid}");
            None
        }
        None => None,
    };
    app.wait();
    start_watchdog(timeout + drain_delay.unwrap_or_default() + WATCHDOG_GRACE);
    let code = app.shutdown();
    match cli_error {
        Some(e) => fail(&g, e),
        None => code,
    }
}

/// `wippy run list`: the commands of the project, without booting.
fn list(g: &GlobalArgs, dir: &std::path::Path, cfg: &Config) -> i32 {
    let project = match load_project(dir, cfg, &LoadOptions::default()) {
        Ok(p) => p,
        Err(e) => return fail(g, BootError::Project(e)),
    };
    let entries: Vec<_> = project
        .into_entries()
        .into_iter()
        .map(std::sync::Arc::new)
        .collect();
    let cmds = commands::list(&entries);
    if cmds.is_empty() {
        println!("No commands found");
        return 0;
    }
    let w_name = cmds.iter().map(|c| c.name.len()).max().unwrap_or(0).max(7);
    let w_short = cmds
        .iter()
        .map(|c| c.short.len())
        .max()
        .unwrap_or(0)
        .max(11);
    println!("{:<w_name$}  {:<w_short$}  ENTRY", "COMMAND", "DESCRIPTION");
    println!(
        "{}  {}  {}",
        "-".repeat(w_name),
        "-".repeat(w_short),
        "-".repeat(5)
    );
    for c in &cmds {
        println!("{:<w_name$}  {:<w_short$}  {}", c.name, c.short, c.entry);
    }
    0
}

/// Exit with status 1 if the process is still alive after `limit`.
fn start_watchdog(limit: Duration) {
    let _ = std::thread::Builder::new()
        .name("wippy-shutdown-watchdog".into())
        .spawn(move || {
            std::thread::sleep(limit);
            log::error!(target: "wippy::cli", "shutdown did not finish within {}; exiting", format_duration(limit));
            eprintln!("Error: shutdown did not finish within {}", format_duration(limit));
            std::process::exit(1);
        });
}
