//! The three-tier router: local node → registered peer → internode transport (spec §3.4).
//!
//! Peers (in-process external receivers such as a workflow engine) and the internode
//! transport (the cluster layer, filled in later) are plain [`Receiver`]s.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use fnv::FnvBuildHasher;

use crate::error::{Error, Kind};
use crate::relay::{Node, Package, Receiver};

/// See the module docs.
pub struct Router {
    node: Arc<Node>,
    peers: RwLock<HashMap<String, Arc<dyn Receiver>, FnvBuildHasher>>,
    internode: RwLock<Option<Arc<dyn Receiver>>>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("node", &self.node.id())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A router in front of `node`.
    pub fn new(node: Arc<Node>) -> Router {
        Router {
            node,
            peers: RwLock::new(HashMap::default()),
            internode: RwLock::new(None),
        }
    }

    /// The local node.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Register a peer for `node_id`.
    ///
    /// # Errors
    /// `Invalid` "nodeID cannot be empty"; `Conflict` "peer node conflicts with local node";
    /// `AlreadyExists` "peer node already registered".
    pub fn register_peer(&self, node_id: &str, peer: Arc<dyn Receiver>) -> Result<(), Error> {
        if node_id.is_empty() {
            return Err(Error::invalid("nodeID cannot be empty"));
        }
        if node_id == self.node.id() {
            return Err(
                Error::new(Kind::CONFLICT, "peer node conflicts with local node")
                    .with_detail("node_id", node_id),
            );
        }
        let mut g = self.peers.write().unwrap_or_else(|p| p.into_inner());
        if g.contains_key(node_id) {
            return Err(
                Error::new(Kind::ALREADY_EXISTS, "peer node already registered")
                    .with_detail("node_id", node_id),
            );
        }
        g.insert(node_id.to_owned(), peer);
        Ok(())
    }

    /// Remove a peer; false when unknown.
    pub fn remove_peer(&self, node_id: &str) -> bool {
        self.peers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(node_id)
            .is_some()
    }

    /// Set or clear the internode fallback.
    pub fn set_internode(&self, r: Option<Arc<dyn Receiver>>) {
        *self.internode.write().unwrap_or_else(|p| p.into_inner()) = r;
    }

    /// Route a package.
    ///
    /// # Errors
    /// The tier's error, or `NotFound` "node not found" (detail `node_id`).
    pub fn send(&self, pkg: Package) -> Result<(), Error> {
        if self.node.is_local(&pkg.to) {
            return self.node.send(pkg);
        }
        let peer = self
            .peers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(pkg.to.node())
            .cloned();
        if let Some(p) = peer {
            return p.send(pkg);
        }
        let inter = self
            .internode
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match inter {
            Some(i) => i.send(pkg),
            None => Err(Error::not_found("node not found").with_detail("node_id", pkg.to.node())),
        }
    }
}

impl Receiver for Router {
    fn send(&self, pkg: Package) -> Result<(), Error> {
        Router::send(self, pkg)
    }
}
