//! The `lifecycle` block shared by every supervised kind (spec `lua-api.md` §2.0,
//! `runtime-internals.md` §6.1).
//!
//! ```yaml
//! lifecycle:
//!   auto_start: true
//!   startup: required            # or optional
//!   start_timeout: 10s
//!   stop_timeout: 10s
//!   stable_threshold: 5s
//!   requires: [app:db]           # legacy alias: depends_on (both merged)
//!   restart: { initial_delay: 1s, max_delay: 90s, backoff_factor: 2.0, jitter: 0.1, max_attempts: 0 }
//! ```
//!
//! Durations are Go duration strings. Missing fields and zero values take the defaults, as
//! upstream (so `start_timeout: 0s` means 10 s), with two deliberate exceptions (decision
//! 0063): an explicit `jitter: 0` disables jitter, and `backoff_factor: 1` (constant delay)
//! is accepted like any factor ≥ 1. Invalid values are errors naming the field (upstream
//! silently used defaults for some and failed JSON decoding for others): a factor below 1, a
//! jitter outside `[0, 1]`, a negative `max_attempts`, an unknown `startup` mode, a duration
//! that is not a string.

use std::time::Duration;

use wippy_rt::{Error, Value};

use crate::config::duration::parse_duration;
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

/// `startup` mode of an auto-start root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Startup {
    /// A failure fails the boot transition.
    #[default]
    Required,
    /// May fail (and keep retrying in the background) without failing the transition.
    Optional,
}

/// The `restart` block.
#[derive(Clone, Debug, PartialEq)]
pub struct RestartPolicy {
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// Cap of the growing delay.
    pub max_delay: Duration,
    /// Growth factor between consecutive retries (≥ 1).
    pub backoff_factor: f64,
    /// ± fraction of uniform jitter (0 ≤ jitter ≤ 1).
    pub jitter: f64,
    /// Total attempts including the first (0 = unlimited).
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
    /// Start when the registering registry change commits.
    pub auto_start: bool,
    /// Required or optional auto-start root.
    pub startup: Startup,
    /// Max time for `Service::start`.
    pub start_timeout: Duration,
    /// Max time for `Service::stop`.
    pub stop_timeout: Duration,
    /// Run time after which the retry counter resets.
    pub stable_threshold: Duration,
    /// Services that must be running first (`requires` ∪ `depends_on`, fully qualified).
    pub requires: Vec<String>,
    /// The raw `security` block (actor/groups/policies), kept for the service.
    pub security: Value,
    /// Restart policy.
    pub restart: RestartPolicy,
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
            security: Value::Nil,
            restart: RestartPolicy::default(),
        }
    }
}

impl LifecycleConfig {
    /// Parse the `lifecycle` value of an entry in namespace `ns` (relative `requires` names
    /// get that namespace). `Nil` gives the defaults.
    ///
    /// # Errors
    /// `Invalid` `"lifecycle.<field>: <why>"`.
    pub fn parse(v: &Value, ns: &str) -> Result<LifecycleConfig, Error> {
        let mut c = LifecycleConfig::default();
        if v.is_nil() {
            return Ok(c);
        }
        if v.as_map().is_none() {
            return Err(bad("lifecycle", "must be a mapping"));
        }
        if let Some(b) = field(v, "auto_start") {
            c.auto_start = b
                .as_bool()
                .ok_or_else(|| bad("lifecycle.auto_start", "must be a boolean"))?;
        }
        if let Some(s) = field(v, "startup") {
            c.startup = match s.as_str() {
                Some("required") | Some("") => Startup::Required,
                Some("optional") => Startup::Optional,
                _ => {
                    return Err(bad(
                        "lifecycle.startup",
                        "must be \"required\" or \"optional\"",
                    ));
                }
            };
        }
        c.start_timeout = duration(v, "start_timeout", "lifecycle.start_timeout")?
            .unwrap_or(DEFAULT_START_TIMEOUT);
        c.stop_timeout =
            duration(v, "stop_timeout", "lifecycle.stop_timeout")?.unwrap_or(DEFAULT_STOP_TIMEOUT);
        c.stable_threshold = duration(v, "stable_threshold", "lifecycle.stable_threshold")?
            .unwrap_or(DEFAULT_STABLE_THRESHOLD);
        for key in ["requires", "depends_on"] {
            for id in string_list(v, key)? {
                let id = Id::parse_relative(&id, ns).to_string();
                if !c.requires.contains(&id) {
                    c.requires.push(id);
                }
            }
        }
        if let Some(s) = field(v, "security") {
            c.security = s.clone();
        }
        if let Some(r) = field(v, "restart") {
            c.restart = parse_restart(r)?;
        }
        Ok(c)
    }
}

