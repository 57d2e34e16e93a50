//! The `lifecycle` block of supervised entries (spec `runtime-internals.md` §6.1,
//! `lua-api.md` §2.0), parsed once by the kind manager that registers the service.
//!
//! **Stand-in** with the API of `crate::system::supervisor::LifecycleConfig` (branch
//! `system`); deleted when that branch is merged (see [`super::supervision`]).
//!
//! Rules (as the original): unknown fields are ignored; a zero or missing duration/number
//! takes its default (so `jitter: 0` cannot be expressed); `requires` and the legacy
//! `depends_on` are merged (order kept, duplicates dropped) and a bare name gets the entry's
//! namespace. Type errors are reported as `lifecycle.<field>: <problem>` (kind `Invalid`), so
//! the registry rejects the entry naming it.

use std::time::Duration;

use wippy_rt::{Error, Value};

use crate::config::parse_duration;
use crate::registry::Id;

/// Default `start_timeout`.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `stop_timeout`.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `stable_threshold`.
pub const DEFAULT_STABLE_THRESHOLD: Duration = Duration::from_secs(5);
/// Default `restart.initial_delay`.
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_secs(1);
/// Default `restart.max_delay`.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(90);
/// Default `restart.backoff_factor`.
pub const DEFAULT_BACKOFF_FACTOR: f64 = 2.0;
/// Default `restart.jitter`.
pub const DEFAULT_JITTER: f64 = 0.1;

/// `startup`: whether a failing auto-start root fails the boot transition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Startup {
    /// Must start (default).
    #[default]
    Required,
    /// May fail without failing the boot.
    Optional,
}

/// `restart`.
#[derive(Clone, Debug, PartialEq)]
pub struct RestartPolicy {
    /// First retry delay.
    pub initial_delay: Duration,
    /// Delay cap.
    pub max_delay: Duration,
    /// Multiplier per retry.
    pub backoff_factor: f64,
    /// ± fraction of random spread.
    pub jitter: f64,
    /// Total attempts including the first; 0 = unlimited.
    pub max_attempts: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_delay: DEFAULT_INITIAL_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            backoff_factor: DEFAULT_BACKOFF_FACTOR,
            jitter: DEFAULT_JITTER,
            max_attempts: 0,
        }
    }
}

/// A parsed `lifecycle` block.
#[derive(Clone, Debug, PartialEq)]
pub struct LifecycleConfig {
    /// Start when the registering registry transaction commits.
    pub auto_start: bool,
    /// Required or optional.
    pub startup: Startup,
    /// Max time for `Service::start`.
    pub start_timeout: Duration,
    /// Max time for `Service::stop`.
    pub stop_timeout: Duration,
    /// Run time after which the retry counter resets.
    pub stable_threshold: Duration,
    /// Services that must run first (`requires` ∪ `depends_on`, fully qualified ids).
    pub requires: Vec<String>,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// `security` block, kept raw for the security layer.
    pub security: Value,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            auto_start: false,
            startup: Startup::Required,
            start_timeout: DEFAULT_START_TIMEOUT,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            stable_threshold: DEFAULT_STABLE_THRESHOLD,
            requires: Vec::new(),
            restart: RestartPolicy::default(),
            security: Value::Nil,
        }
    }
}

fn bad(field: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("lifecycle.{field}: {msg}")).with_retryable(Some(false))
}

fn duration(m: &Value, key: &str, field: &str, default: Duration) -> Result<Duration, Error> {
    match m.get(key) {
        None | Some(Value::Nil) | Some(Value::Int(0)) => Ok(default),
        Some(v @ Value::Str(_)) => {
            let s = v.as_str().unwrap_or("");
            if s.trim().is_empty() {
                return Ok(default);
            }
            let d = parse_duration(s).map_err(|e| bad(field, e))?;
            Ok(if d.is_zero() { default } else { d })
        }
        Some(other) => Err(bad(
            field,
            format!(
                "expected a duration string such as \"10s\", got {}",
                other.type_name()
            ),
        )),
    }
}

fn number(m: &Value, key: &str, field: &str, default: f64) -> Result<f64, Error> {
    match m.get(key) {
        None | Some(Value::Nil) => Ok(default),
        Some(v @ (Value::Int(_) | Value::Float(_))) => {
            let f = v.as_f64().unwrap_or(0.0);
            if !f.is_finite() || f < 0.0 {
                return Err(bad(
                    field,
                    format!("must be a non-negative number, got {f}"),
                ));
            }
            Ok(if f == 0.0 { default } else { f })
        }
        Some(other) => Err(bad(
            field,
            format!("expected a number, got {}", other.type_name()),
        )),
    }
}

