//! `wippy run [command] [args…]` (spec `lua-api.md` §5.2).
//!
//! | invocation | behaviour |
//! |---|---|
//! | `wippy run` | boot, start `auto_start` services, run until SIGINT/SIGTERM (second signal: exit 1) |
//! | `wippy run list` | print the commands (`meta.command`) without booting |
//! | `wippy run <cmd> [args…]` | boot, run the process entry whose `meta.command.name` is `<cmd>` on the terminal host with each argument as one string; exit with its exit code |
//! | `wippy run -x ns:entry [args…]` | boot, run that process entry the same way (unlike the original, positional arguments are passed to it) |
//!
//! Known flags are recognised anywhere on the line, also after the command name (as the
//! original's cobra parser does: `wippy run test -v`); `--` ends them. `wippy test` runs the
//! `meta.command.use_case: test` entrypoint the same way. `.wapp` packs and `org/module` hub
//! references are refused with a message (not supported). `-m` is validated and logged only.
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
    /// Registry URL for hub modules (accepted; this runtime does not download modules).
    #[arg(long, value_name = "URL")]
    pub registry: Option<String>,
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

/// `wippy run` flags seen after the command name (the original's cobra parses flags anywhere
/// on the line, so `wippy run test -v` is a verbose run of `test`).
#[derive(Debug, clap::Parser)]
#[command(name = "wippy run", no_binary_name = true)]
struct LateFlags {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// Long and short names of the `run` and global flags that take a value.
const VALUE_FLAGS: &[(&str, Option<char>)] = &[
    ("config", None),
    ("memory-limit", Some('m')),
    ("dir", Some('d')),
    ("set", None),
    ("override", Some('o')),
    ("profile", None),
    ("exec", Some('x')),
    ("host", None),
    ("registry", None),
    ("workers", None),
    ("pin", None),
];

/// Long and short names of the boolean `run` and global flags.
const BOOL_FLAGS: &[(&str, Option<char>)] = &[
    ("verbose", Some('v')),
    ("very-verbose", None),
    ("console", Some('c')),
    ("silent", Some('s')),
    ("event-streams", Some('e')),
    ("profiler", Some('p')),
];

/// Split the words after `wippy run` into known flags and positional arguments. `--` ends
/// the flags (it is dropped); words that are not known flags (`-n`, `--name=x`, `-1`) stay
/// positional, so a command still receives them.
fn split_flags(words: Vec<String>) -> (Vec<String>, Vec<String>) {
    let short_value = |c: char| VALUE_FLAGS.iter().any(|(_, s)| *s == Some(c));
    let short_bool = |c: char| BOOL_FLAGS.iter().any(|(_, s)| *s == Some(c));
    let mut flags = Vec::new();
    let mut positional = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        if w == "--" {
            positional.extend(it.by_ref());
            break;
        }
        if let Some(long) = w.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            if VALUE_FLAGS.iter().any(|(l, _)| *l == name) {
                flags.push(w.clone());
                if !inline && let Some(v) = it.next() {
                    flags.push(v);
                }
                continue;
            }
            if !inline && BOOL_FLAGS.iter().any(|(l, _)| *l == name) {
                flags.push(w);
                continue;
            }
            positional.push(w);
            continue;
        }
        if let Some(shorts) = w.strip_prefix('-')
            && let Some(first) = shorts.chars().next()
        {
            if short_value(first) {
                let bare = shorts.len() == first.len_utf8();
                flags.push(w);
                if bare && let Some(v) = it.next() {
                    flags.push(v);
                }
                continue;
            }
            if shorts.chars().all(short_bool) {
                flags.push(w);
                continue;
            }
        }
        positional.push(w);
    }
    (flags, positional)
}

/// Move the known flags out of `a.args` (flags after the command name) into `g` and `a`.
fn take_late_flags(g: &mut GlobalArgs, a: &mut RunArgs) -> Result<(), String> {
    let (flags, positional) = split_flags(std::mem::take(&mut a.args));
    a.args = positional;
    if flags.is_empty() {
        return Ok(());
    }
    let late = <LateFlags as clap::Parser>::try_parse_from(&flags).map_err(|e| {
        e.render()
            .to_string()
            .trim_start_matches("error: ")
            .trim_end()
            .to_string()
    })?;
    let (lg, lr) = (late.global, late.run);
    g.config.extend(lg.config);
    g.verbose |= lg.verbose;
    g.very_verbose |= lg.very_verbose;
    g.console |= lg.console;
    g.silent |= lg.silent;
    g.event_streams |= lg.event_streams;
    g.profiler |= lg.profiler;
    if lg.memory_limit.is_some() {
        g.memory_limit = lg.memory_limit;
    }
    if lr.project.dir != Path::new(".") {
        a.project.dir = lr.project.dir;
    }
    a.project.sets.extend(lr.project.sets);
    a.project.overrides.extend(lr.project.overrides);
    a.project.profiles.extend(lr.project.profiles);
    if lr.exec.is_some() {
        a.exec = lr.exec;
    }
    if lr.host.is_some() {
        a.host = lr.host;
    }
    if lr.registry.is_some() {
        a.registry = lr.registry;
    }
    if lr.workers.is_some() {
        a.workers = lr.workers;
    }
    if lr.pin != PinMode::Auto {
        a.pin = lr.pin;
    }
    Ok(())
}

