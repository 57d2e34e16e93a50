//! Relay: packages, receivers, the local node, the router and the mailbox host (spec §3).
//!
//! * `package` — [`Package`], [`Receiver`], [`Attach`].
//! * `node` — [`Node`]: host id → receiver.
//! * `router` — [`Router`]: local → peer → internode.
//! * `mailbox` — [`Mailbox`]: per-PID channel delivery through a per-sender-ordered pool.

mod mailbox;
mod node;
mod package;
mod router;

pub use mailbox::{Mailbox, MailboxConfig, fnv1a32};
pub use node::Node;
pub(crate) use node::host_not_found;
pub use package::{Attach, Package, Receiver};
pub use router::Router;
