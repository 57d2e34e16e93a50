//! Service statuses, the observable state of a controller, and the `supervisor` bus events
//! (spec `runtime-internals.md` §6.3).
//!
//! Every state change publishes `{system = "supervisor", kind = "service.update", path = <id>,
//! data = <state map>}`. The map carries the real `desired` status and `retry_count` (upstream
//! sends `desired = status` and `retry_count = 0`, spec §14.6; fixed, decision 0063).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wippy_rt::{BusEvent, Value};

/// Bus system of supervisor events.
pub const SYSTEM: &str = "supervisor";
/// Kind of state-change events.
pub const KIND_UPDATE: &str = "service.update";
/// Kind published when a service is registered (informational).
pub const KIND_REGISTER: &str = "service.register";
/// Kind published when a service is removed (informational).
pub const KIND_REMOVE: &str = "service.remove";
/// Command kind: start a service and its dependencies (path = service id).
pub const KIND_START: &str = "service.start";
/// Command kind: stop a service and its dependents (path = service id).
pub const KIND_STOP: &str = "service.stop";

/// A service status (upstream names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Status {
    /// Registered, never started.
    #[default]
    Unknown,
    /// `Service::start` in progress.
    Starting,
    /// Started and not (yet) exited.
    Running,
    /// `Service::stop` in progress.
    Stopping,
    /// Stopped on request.
    Stopped,
    /// Exited on its own with a normal or non-retryable result: never restarted.
    Exited,
    /// Failed (retrying, or gave up).
    Failed,
}

impl Status {
    /// The lower-case name (`"running"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::Exited => "exited",
            Status::Failed => "failed",
        }
    }

    /// True for the statuses in which the service may be consuming resources.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Starting | Status::Running | Status::Stopping)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the operator wants a service to be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Desired {
    /// Keep it running (restart per policy).
    Running,
    /// Keep it stopped.
    #[default]
    Stopped,
}

impl Desired {
    /// `"running"` / `"stopped"`.
    pub fn name(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
        }
    }
}

/// The observable state of one service (CLI, `system.supervisor.state`, bus events).
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceState {
    /// Service id (registry id of the entry).
    pub id: String,
    /// Current status.
    pub status: Status,
    /// Desired status.
    pub desired: Desired,
    /// Free text: `attempt N`, the last error, `retry in 2s`, …
    pub details: String,
    /// Consecutive failures counted toward `max_attempts` (resets after a stable run).
    pub retry_count: u32,
    /// Time of the last change.
    pub last_update: SystemTime,
    /// When the current (or last) run started.
    pub started_at: Option<SystemTime>,
    /// When the pending retry fires, if one is scheduled.
    pub next_retry_in: Option<Duration>,
}

impl ServiceState {
    /// A fresh state for `id`.
    pub fn new(id: &str) -> ServiceState {
        ServiceState {
            id: id.to_string(),
            status: Status::Unknown,
            desired: Desired::Stopped,
            details: String::new(),
            retry_count: 0,
            last_update: SystemTime::now(),
            started_at: None,
            next_retry_in: None,
        }
    }

    /// The map form `{id, status, desired, details, retry_count, last_update, started_at}`
    /// (times as float unix seconds; `started_at` absent before the first run).
    pub fn to_value(&self) -> Value {
        let mut m = vec![
            (Value::str("id"), Value::str(&self.id)),
            (Value::str("status"), Value::str(self.status.name())),
            (Value::str("desired"), Value::str(self.desired.name())),
            (Value::str("details"), Value::str(&self.details)),
            (
                Value::str("retry_count"),
                Value::Int(i64::from(self.retry_count)),
            ),
            (
                Value::str("last_update"),
                Value::Float(unix(self.last_update)),
            ),
        ];
        if let Some(s) = self.started_at {
            m.push((Value::str("started_at"), Value::Float(unix(s))));
        }
        Value::Map(m)
    }

    /// The `service.update` bus event for this state.
    pub fn event(&self) -> BusEvent {
        BusEvent::new(SYSTEM, KIND_UPDATE, self.id.clone(), self.to_value())
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
