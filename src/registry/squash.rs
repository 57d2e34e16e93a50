//! Squashing a sequence of changesets into one net changeset (spec §9.5).
//!
//! Per entry id the net effect is tracked as a small state machine; `orig` is the entry as it
//! was before the whole sequence, `new` the latest value:
//!
//! | net \ next      | create(new)              | update(new)          | delete        |
//! |-----------------|--------------------------|----------------------|---------------|
//! | Create(new)     | Create(new) (warn)       | Create(new)          | nothing       |
//! | Update(o, _)    | Update/Replace (warn)    | Update(o, new)       | Delete(o)     |
//! | Delete(o)       | Update(o,new) same kind, else **Replace(o,new)** | same as create (warn) | Delete(o) (warn) |
//! | Replace(o, _)   | Replace(o,new) (warn)    | Replace(o, new)      | Delete(o)     |
//!
//! `Replace` emits delete(o) followed by create(new). It fixes the original's bug where a
//! delete followed by a create of a *different kind* kept only the create, so the old entry's
//! handler never saw the delete (see `docs/decisions/0020-squash-replace.md`). An update whose
//! net value equals the original is dropped (no-op).
//!
//! The result is normalised and dependency-sorted with [`sort_changeset`].

use std::sync::Arc;

use indexmap::IndexMap;

use super::changeset::{ChangeSet, OpKind, Operation};
use super::delta::sort_changeset;
use super::deps::DepResolver;
use super::entry::{Entry, Id};
use super::state::State;

#[derive(Clone, Debug)]
enum Net {
    Create(Arc<Entry>),
    Update(Option<Arc<Entry>>, Arc<Entry>),
    Delete(Option<Arc<Entry>>, Arc<Entry>),
    Replace(Option<Arc<Entry>>, Arc<Entry>),
    Nothing,
}

fn warn(msg: &str, id: &Id) {
    log::warn!(target: "wippy::registry", "squash: {msg} for {id}");
}

/// From a net `Delete(orig)` state, the entry comes back with `new`.
fn recreate(orig: Option<Arc<Entry>>, new: Arc<Entry>) -> Net {
    match &orig {
        Some(o) if o.kind == new.kind => Net::Update(orig, new),
        Some(_) => Net::Replace(orig, new),
        None => Net::Create(new),
    }
}

fn step(net: Option<Net>, op: &Operation) -> Net {
    let new = op.entry.clone();
    let id = &op.entry.id;
    match (net, op.kind) {
        (None, OpKind::Create) | (Some(Net::Nothing), OpKind::Create) => Net::Create(new),
        (None, OpKind::Update) => Net::Update(op.original.clone(), new),
        (None, OpKind::Delete) => {
            let orig = op
                .original
                .clone()
                .or_else(|| (!op.entry.kind.is_empty()).then(|| new.clone()));
            Net::Delete(orig, new)
        }
        (Some(Net::Nothing), OpKind::Update) => {
            warn("update after create+delete", id);
            Net::Create(new)
        }
        (Some(Net::Nothing), OpKind::Delete) => {
            warn(
                "delete of an entry created and deleted in the same sequence",
                id,
            );
            Net::Nothing
        }
        (Some(Net::Create(_)), OpKind::Create) => {
            warn("create after create", id);
            Net::Create(new)
        }
        (Some(Net::Create(_)), OpKind::Update) => Net::Create(new),
        (Some(Net::Create(_)), OpKind::Delete) => Net::Nothing,
        (Some(Net::Update(o, _)), OpKind::Create) => {
            warn("create after update", id);
            recreate(o, new)
        }
        (Some(Net::Update(o, _)), OpKind::Update) => Net::Update(o, new),
        (Some(Net::Update(o, cur)), OpKind::Delete) => Net::Delete(o, cur),
        (Some(Net::Delete(o, _)), OpKind::Create) => recreate(o, new),
        (Some(Net::Delete(o, _)), OpKind::Update) => {
            warn("update after delete", id);
            recreate(o, new)
        }
        (Some(Net::Delete(o, cur)), OpKind::Delete) => {
            warn("delete after delete", id);
            Net::Delete(o, cur)
        }
        (Some(Net::Replace(o, _)), OpKind::Create) => {
            warn("create after create", id);
            Net::Replace(o, new)
        }
        (Some(Net::Replace(o, _)), OpKind::Update) => Net::Replace(o, new),
        (Some(Net::Replace(o, cur)), OpKind::Delete) => Net::Delete(o, cur),
    }
}

/// Merge changesets (applied in order) into one net changeset, sorted against `from` (the
/// state the result will be applied to).
pub fn squash<'a, I>(changesets: I, from: &State, resolver: &DepResolver) -> ChangeSet
where
    I: IntoIterator<Item = &'a ChangeSet>,
{
    let mut net: IndexMap<Id, Net, fnv::FnvBuildHasher> = IndexMap::default();
    for cs in changesets {
        for op in &cs.ops {
            let prev = net.swap_remove(&op.entry.id);
            let next = step(prev, op);
            net.insert(op.entry.id.clone(), next);
        }
    }
    let mut ops = Vec::with_capacity(net.len());
    for (_, n) in net {
        match n {
            Net::Nothing => {}
            Net::Create(e) => ops.push(Operation::create(e)),
            Net::Update(o, e) => {
                if o.as_ref().is_none_or(|o| **o != *e) {
                    ops.push(Operation::update(e).with_original(o));
                }
            }
            Net::Delete(o, e) => {
                let entry = o.clone().unwrap_or(e);
                ops.push(Operation::delete_entry(entry).with_original(o));
            }
            Net::Replace(o, e) => {
                if let Some(orig) = &o {
                    ops.push(Operation::delete_entry(orig.clone()).with_original(o.clone()));
                }
                ops.push(Operation::create(e));
            }
        }
    }
    sort_changeset(from, ChangeSet { ops }, resolver)
}
