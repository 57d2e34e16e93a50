//! Packages and receivers (spec §3.1–3.2).

use std::fmt;

use crossbeam_channel::Sender;

use crate::error::Error;
use crate::pid::Pid;
use crate::value::Value;

/// A message in flight: one topic and its payloads, from one PID to another.
///
/// (The original batches several messages per package; every producer in practice sends one,
/// so a package here *is* one message, and a batch is several packages.) Receivers own the
/// package after `send`.
#[derive(Clone, PartialEq)]
pub struct Package {
    /// The sender (`{|}` = no sender, `{|topology}` = the system).
    pub from: Pid,
    /// The target.
    pub to: Pid,
    /// The topic (`@pid/inbox` by default for `process.send`; `@`-topics are reserved).
    pub topic: String,
    /// The payloads.
    pub payloads: Vec<Value>,
}

impl Package {
    /// A package.
    pub fn new(from: Pid, to: Pid, topic: impl Into<String>, payloads: Vec<Value>) -> Package {
        Package {
            from,
            to,
            topic: topic.into(),
            payloads,
        }
    }

    /// True for reserved (`@`-prefixed) topics such as `@pid/events`: control traffic.
    pub fn is_control(&self) -> bool {
        self.topic.starts_with('@') && self.topic != crate::process::INBOX_TOPIC
    }
}

impl fmt::Debug for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Package")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("topic", &self.topic)
            .field("payloads", &self.payloads)
            .finish()
    }
}

/// Something packages can be delivered to: a process host, a mailbox host, a peer node, the
/// cluster transport.
pub trait Receiver: Send + Sync {
    /// Deliver (or route) a package. Errors are the caller's, e.g. "process not found".
    fn send(&self, pkg: Package) -> Result<(), Error>;

    /// Channel attachment, for hosts that deliver to per-PID channels (see [`Attach`]).
    fn as_attach(&self) -> Option<&dyn Attach> {
        None
    }
}

/// A receiver that hands packages addressed to a PID to a channel attached for that PID.
pub trait Attach: Send + Sync {
    /// Attach `tx` for `pid`. Errors: "receiver already attached".
    fn attach(&self, pid: &Pid, tx: Sender<Package>) -> Result<(), Error>;
    /// Detach; false when nothing was attached.
    fn detach(&self, pid: &Pid) -> bool;
}
