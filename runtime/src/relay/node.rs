//! The local node: host id → receiver (spec §3.3).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use crossbeam_channel::Sender;
use fnv::FnvBuildHasher;

use crate::error::{Error, Kind};
use crate::pid::Pid;
use crate::relay::{Package, Receiver};

/// See the module docs.
pub struct Node {
    id: String,
    hosts: RwLock<HashMap<String, Arc<dyn Receiver>, FnvBuildHasher>>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("hosts", &self.host_ids())
            .finish()
    }
}

impl Node {
    /// A node with id `id` (`""` for a standalone node).
    pub fn new(id: impl Into<String>) -> Node {
        Node {
            id: id.into(),
            hosts: RwLock::new(HashMap::default()),
        }
    }

    /// The node id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// True when `pid` lives on this node (`node` empty or equal to this node's id).
    pub fn is_local(&self, pid: &Pid) -> bool {
        pid.node().is_empty() || pid.node() == self.id
    }

    /// Register a host.
    ///
    /// # Errors
    /// `AlreadyExists` "host already exists" (registration never replaces).
    pub fn register_host(&self, id: &str, receiver: Arc<dyn Receiver>) -> Result<(), Error> {
        let mut g = self.hosts.write().unwrap_or_else(|p| p.into_inner());
        if g.contains_key(id) {
            return Err(
                Error::new(Kind::ALREADY_EXISTS, "host already exists").with_detail("host_id", id)
            );
        }
        g.insert(id.to_owned(), receiver);
        Ok(())
    }

    /// Remove a host, returning its receiver.
    pub fn unregister_host(&self, id: &str) -> Option<Arc<dyn Receiver>> {
        self.hosts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }

    /// The receiver of a host.
    pub fn get_host(&self, id: &str) -> Option<Arc<dyn Receiver>> {
        self.hosts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Registered host ids (sorted).
    pub fn host_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .hosts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Deliver to the target's host.
    ///
    /// # Errors
    /// `Unavailable` "cannot route to external node" for another node's PID; `NotFound`
    /// "host not found" (details `host_id`, `node_id`); else the host's own error.
    pub fn send(&self, pkg: Package) -> Result<(), Error> {
        if !self.is_local(&pkg.to) {
            return Err(
                Error::new(Kind::UNAVAILABLE, "cannot route to external node")
                    .with_detail("node_id", pkg.to.node()),
            );
        }
        let Some(host) = self.get_host(pkg.to.host()) else {
            return Err(host_not_found(pkg.to.host(), &self.id));
        };
        host.send(pkg)
    }

    /// Attach a channel for `pid` on an attachable host.
    ///
    /// # Errors
    /// "host not found"; `Invalid` "host does not support attachment"; the host's error.
    pub fn attach(&self, host: &str, pid: &Pid, tx: Sender<Package>) -> Result<(), Error> {
        let h = self
            .get_host(host)
            .ok_or_else(|| host_not_found(host, &self.id))?;
        match h.as_attach() {
            Some(a) => a.attach(pid, tx),
            None => {
                Err(Error::invalid("host does not support attachment").with_detail("host_id", host))
            }
        }
    }

    /// Detach the channel of `pid` on `host`.
    pub fn detach(&self, host: &str, pid: &Pid) -> bool {
        self.get_host(host)
            .is_some_and(|h| h.as_attach().is_some_and(|a| a.detach(pid)))
    }
}

impl Receiver for Node {
    fn send(&self, pkg: Package) -> Result<(), Error> {
        Node::send(self, pkg)
    }
}

#[cold]
pub(crate) fn host_not_found(host: &str, node: &str) -> Error {
    Error::not_found("host not found")
        .with_detail("host_id", host)
        .with_detail("node_id", node)
}