fn id_list(m: &Value, key: &str, ns: &str, out: &mut Vec<String>) -> Result<(), Error> {
    let items: Vec<&Value> = match m.get(key) {
        None | Some(Value::Nil) => return Ok(()),
        Some(v @ Value::Str(_)) => vec![v],
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => {
            return Err(bad(
                key,
                format!("expected a list of entry ids, got {}", other.type_name()),
            ));
        }
    };
    for (i, v) in items.into_iter().enumerate() {
        let s = v.as_str().ok_or_else(|| {
            bad(
                &format!("{key}[{i}]"),
                format!("expected an entry id, got {}", v.type_name()),
            )
        })?;
        let s = s.trim();
        if s.is_empty() {
            continue;
        }
        let id = Id::parse_relative(s, ns).to_string();
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(())
}

impl LifecycleConfig {
    /// Parse the `lifecycle` value of an entry in namespace `ns` (nil = defaults).
    ///
    /// # Errors
    /// `Invalid` naming the field.
    pub fn parse(v: &Value, ns: &str) -> Result<LifecycleConfig, Error> {
        let mut out = LifecycleConfig::default();
        let m = match v {
            Value::Nil => return Ok(out),
            m @ Value::Map(_) => m,
            Value::Array(a) if a.is_empty() => return Ok(out),
            other => {
                return Err(Error::invalid(format!(
                    "lifecycle must be a mapping, got {}",
                    other.type_name()
                ))
                .with_retryable(Some(false)));
            }
        };
        out.auto_start = match m.get("auto_start") {
            None | Some(Value::Nil) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(bad(
                    "auto_start",
                    format!("expected a boolean, got {}", other.type_name()),
                ));
            }
        };
        out.startup = match m.get("startup").map(|v| (v, v.as_str())) {
            None | Some((Value::Nil, _)) | Some((_, Some("" | "required"))) => Startup::Required,
            Some((_, Some("optional"))) => Startup::Optional,
            Some((v, _)) => {
                return Err(bad(
                    "startup",
                    format!("must be \"required\" or \"optional\", got {v:?}"),
                ));
            }
        };
        out.start_timeout = duration(m, "start_timeout", "start_timeout", DEFAULT_START_TIMEOUT)?;
        out.stop_timeout = duration(m, "stop_timeout", "stop_timeout", DEFAULT_STOP_TIMEOUT)?;
        out.stable_threshold = duration(
            m,
            "stable_threshold",
            "stable_threshold",
            DEFAULT_STABLE_THRESHOLD,
        )?;
        id_list(m, "requires", ns, &mut out.requires)?;
        id_list(m, "depends_on", ns, &mut out.requires)?;
        match m.get("restart") {
            None | Some(Value::Nil) => {}
            Some(r @ Value::Map(_)) => {
                let p = &mut out.restart;
                p.initial_delay = duration(
                    r,
                    "initial_delay",
                    "restart.initial_delay",
                    DEFAULT_INITIAL_DELAY,
                )?;
                p.max_delay = duration(r, "max_delay", "restart.max_delay", DEFAULT_MAX_DELAY)?;
                p.backoff_factor = number(
                    r,
                    "backoff_factor",
                    "restart.backoff_factor",
                    DEFAULT_BACKOFF_FACTOR,
                )?;
                p.jitter = number(r, "jitter", "restart.jitter", DEFAULT_JITTER)?;
                p.max_attempts = match r.get("max_attempts") {
                    None | Some(Value::Nil) => 0,
                    Some(v) => match v.as_i64() {
                        Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => n as u32,
                        _ => {
                            return Err(bad(
                                "restart.max_attempts",
                                format!("expected a non-negative integer, got {v:?}"),
                            ));
                        }
                    },
                };
            }
            Some(other) => {
                return Err(bad(
                    "restart",
                    format!("expected a mapping, got {}", other.type_name()),
                ));
            }
        }
        out.security = m.get("security").cloned().unwrap_or(Value::Nil);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(
            LifecycleConfig::parse(&Value::Nil, "app").unwrap(),
            LifecycleConfig::default()
        );
        let c = LifecycleConfig::parse(
            &yaml(
                "{auto_start: true, startup: optional, stop_timeout: 2s, start_timeout: 0,
                  requires: [db, 'other:svc'], depends_on: [db, cache],
                  restart: {initial_delay: 500ms, jitter: 0, max_attempts: 3}}",
            ),
            "app",
        )
        .unwrap();
        assert!(c.auto_start);
        assert_eq!(c.startup, Startup::Optional);
        assert_eq!(c.stop_timeout, Duration::from_secs(2));
        assert_eq!(
            c.start_timeout, DEFAULT_START_TIMEOUT,
            "zero takes the default"
        );
        assert_eq!(c.requires, ["app:db", "other:svc", "app:cache"]);
        assert_eq!(c.restart.initial_delay, Duration::from_millis(500));
        assert_eq!(c.restart.jitter, DEFAULT_JITTER);
        assert_eq!(c.restart.max_attempts, 3);
    }

    #[test]
    fn errors_name_the_field() {
        let e = |s: &str| {
            LifecycleConfig::parse(&yaml(s), "x")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e("{auto_start: yes please}"),
            "lifecycle.auto_start: expected a boolean, got string"
        );
        assert!(
            e("{stop_timeout: 10}")
                .starts_with("lifecycle.stop_timeout: expected a duration string")
        );
        assert!(
            e("{stop_timeout: soon}")
                .starts_with("lifecycle.stop_timeout: invalid duration \"soon\"")
        );
        assert!(e("{startup: maybe}").starts_with("lifecycle.startup: must be"));
        assert_eq!(
            e("{requires: [1]}"),
            "lifecycle.requires[0]: expected an entry id, got number"
        );
        assert_eq!(e("[1]"), "lifecycle must be a mapping, got table");
        assert!(e("{restart: {max_attempts: -1}}").starts_with("lifecycle.restart.max_attempts"));
    }
}
