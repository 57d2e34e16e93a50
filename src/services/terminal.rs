//! `terminal.host` kind manager and running CLI commands on it (spec `lua-api.md` §2.5, §5.2,
//! §5.4; `runtime-internals.md` §6.8).
//!
//! A `terminal.host` entry becomes a process host (same id) whose processes get the `io`
//! module's terminal (stdin/stdout/stderr and the command's arguments). [`exec`] runs one
//! command on it: the process entry is started with each argument as one string input (also
//! returned by `io.args()`); when it ends, the host writes the error (if any) to stderr as the
//! Go-side error string (`"<ctx>: <message>"`, a doubled `"<prefix>: "` collapsed once) and
//! triggers the shutdown with [`exit_code`] — last writer wins with `system.exit`, as upstream.
//!
//! Exit codes (§5.4): an error → 1; `nil`/nothing → 0; a string → 0 (not printed, as upstream);
//! a number → truncated toward zero (NaN/±Inf or outside `i32` → 1); `true` → 0, `false` → 1;
//! anything else → 0. `hide_logs: true` silences log output while the command runs.

use std::sync::{Arc, Mutex, RwLock};

use fnv::FnvHashMap;
use wippy_rt::app_context::Key;
use wippy_rt::{Error, HostConfig, Kind, Pid, Value};

use crate::lua::engine::modules::io::ATTR_TERMINAL_ARGS;
use crate::registry::OpKind;
use crate::system::System;
use crate::system::process_manager::{self, StartRequest};

/// App-context key of the terminal registry.
pub static TERMINALS_KEY: Key<Terminals> = Key::new("terminal.hosts");

/// Configuration of one `terminal.host`.
#[derive(Clone, Debug, Default)]
pub struct TerminalConfig {
    /// Suppress log output while a command runs.
    pub hide_logs: bool,
}

/// The terminal hosts of an application.
#[derive(Debug, Default)]
pub struct Terminals {
    hosts: RwLock<FnvHashMap<String, TerminalConfig>>,
    running: Mutex<Option<Pid>>,
}

impl Terminals {
    /// Ids of the terminal hosts (sorted).
    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .hosts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    fn config(&self, id: &str) -> Option<TerminalConfig> {
        self.hosts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}

/// Install the `terminal.host` kind manager (idempotent).
pub fn install(sys: &Arc<System>) -> Arc<Terminals> {
    let cx = sys.handle.app_context();
    if let Some(t) = cx.get(&TERMINALS_KEY) {
        return t;
    }
    let terminals = Arc::new(Terminals::default());
    cx.set_arc(&TERMINALS_KEY, terminals.clone());
    process_manager::install(sys);
    let w = Arc::downgrade(sys);
    sys.registry
        .handlers()
        .add_listener_fn("terminal.host", "terminal.host", move |ev| {
            let sys = w
                .upgrade()
                .ok_or_else(|| Error::internal("system is gone"))?;
            let terminals = sys
                .handle
                .app_context()
                .get(&TERMINALS_KEY)
                .ok_or_else(|| Error::internal("terminal registry missing"))?;
            let id = ev.entry.id.to_string();
            match ev.op {
                OpKind::Delete => {
                    terminals
                        .hosts
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                    let _ = sys.handle.remove_host(&id);
                    Ok(())
                }
                OpKind::Create | OpKind::Update => {
                    let cfg = TerminalConfig {
                        hide_logs: matches!(
                            ev.entry.data.get("hide_logs"),
                            Some(Value::Bool(true))
                        ),
                    };
                    let existed = terminals
                        .hosts
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id.clone(), cfg)
                        .is_some();
                    if !existed {
                        sys.handle.add_host(&id, HostConfig::default())?;
                    }
                    Ok(())
                }
            }
        });
    terminals
}

/// True when `host` is a terminal host of `sys`.
pub fn is_terminal_host(sys: &System, host: &str) -> bool {
    sys.handle
        .app_context()
        .get(&TERMINALS_KEY)
        .is_some_and(|t| {
            t.hosts
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(host)
        })
}

