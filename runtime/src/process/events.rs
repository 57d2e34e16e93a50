//! Lifecycle event payloads: CANCEL, EXIT and LINK_DOWN (spec §4.3).
//!
//! They travel as ordinary messages on topic [`EVENTS_TOPIC`] whose single payload is a
//! [`Value`] map shaped exactly like the Lua event table the original hands to
//! `process.events()`:
//!
//! * CANCEL: `{kind = "pid.cancel", from = "<canceller pid>", at = <unix seconds, float>,
//!   reason = "<text>"}`; the package's `from` is [`system_pid`].
//! * EXIT: `{kind = "pid.exit", from = "<exiting pid>", at, result = {value = v, error = e}}`;
//!   the package's `from` is the exiting PID.
//! * LINK_DOWN: like EXIT with `kind = "pid.link.down"`; the package's `from` is
//!   [`system_pid`].

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::pid::Pid;
use crate::relay::Package;
use crate::value::Value;

/// Topic of lifecycle events (`process.events()`).
pub const EVENTS_TOPIC: &str = "@pid/events";
/// Default inbox topic (`process.inbox()`).
pub const INBOX_TOPIC: &str = "@pid/inbox";
/// `process.event.CANCEL`.
pub const CANCEL: &str = "pid.cancel";
/// `process.event.EXIT`.
pub const EXIT: &str = "pid.exit";
/// `process.event.LINK_DOWN`.
pub const LINK_DOWN: &str = "pid.link.down";
/// Cancel reason used by a runtime or host stop.
pub const SHUTDOWN_REASON: &str = "scheduler shutdown";

/// The system PID `{|topology}`, source of CANCEL and LINK_DOWN packages.
pub fn system_pid() -> Pid {
    Pid::new("", "", "topology")
}

/// Now as float unix seconds (the `at` field).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The CANCEL payload.
pub fn cancel_event(from: &Pid, reason: &str) -> Value {
    Value::Map(vec![
        (Value::str("kind"), Value::str(CANCEL)),
        (Value::str("from"), Value::str(from.as_str())),
        (Value::str("at"), Value::Float(unix_now())),
        (Value::str("reason"), Value::str(reason)),
    ])
}

/// The `result` table `{value, error}` of EXIT / LINK_DOWN.
pub fn result_value(result: &Result<Value, Error>) -> Value {
    let (v, e) = match result {
        Ok(v) => (v.clone(), Value::Nil),
        Err(e) => (Value::Nil, Value::from(e.clone())),
    };
    Value::Map(vec![(Value::str("value"), v), (Value::str("error"), e)])
}

fn exit_like(kind: &str, from: &Pid, result: &Result<Value, Error>) -> Value {
    Value::Map(vec![
        (Value::str("kind"), Value::str(kind)),
        (Value::str("from"), Value::str(from.as_str())),
        (Value::str("at"), Value::Float(unix_now())),
        (Value::str("result"), result_value(result)),
    ])
}

/// The EXIT payload for a watcher of `from`.
pub fn exit_event(from: &Pid, result: &Result<Value, Error>) -> Value {
    exit_like(EXIT, from, result)
}

/// The LINK_DOWN payload for a process linked to `from`.
pub fn link_down_event(from: &Pid, result: &Result<Value, Error>) -> Value {
    exit_like(LINK_DOWN, from, result)
}

/// A CANCEL package from `canceller` to `to`.
pub fn cancel_package(canceller: &Pid, to: &Pid, reason: &str) -> Package {
    Package::new(
        system_pid(),
        to.clone(),
        EVENTS_TOPIC,
        vec![cancel_event(canceller, reason)],
    )
}

/// An EXIT package telling `watcher` that `exiting` finished.
pub fn exit_package(exiting: &Pid, watcher: &Pid, result: &Result<Value, Error>) -> Package {
    Package::new(
        exiting.clone(),
        watcher.clone(),
        EVENTS_TOPIC,
        vec![exit_event(exiting, result)],
    )
}

/// A LINK_DOWN package telling `linked` that `exiting` failed.
pub fn link_down_package(exiting: &Pid, linked: &Pid, result: &Result<Value, Error>) -> Package {
    Package::new(
        system_pid(),
        linked.clone(),
        EVENTS_TOPIC,
        vec![link_down_event(exiting, result)],
    )
}

/// The `kind` of an event payload (`"pid.cancel"`, …), if it is one.
pub fn event_kind(payload: &Value) -> Option<&str> {
    payload.get("kind").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let a = Pid::new("", "app:h", "0x00001");
        let c = cancel_event(&Pid::zero(), "scheduler shutdown");
        assert_eq!(event_kind(&c), Some(CANCEL));
        assert_eq!(c.get("from").and_then(Value::as_str), Some("{|}"));
        assert!(matches!(c.get("at"), Some(Value::Float(_))));
        assert_eq!(
            c.get("reason").and_then(Value::as_str),
            Some("scheduler shutdown")
        );
        let e = exit_event(&a, &Err(Error::internal("boom")));
        assert_eq!(event_kind(&e), Some(EXIT));
        assert_eq!(e.get_path("result.value"), Some(&Value::Nil));
        assert!(
            matches!(e.get_path("result.error"), Some(Value::Error(x)) if x.message() == "boom")
        );
        let p = link_down_package(&a, &a, &Ok(Value::Int(1)));
        assert_eq!(p.from, system_pid());
        assert_eq!(p.from.as_str(), "{|topology}");
        assert_eq!(p.topic, EVENTS_TOPIC);
        assert_eq!(event_kind(&p.payloads[0]), Some(LINK_DOWN));
    }
}
