//! Registry history: versions, their changesets and the head pointer (spec §9.8).
//!
//! Versions form a **tree**: v0 is the empty root; applying a change at version p creates a
//! child of p; rolling back to vN and applying again branches at vN. Each non-root version
//! stores the changeset (with originals) that leads from its parent to it, so any version is
//! reachable from any other: walk up from the current version to the lowest common ancestor
//! applying *reversed* changesets, then down applying forward ones ([`VersionTree::path`]).
//! In a tree that path is unique, so it is also the shortest path of the original's weighted
//! graph (forward 1, backward 2).
//!
//! Backends: [`MemoryHistory`] (default), [`NoHistory`] (`enable_history: false` /
//! `history_type: none|nil`) and [`SqliteHistory`] (durable; WAL; one SQLite transaction per
//! version).

mod memory;
mod sqlite;

use std::collections::BTreeMap;

use wippy_rt::Error;

pub use memory::MemoryHistory;
pub use sqlite::SqliteHistory;

use super::changeset::ChangeSet;

/// A durable or in-memory store of versions.
pub trait History: Send + Sync {
    /// Record `version` (child of `parent`) with its changeset and make it the head, atomically.
    fn save(&self, version: u64, parent: u64, changes: &ChangeSet) -> Result<(), Error>;
    /// Move the head pointer (rollback / apply_version).
    fn set_head(&self, version: u64) -> Result<(), Error>;
    /// The head version (0 when empty).
    fn head(&self) -> Result<u64, Error>;
    /// Every known version with its parent (`None` for the root).
    fn versions(&self) -> Result<Vec<(u64, Option<u64>)>, Error>;
    /// The changeset that leads to `version` from its parent; `None` when unknown.
    fn changeset(&self, version: u64) -> Result<Option<ChangeSet>, Error>;
    /// False for the no-op backend (navigation is impossible).
    fn is_enabled(&self) -> bool {
        true
    }
}

/// `history_type: none` — remembers nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHistory;

impl History for NoHistory {
    fn save(&self, _: u64, _: u64, _: &ChangeSet) -> Result<(), Error> {
        Ok(())
    }
    fn set_head(&self, _: u64) -> Result<(), Error> {
        Ok(())
    }
    fn head(&self) -> Result<u64, Error> {
        Ok(0)
    }
    fn versions(&self) -> Result<Vec<(u64, Option<u64>)>, Error> {
        Ok(vec![(0, None)])
    }
    fn changeset(&self, _: u64) -> Result<Option<ChangeSet>, Error> {
        Ok(None)
    }
    fn is_enabled(&self) -> bool {
        false
    }
}

/// One step of a path between versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Undo version `v` (apply its changeset reversed), arriving at its parent.
    Back(u64),
    /// Apply version `v`'s changeset, arriving at `v`.
    Forward(u64),
}

/// The parent links of all versions.
#[derive(Clone, Debug, Default)]
pub struct VersionTree {
    parent: BTreeMap<u64, Option<u64>>,
}

impl VersionTree {
    /// A tree with only the root v0.
    pub fn new() -> VersionTree {
        let mut parent = BTreeMap::new();
        parent.insert(0, None);
        VersionTree { parent }
    }

    /// Build from `(version, parent)` pairs; the root is always present.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u64, Option<u64>)>) -> VersionTree {
        let mut t = VersionTree::new();
        for (v, p) in pairs {
            t.parent.insert(v, if v == 0 { None } else { p });
        }
        t
    }

    /// Add a version.
    pub fn insert(&mut self, version: u64, parent: u64) {
        self.parent.insert(version, Some(parent));
    }

    /// True when known.
    pub fn contains(&self, v: u64) -> bool {
        self.parent.contains_key(&v)
    }

    /// Parent of `v`.
    pub fn parent(&self, v: u64) -> Option<u64> {
        self.parent.get(&v).copied().flatten()
    }

    /// Children of `v`, ascending.
    pub fn children(&self, v: u64) -> Vec<u64> {
        self.parent
            .iter()
            .filter(|(_, p)| **p == Some(v))
            .map(|(c, _)| *c)
            .collect()
    }

    /// The most recent child (`Version:next()`).
    pub fn next(&self, v: u64) -> Option<u64> {
        self.children(v).into_iter().max()
    }

    /// All versions ascending with parents.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Option<u64>)> + '_ {
        self.parent.iter().map(|(v, p)| (*v, *p))
    }

    /// Largest version id.
    pub fn max(&self) -> u64 {
        self.parent.keys().next_back().copied().unwrap_or(0)
    }

    /// Ancestry of `v` from `v` up to the root, inclusive. Guards against corrupt cycles.
    pub fn ancestry(&self, v: u64) -> Vec<u64> {
        let mut out = vec![v];
        let mut cur = v;
        while let Some(p) = self.parent(cur) {
            if out.contains(&p) || out.len() > self.parent.len() {
                break;
            }
            out.push(p);
            cur = p;
        }
        out
    }

    /// The steps from `from` to `to`, or an error naming the unknown version.
    pub fn path(&self, from: u64, to: u64) -> Result<Vec<Step>, Error> {
        for v in [from, to] {
            if !self.contains(v) {
                return Err(Error::not_found(format!("version not found: {v}")));
            }
        }
        let up = self.ancestry(from);
        let down = self.ancestry(to);
        let lca = up
            .iter()
            .copied()
            .find(|v| down.contains(v))
            .ok_or_else(|| {
                Error::internal(format!("versions {from} and {to} share no ancestor"))
            })?;
        let mut steps: Vec<Step> = up
            .iter()
            .take_while(|&&v| v != lca)
            .map(|&v| Step::Back(v))
            .collect();
        let fwd: Vec<u64> = down.iter().take_while(|&&v| v != lca).copied().collect();
        steps.extend(fwd.into_iter().rev().map(Step::Forward));
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_through_lca() {
        // 0 ─ 1 ─ 2 ─ 3
        //          └─ 4 ─ 5
        let t = VersionTree::from_pairs([
            (1, Some(0)),
            (2, Some(1)),
            (3, Some(2)),
            (4, Some(2)),
            (5, Some(4)),
        ]);
        assert_eq!(
            t.path(3, 5).unwrap(),
            vec![Step::Back(3), Step::Forward(4), Step::Forward(5)]
        );
        assert_eq!(
            t.path(5, 1).unwrap(),
            vec![Step::Back(5), Step::Back(4), Step::Back(2)]
        );
        assert_eq!(
            t.path(0, 3).unwrap(),
            vec![Step::Forward(1), Step::Forward(2), Step::Forward(3)]
        );
        assert!(t.path(3, 3).unwrap().is_empty());
        assert_eq!(
            t.path(3, 9).unwrap_err().to_string(),
            "version not found: 9"
        );
        assert_eq!(t.next(2), Some(4));
    }
}
