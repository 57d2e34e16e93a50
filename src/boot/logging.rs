//! Process-wide logging: `log` records rendered by `env_logger` on stderr, as a console line
//! or one JSON object per line (`logger.encoding`).
//!
//! # Level
//!
//! 1. `logger.level` from the configuration (`warning` = `warn`; `dpanic`/`panic`/`fatal` =
//!    `error`);
//! 2. `-v` → debug, `--very-verbose` → trace;
//! 3. `RUST_LOG`, when set and non-empty, replaces the level with its filter directives
//!    (`wippy::registry=debug,info`);
//! 4. `-s` (silent) turns everything off and wins over all of the above.
//!
//! # Encoding
//!
//! * console (default): `2026-08-19T10:00:00.123Z INFO  wippy::boot: message key=value`;
//!   `-c` adds colours;
//! * json: `{"level":"info","ts":"2026-08-19T10:00:00.123Z","logger":"wippy::boot",
//!   "msg":"message","key":value}` — structured `log` key-values become fields (numbers and
//!   booleans keep their type).
//!
//! [`init`] must run right after the configuration is loaded and before anything else logs:
//! the original built its bootstrap logger before reading `logger.encoding`, so its first
//! lines were console text even in JSON mode. Warnings collected while loading the
//! configuration are therefore logged only after [`init`].

use std::io::Write;

use env_logger::fmt::{Formatter, WriteStyle};
use log::{Level, LevelFilter, Record};

use crate::config::LoggerConfig;

/// Command-line logging flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogFlags {
    /// `-v`: debug.
    pub verbose: bool,
    /// `--very-verbose`: trace.
    pub very_verbose: bool,
    /// `-c`: colourful console output.
    pub color: bool,
    /// `-s`: no logs at all.
    pub silent: bool,
}

/// The effective logging setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSettings {
    /// Base level.
    pub level: LevelFilter,
    /// `RUST_LOG` directives (replace `level` when present).
    pub filters: Option<String>,
    /// One JSON object per line.
    pub json: bool,
    /// ANSI colours (console only).
    pub color: bool,
}

/// Map a `logger.level` name to a filter.
pub fn level_from_name(name: &str) -> LevelFilter {
    match name.to_ascii_lowercase().as_str() {
        "trace" => LevelFilter::Trace,
        "debug" => LevelFilter::Debug,
        "warn" | "warning" => LevelFilter::Warn,
        "error" | "dpanic" | "panic" | "fatal" => LevelFilter::Error,
        "off" | "none" => LevelFilter::Off,
        _ => LevelFilter::Info,
    }
}

impl LogSettings {
    /// Combine the configuration, the flags and `RUST_LOG` (see the module docs).
    pub fn resolve(cfg: &LoggerConfig, flags: LogFlags, rust_log: Option<&str>) -> LogSettings {
        let mut level = level_from_name(&cfg.level);
        if flags.verbose {
            level = LevelFilter::Debug;
        }
        if flags.very_verbose {
            level = LevelFilter::Trace;
        }
        let mut filters = rust_log
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if flags.silent {
            level = LevelFilter::Off;
            filters = None;
        }
        let json = !flags.color && cfg.encoding == "json";
        LogSettings {
            level,
            filters,
            json,
            color: flags.color && !json,
        }
    }

    /// Silent settings (no output).
    pub fn silent() -> LogSettings {
        LogSettings {
            level: LevelFilter::Off,
            filters: None,
            json: false,
            color: false,
        }
    }
}