/// True for `org/module` or `org/module@version` (a hub module reference).
fn is_hub_ref(s: &str) -> bool {
    let name = s.split('@').next().unwrap_or(s);
    match name.split_once('/') {
        Some((org, module)) => {
            let ok = |p: &str| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            };
            ok(org) && ok(module)
        }
        None => false,
    }
}

/// Run `wippy run`; returns the exit code.
pub fn run(g: &GlobalArgs, a: RunArgs) -> i32 {
    run_mode(g, a, false)
}

/// Run `wippy test`: boot, run the test entrypoint (the process entry whose
/// `meta.command.use_case` is `test`; of several, the one marked `main`) with the positional
/// arguments, exit with its exit code.
pub fn test(g: &GlobalArgs, a: RunArgs) -> i32 {
    run_mode(g, a, true)
}

fn run_mode(g: &GlobalArgs, mut a: RunArgs, test_mode: bool) -> i32 {
    let mut g = g.clone();
    if let Err(e) = take_late_flags(&mut g, &mut a) {
        return fail(&g, e);
    }
    let g = g;
    if !test_mode
        && a.exec.is_none()
        && a.args.first().map(String::as_str) == Some("list")
        && a.args.len() > 1
    {
        match <ListFlags as clap::Parser>::try_parse_from(&a.args[1..]) {
            Ok(f) => {
                if f.project.dir != Path::new(".") {
                    a.project.dir = f.project.dir;
                }
                a.project.sets.extend(f.project.sets);
                a.project.overrides.extend(f.project.overrides);
                a.project.profiles.extend(f.project.profiles);
                a.args.truncate(1);
            }
            Err(e) => {
                return fail(
                    &g,
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
    for c in &mut g.config {
        *c = std::path::absolute(&*c).unwrap_or_else(|_| c.clone());
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
    let command = if a.exec.is_none() && !test_mode {
        positional.next()
    } else {
        None
    };
    let args: Vec<String> = positional.collect();
    if let Some(target) = &command {
        if target.ends_with(".wapp") {
            return fail(
                &g,
                format!(
                    "running a pack ({target}) is not supported by this runtime; unpack its modules into the project and add them to wippy.lock"
                ),
            );
        }
        if is_hub_ref(target) {
            return fail(
                &g,
                format!(
                    "running hub module {target} is not supported by this runtime (no hub access); vendor the module under .wippy/vendor and add it to wippy.lock"
                ),
            );
        }
    }
    let memory_limit = match super::memory_limit(&g) {
        Ok(m) => m,
        Err(e) => return fail(&g, e),
    };
    if let Some(url) = &a.registry {
        log::debug!(target: "wippy::cli", "--registry {url} ignored: hub modules are not downloaded by this runtime");
    }

    let cfg = match Config::load(&sources) {
        Ok(c) => c,
        Err(e) => return fail(&g, BootError::Config(e)),
    };
    if command.as_deref() == Some("list") {
        init_logging(&g, Some(&cfg), log::LevelFilter::Warn);
        return list(&g, &dir, &cfg);
    }
    let exec_run = command.is_some() || a.exec.is_some() || test_mode;
    let mut flags_g = g.clone();
    if exec_run && !g.any_log_flag() {
        flags_g.silent = true;
    }
    init_logging(&flags_g, Some(&cfg), log::LevelFilter::Trace);
    log::debug!(target: "wippy::cli", "initializing runtime (memory limit {})", format_bytes(memory_limit));
    if cfg.get("profiler.enabled").and_then(|v| v.as_bool()) == Some(true) {
        log::warn!(target: "wippy::cli", "profiler enabled, but this runtime has no pprof server; ignored");
    }

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

    let test_entry = if test_mode && a.exec.is_none() {
        match commands::entrypoint(&app.system().registry.snapshot().entries(), "test") {
            Ok(c) => Some(c.entry.to_string()),
            Err(e) => {
                app.request_shutdown(1);
                app.wait();
                let _ = app.shutdown();
                return fail(&g, e);
            }
        }
    } else {
        a.exec.clone()
    };
    let launched = match (&test_entry, &command) {
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
        println!("No commands found.");
        println!();
        println!("To define a command, add 'command' to entry meta:");
        println!("  meta:");
        println!("    command:");
        println!("      name: test");
        println!("      short: Run tests");
        return 0;
    }
    println!("Available commands:");
    println!();
    for c in &cmds {
        if c.short.is_empty() {
            println!("  {}  ({})", c.name, c.entry);
        } else {
            println!("  {}  {}  ({})", c.name, c.short, c.entry);
        }
    }
    println!();
    println!("Run with: wippy run <command>");
    0
}

/// `1.0 GiB`, `512.0 MiB`, `1024 B`.
fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
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
