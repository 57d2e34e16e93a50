//! Delta building and dependency ordering of changesets (spec §9.4).
//!
//! [`build_delta`] diffs two states: deletes for ids only in `from`, creates for ids only in
//! `to`, updates for ids in both whose entries differ. Unlike the original, an entry whose
//! *kind* differs becomes delete + create (an update may not change the kind, so the original's
//! delta would be rejected by validation).
//!
//! [`sort_changeset`] orders operations so that:
//! * a delete of an id comes before a create of the same id;
//! * a create/update comes after the creates/updates of everything it depends on (target
//!   side, dependencies of the *new* entries);
//! * a delete comes after the updates/deletes of every entry that depended on it in `from`
//!   (source side: dependents first).
//!
//! Algorithm: normalise the input by `(ns, name, op kind)` so the result does not depend on the
//! caller's order; build the edges; Kahn's algorithm with a min-heap of ready nodes (ties broken
//! by normalised index). On a cycle the smallest remaining create/update (then delete) is
//! forced out with a warning — the output is still a permutation of the input, and listeners
//! reject what cannot work.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use fnv::FnvHashMap;

use super::changeset::{ChangeSet, OpKind, Operation};
use super::deps::{Dep, DepResolver, entry_in_group};
use super::entry::Id;
use super::state::State;

/// Diff two states into a sorted changeset. Updates and deletes carry their originals.
pub fn build_delta(from: &State, to: &State, resolver: &DepResolver) -> ChangeSet {
    let mut ops = Vec::new();
    for e in from.iter() {
        match to.get(&e.id) {
            None => ops.push(Operation::delete_entry(e.clone()).with_original(Some(e.clone()))),
            Some(n) if n.kind != e.kind => {
                ops.push(Operation::delete_entry(e.clone()).with_original(Some(e.clone())));
                ops.push(Operation::create(n.clone()));
            }
            Some(n) if !Arc::ptr_eq(n, e) && **n != **e => {
                ops.push(Operation::update(n.clone()).with_original(Some(e.clone())))
            }
            Some(_) => {}
        }
    }
    for e in to.iter() {
        if !from.contains(&e.id) {
            ops.push(Operation::create(e.clone()));
        }
    }
    sort_changeset(from, ChangeSet { ops }, resolver)
}

fn kind_rank(k: OpKind) -> u8 {
    match k {
        OpKind::Delete => 0,
        OpKind::Create => 1,
        OpKind::Update => 2,
    }
}