/// Run process entry `entry_id` as the command on terminal host `host` (None = the only
/// terminal host). Returns its PID; completion writes the error, if any, to stderr and
/// triggers the shutdown with [`exit_code`].
///
/// # Errors
/// "no terminal host found" / "multiple terminal hosts found (…); choose one with --host",
/// "terminal host not found: <id>", "terminal host is busy", and the start errors
/// ("factory not found: <id>", the entry's top-level errors, …).
pub fn exec(
    sys: &Arc<System>,
    host: Option<&str>,
    entry_id: &str,
    args: Vec<String>,
) -> Result<Pid, Error> {
    let terminals = install(sys);
    let host = match host {
        Some(h) => {
            if terminals.config(h).is_none() {
                return Err(Error::new(
                    Kind::NOT_FOUND,
                    format!("terminal host not found: {h}"),
                ));
            }
            h.to_string()
        }
        None => {
            let ids = terminals.ids();
            match ids.len() {
                0 => return Err(Error::new(Kind::NOT_FOUND, "no terminal host found")),
                1 => ids[0].clone(),
                _ => {
                    return Err(Error::invalid(format!(
                        "multiple terminal hosts found ({}); choose one with --host",
                        ids.join(", ")
                    )));
                }
            }
        }
    };
    let cfg = terminals.config(&host).unwrap_or_default();
    {
        let running = terminals.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = running.as_ref()
            && sys.handle.is_alive(p)
        {
            return Err(Error::new(Kind::UNAVAILABLE, "terminal host is busy"));
        }
    }
    let pm = process_manager::install(sys);
    let prev_level = log::max_level();
    if cfg.hide_logs {
        log::set_max_level(log::LevelFilter::Off);
    }
    let req = StartRequest {
        host,
        source: entry_id.to_string(),
        input: args.iter().map(|a| Value::from(a.as_str())).collect(),
        attrs: vec![(
            ATTR_TERMINAL_ARGS.to_string(),
            Value::Array(args.iter().map(|a| Value::from(a.as_str())).collect()),
        )],
        ..StartRequest::default()
    };
    let shutdown = sys.shutdown.clone();
    let hide = cfg.hide_logs;
    let started = pm.start_watched(
        req,
        Box::new(move |r: &Result<Value, Error>| {
            if hide {
                log::set_max_level(prev_level);
            }
            if let Err(e) = r {
                eprintln!("{}", error_text(e));
            }
            shutdown.trigger(exit_code(r) as i64);
        }),
    );
    match started {
        Ok(pid) => {
            *terminals.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid.clone());
            Ok(pid)
        }
        Err(e) => {
            if hide {
                log::set_max_level(prev_level);
            }
            Err(e)
        }
    }
}

/// The process exit code of a terminal command's result (see the module docs).
pub fn exit_code(r: &Result<Value, Error>) -> i32 {
    match r {
        Err(_) => 1,
        Ok(Value::Nil) | Ok(Value::Str(_)) => 0,
        Ok(Value::Int(i)) => i32::try_from(*i).unwrap_or(1),
        Ok(Value::Float(f)) => {
            if !f.is_finite() {
                return 1;
            }
            let t = f.trunc();
            if t < i32::MIN as f64 || t > i32::MAX as f64 {
                1
            } else {
                t as i32
            }
        }
        Ok(Value::Bool(b)) => {
            if *b {
                0
            } else {
                1
            }
        }
        Ok(_) => 0,
    }
}

/// The stderr text of a failed command: the Go-side error string with a doubled
/// `"<prefix>: "` collapsed once.
pub fn error_text(e: &Error) -> String {
    let s = e.to_string();
    if let Some((prefix, rest)) = s.split_once(": ")
        && let Some(rest2) = rest.strip_prefix(prefix)
        && let Some(tail) = rest2.strip_prefix(": ")
    {
        return format!("{prefix}: {tail}");
    }
    s
}