/// Install the process-wide logger. Fails when a logger is already installed.
///
/// # Errors
/// `log::SetLoggerError` when called twice.
pub fn init(s: &LogSettings) -> Result<(), log::SetLoggerError> {
    let mut b = env_logger::Builder::new();
    b.filter_level(s.level);
    if let Some(f) = &s.filters {
        b.parse_filters(f);
    }
    b.target(env_logger::Target::Stderr);
    b.write_style(if s.color {
        WriteStyle::Always
    } else {
        WriteStyle::Never
    });
    if s.json {
        b.format(format_json);
    } else {
        b.format(format_console);
    }
    b.try_init()
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

fn format_console(buf: &mut Formatter, record: &Record<'_>) -> std::io::Result<()> {
    let style = buf.default_level_style(record.level());
    let ts = buf.timestamp_millis();
    write!(
        buf,
        "{ts} {style}{:<5}{style:#} {}: {}",
        record.level(),
        record.target(),
        record.args()
    )?;
    let mut kv = ConsoleKv(buf);
    let _ = record.key_values().visit(&mut kv);
    writeln!(buf)
}

struct ConsoleKv<'a>(&'a mut Formatter);

impl<'kvs> log::kv::VisitSource<'kvs> for ConsoleKv<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        write!(self.0, " {key}={value}").map_err(log::kv::Error::from)
    }
}

fn format_json(buf: &mut Formatter, record: &Record<'_>) -> std::io::Result<()> {
    let mut line = String::with_capacity(128);
    line.push_str("{\"level\":\"");
    line.push_str(level_name(record.level()));
    line.push_str("\",\"ts\":\"");
    line.push_str(&buf.timestamp_millis().to_string());
    line.push_str("\",\"logger\":");
    push_json_str(&mut line, record.target());
    line.push_str(",\"msg\":");
    push_json_str(&mut line, &record.args().to_string());
    let mut kv = JsonKv(&mut line);
    let _ = record.key_values().visit(&mut kv);
    line.push('}');
    writeln!(buf, "{line}")
}

struct JsonKv<'a>(&'a mut String);

impl<'kvs> log::kv::VisitSource<'kvs> for JsonKv<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.0.push(',');
        push_json_str(self.0, key.as_str());
        self.0.push(':');
        if let Some(b) = value.to_bool() {
            self.0.push_str(if b { "true" } else { "false" });
        } else if let Some(i) = value.to_i64() {
            self.0.push_str(&i.to_string());
        } else if let Some(u) = value.to_u64() {
            self.0.push_str(&u.to_string());
        } else if let Some(f) = value.to_f64().filter(|f| f.is_finite()) {
            self.0
                .push_str(&serde_json::to_string(&f).unwrap_or_else(|_| "null".into()));
        } else {
            push_json_str(self.0, &value.to_string());
        }
        Ok(())
    }
}

fn push_json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(encoding: &str, level: &str) -> LoggerConfig {
        LoggerConfig {
            encoding: encoding.into(),
            mode: "production".into(),
            level: level.into(),
        }
    }

    #[test]
    fn resolution_order() {
        let base = LogSettings::resolve(&cfg("console", "warning"), LogFlags::default(), None);
        assert_eq!(base.level, LevelFilter::Warn);
        assert!(!base.json && !base.color);
        let v = LogFlags {
            verbose: true,
            ..Default::default()
        };
        assert_eq!(
            LogSettings::resolve(&cfg("json", "info"), v, None).level,
            LevelFilter::Debug
        );
        let rl = LogSettings::resolve(&cfg("json", "info"), v, Some("wippy=trace"));
        assert_eq!(rl.filters.as_deref(), Some("wippy=trace"));
        assert!(rl.json);
        let s = LogFlags {
            silent: true,
            verbose: true,
            ..Default::default()
        };
        let silent = LogSettings::resolve(&cfg("console", "debug"), s, Some("trace"));
        assert_eq!((silent.level, silent.filters), (LevelFilter::Off, None));
        let c = LogFlags {
            color: true,
            ..Default::default()
        };
        let colored = LogSettings::resolve(&cfg("json", "info"), c, None);
        assert!(
            colored.color && !colored.json,
            "-c forces the colour console"
        );
        assert_eq!(level_from_name("fatal"), LevelFilter::Error);
    }
}