/// Order a changeset by dependencies (see the module docs).
pub fn sort_changeset(from: &State, cs: ChangeSet, resolver: &DepResolver) -> ChangeSet {
    let mut ops = cs.ops;
    if ops.len() <= 1 {
        return ChangeSet { ops };
    }
    ops.sort_by(|a, b| {
        (a.entry.id.ns(), a.entry.id.name(), kind_rank(a.kind)).cmp(&(
            b.entry.id.ns(),
            b.entry.id.name(),
            kind_rank(b.kind),
        ))
    });
    let n = ops.len();

    // Index the changeset: id → create/update op, id → delete op; group/ns → create/update ops.
    let mut upsert_by_id: FnvHashMap<&Id, Vec<usize>> = FnvHashMap::default();
    let mut delete_by_id: FnvHashMap<&Id, usize> = FnvHashMap::default();
    let mut upsert_by_ns: FnvHashMap<&str, Vec<usize>> = FnvHashMap::default();
    for (i, op) in ops.iter().enumerate() {
        match op.kind {
            OpKind::Delete => {
                delete_by_id.insert(&op.entry.id, i);
            }
            _ => {
                upsert_by_id.entry(&op.entry.id).or_default().push(i);
                upsert_by_ns.entry(op.entry.id.ns()).or_default().push(i);
            }
        }
    }

    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indeg = vec![0usize; n];
    let mut add = |from_i: usize, to_i: usize, edges: &mut Vec<Vec<usize>>| {
        if from_i != to_i && !edges[from_i].contains(&to_i) {
            edges[from_i].push(to_i);
            indeg[to_i] += 1;
        }
    };

    // Same-id delete before create.
    for (i, op) in ops.iter().enumerate() {
        if op.kind == OpKind::Create
            && let Some(&d) = delete_by_id.get(&op.entry.id)
        {
            add(d, i, &mut edges);
        }
    }

    // Target side: dependencies of new entries first.
    for (i, op) in ops.iter().enumerate() {
        if op.kind == OpKind::Delete {
            continue;
        }
        for dep in resolver.deps(&op.entry) {
            match &dep {
                Dep::Entry(id) => {
                    if let Some(js) = upsert_by_id.get(id) {
                        for &j in js {
                            add(j, i, &mut edges);
                        }
                    }
                }
                Dep::Namespace(ns) => {
                    if let Some(js) = upsert_by_ns.get(ns.as_str()) {
                        for &j in js {
                            add(j, i, &mut edges);
                        }
                    }
                }
                Dep::Group(g) => {
                    for (j, o) in ops.iter().enumerate() {
                        if o.kind != OpKind::Delete && entry_in_group(&o.entry, g) {
                            add(j, i, &mut edges);
                        }
                    }
                }
            }
        }
    }

    // Source side: live dependents (in `from`) that are updated/deleted here go before the
    // delete of what they depend on.
    if !delete_by_id.is_empty() {
        for (k, op) in ops.iter().enumerate() {
            if op.kind == OpKind::Create {
                continue;
            }
            let Some(old) = from.get(&op.entry.id) else {
                continue;
            };
            for dep in resolver.deps(old) {
                match &dep {
                    Dep::Entry(id) => {
                        if let Some(&d) = delete_by_id.get(id) {
                            add(k, d, &mut edges);
                        }
                    }
                    _ => {
                        for (&id, &d) in &delete_by_id {
                            let matched = match from.get(id) {
                                Some(target) => dep.matches(target),
                                None => matches!(&dep, Dep::Namespace(ns) if id.ns() == ns),
                            };
                            if matched {
                                add(k, d, &mut edges);
                            }
                        }
                    }
                }
            }
        }
    }

    // Kahn with a min-heap; on a cycle force the smallest remaining upsert, then delete.
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| indeg[i] == 0).map(Reverse).collect();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut warned = false;
    while order.len() < n {
        let i = match ready.pop() {
            Some(Reverse(i)) if !done[i] => i,
            Some(_) => continue,
            None => {
                if !warned {
                    warned = true;
                    log::warn!(target: "wippy::registry", "dependency cycle in changeset; ordering the cycle by id, creates/updates before deletes");
                }
                break_cycle(&edges, &done, &ops)
            }
        };
        done[i] = true;
        order.push(i);
        for &j in &edges[i] {
            indeg[j] = indeg[j].saturating_sub(1);
            if indeg[j] == 0 && !done[j] {
                ready.push(Reverse(j));
            }
        }
    }
    let mut slots: Vec<Option<Operation>> = ops.into_iter().map(Some).collect();
    ChangeSet {
        ops: order
            .into_iter()
            .map(|i| slots[i].take().expect("each index once"))
            .collect(),
    }
}

/// Pick the node to force when Kahn's algorithm is stuck: compute the strongly connected
/// components of the remaining graph (Tarjan, iterative), keep the *source* components (no
/// edge into them from another remaining component — so forcing one of their nodes violates
/// only edges inside the cycle), and take the smallest node, creates/updates before deletes.
#[cold]
fn break_cycle(edges: &[Vec<usize>], done: &[bool], ops: &[Operation]) -> usize {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut comp = vec![usize::MAX; n];
    let mut ncomp = 0;
    let mut counter = 0;
    for root in 0..n {
        if done[root] || index[root] != usize::MAX {
            continue;
        }
        // Frames: (node, next edge position).
        let mut call = vec![(root, 0usize)];
        index[root] = counter;
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut ei)) = call.last_mut() {
            if let Some(&w) = edges[v].get(*ei) {
                *ei += 1;
                if done[w] {
                    continue;
                }
                if index[w] == usize::MAX {
                    index[w] = counter;
                    low[w] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp[w] = ncomp;
                        if w == v {
                            break;
                        }
                    }
                    ncomp += 1;
                }
            }
        }
    }
    let mut has_incoming = vec![false; ncomp];
    for v in (0..n).filter(|&v| !done[v]) {
        for &w in &edges[v] {
            if !done[w] && comp[v] != comp[w] {
                has_incoming[comp[w]] = true;
            }
        }
    }
    // A same-id delete → create edge is never broken (the create would fail validation).
    let blocked = |v: usize| {
        ops[v].kind == OpKind::Create
            && (0..n).any(|u| {
                !done[u] && ops[u].kind == OpKind::Delete && ops[u].entry.id == ops[v].entry.id
            })
    };
    (0..n)
        .filter(|&v| !done[v] && !has_incoming[comp[v]] && !blocked(v))
        .min_by_key(|&v| (ops[v].kind == OpKind::Delete, v))
        .expect("a finite graph has a source component")
}