fn parse_restart(r: &Value) -> Result<RestartPolicy, Error> {
    let mut p = RestartPolicy::default();
    if r.as_map().is_none() {
        return Err(bad("lifecycle.restart", "must be a mapping"));
    }
    p.initial_delay = duration(r, "initial_delay", "lifecycle.restart.initial_delay")?
        .unwrap_or(DEFAULT_INITIAL_DELAY);
    p.max_delay =
        duration(r, "max_delay", "lifecycle.restart.max_delay")?.unwrap_or(DEFAULT_MAX_DELAY);
    if let Some(f) = field(r, "backoff_factor") {
        let f = f
            .as_f64()
            .ok_or_else(|| bad("lifecycle.restart.backoff_factor", "must be a number"))?;
        if f == 0.0 {
            p.backoff_factor = DEFAULT_BACKOFF_FACTOR;
        } else if !(1.0..=1000.0).contains(&f) {
            return Err(bad(
                "lifecycle.restart.backoff_factor",
                "must be between 1 and 1000",
            ));
        } else {
            p.backoff_factor = f;
        }
    }
    if let Some(j) = field(r, "jitter") {
        let j = j
            .as_f64()
            .ok_or_else(|| bad("lifecycle.restart.jitter", "must be a number"))?;
        if !(0.0..=1.0).contains(&j) {
            return Err(bad("lifecycle.restart.jitter", "must be between 0 and 1"));
        }
        p.jitter = j;
    }
    if let Some(m) = field(r, "max_attempts") {
        let m = m
            .as_i64()
            .ok_or_else(|| bad("lifecycle.restart.max_attempts", "must be an integer"))?;
        p.max_attempts =
            u32::try_from(m).map_err(|_| bad("lifecycle.restart.max_attempts", "must be >= 0"))?;
    }
    Ok(p)
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_nil())
}

fn duration(v: &Value, key: &str, path: &str) -> Result<Option<Duration>, Error> {
    let Some(x) = field(v, key) else {
        return Ok(None);
    };
    let s = x
        .as_str()
        .ok_or_else(|| bad(path, "must be a duration string such as \"10s\""))?;
    let d = parse_duration(s).map_err(|e| bad(path, &e.to_string()))?;
    Ok((!d.is_zero()).then_some(d))
}

fn string_list(v: &Value, key: &str) -> Result<Vec<String>, Error> {
    let path = format!("lifecycle.{key}");
    match field(v, key) {
        None => Ok(Vec::new()),
        Some(Value::Str(s)) => Ok(vec![s.to_string_lossy().into_owned()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(&path, "must be a list of service ids"))
            })
            .collect(),
        Some(_) => Err(bad(&path, "must be a list of service ids")),
    }
}

#[cold]
fn bad(path: &str, why: &str) -> Error {
    Error::invalid(format!("{path}: {why}")).with_retryable(Some(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn defaults_and_fields() {
        let c = LifecycleConfig::parse(&Value::Nil, "app").unwrap();
        assert_eq!(c, LifecycleConfig::default());
        let c = LifecycleConfig::parse(
            &yaml(
                "auto_start: true\nstartup: optional\nstart_timeout: 2s\nstop_timeout: 0s\n\
                 requires: [db, 'other:cache']\ndepends_on: [db, queue]\n\
                 restart: {initial_delay: 100ms, max_delay: 1s, backoff_factor: 3, jitter: 0, max_attempts: 4}",
            ),
            "app",
        )
        .unwrap();
        assert!(c.auto_start);
        assert_eq!(c.startup, Startup::Optional);
        assert_eq!(c.start_timeout, Duration::from_secs(2));
        assert_eq!(c.stop_timeout, DEFAULT_STOP_TIMEOUT);
        assert_eq!(c.requires, vec!["app:db", "other:cache", "app:queue"]);
        assert_eq!(c.restart.initial_delay, Duration::from_millis(100));
        assert_eq!(c.restart.backoff_factor, 3.0);
        assert_eq!(c.restart.jitter, 0.0);
        assert_eq!(c.restart.max_attempts, 4);
    }

    #[test]
    fn errors_name_the_field() {
        for (src, msg) in [
            (
                "restart: {backoff_factor: 0.5}",
                "lifecycle.restart.backoff_factor",
            ),
            ("restart: {jitter: 2}", "lifecycle.restart.jitter"),
            (
                "restart: {max_attempts: -1}",
                "lifecycle.restart.max_attempts",
            ),
            ("start_timeout: 10", "lifecycle.start_timeout"),
            ("start_timeout: 10x", "lifecycle.start_timeout"),
            ("startup: sometimes", "lifecycle.startup"),
            ("auto_start: yes please", "lifecycle.auto_start"),
        ] {
            let e = LifecycleConfig::parse(&yaml(src), "app").unwrap_err();
            assert!(e.message().starts_with(msg), "{src}: {}", e.message());
        }
    }
}
