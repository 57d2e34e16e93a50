//! Changeset squash and delta ordering, checked against a simple model with proptest.

use std::sync::Arc;

use proptest::prelude::*;
use wippy::registry::{
    ChangeSet, DepResolver, Entry, Id, OpKind, Operation, State, build_delta, sort_changeset,
    squash,
};
use wippy::rt::Value;

fn entry(name: &str, kind: &str, v: i64, deps: &[&str]) -> Arc<Entry> {
    let mut e = Entry::new(Id::new("app", name), kind)
        .with_data(Value::Map(vec![(Value::str("v"), Value::Int(v))]));
    if !deps.is_empty() {
        e = e.with_meta(
            "depends_on",
            Value::Array(deps.iter().map(|d| Value::str(d)).collect()),
        );
    }
    Arc::new(e)
}

/// Apply strictly (validation as the runner does); panics on an invalid op.
fn apply_strict(state: &mut State, ops: &[Operation]) {
    for op in ops {
        state
            .validate(op)
            .unwrap_or_else(|e| panic!("invalid op {} {}: {e}", op.kind, op.entry.id));
        state.apply_op(op);
    }
}

fn pos(cs: &ChangeSet, kind: OpKind, name: &str) -> usize {
    cs.ops
        .iter()
        .position(|o| o.kind == kind && o.entry.id.name() == name)
        .unwrap_or_else(|| panic!("{kind} {name} missing"))
}

#[test]
fn creates_are_dependency_first_and_deletes_dependents_first() {
    let r = DepResolver::with_core_patterns();
    // server <- router (meta.server) <- endpoint (meta.router, data.func) ; func
    let server = Arc::new(Entry::new("app:gw", "http.service"));
    let router = Arc::new(Entry::new("app:api", "http.router").with_meta("server", "gw"));
    let func = Arc::new(Entry::new("app:h", "function.lua"));
    let ep = Arc::new(
        Entry::new("app:a_ep", "http.endpoint")
            .with_meta("router", "app:api")
            .with_data(Value::Map(vec![(Value::str("func"), Value::str("h"))])),
    );
    let to = State::from_entries([ep.clone(), router.clone(), func.clone(), server.clone()]);
    let cs = build_delta(&State::new(), &to, &r);
    assert!(pos(&cs, OpKind::Create, "gw") < pos(&cs, OpKind::Create, "api"));
    assert!(pos(&cs, OpKind::Create, "api") < pos(&cs, OpKind::Create, "a_ep"));
    assert!(pos(&cs, OpKind::Create, "h") < pos(&cs, OpKind::Create, "a_ep"));

    let back = build_delta(&to, &State::new(), &r);
    assert!(pos(&back, OpKind::Delete, "a_ep") < pos(&back, OpKind::Delete, "api"));
    assert!(pos(&back, OpKind::Delete, "api") < pos(&back, OpKind::Delete, "gw"));
    assert!(pos(&back, OpKind::Delete, "a_ep") < pos(&back, OpKind::Delete, "h"));
}

#[test]
fn group_and_namespace_dependencies() {
    let r = DepResolver::with_core_patterns();
    let a = Arc::new(
        Entry::new("lib:a", "x").with_meta("groups", Value::Array(vec![Value::str("db")])),
    );
    let b = Arc::new(Entry::new("lib:b", "x"));
    let c = Arc::new(
        Entry::new("app:c", "x")
            .with_meta("depends_on", Value::Array(vec![Value::str("group:db")])),
    );
    let d = Arc::new(
        Entry::new("app:0d", "x").with_meta("depends_on", Value::Array(vec![Value::str("ns:lib")])),
    );
    let cs = build_delta(&State::new(), &State::from_entries([c, d, a, b]), &r);
    assert!(pos(&cs, OpKind::Create, "a") < pos(&cs, OpKind::Create, "c"));
    assert!(pos(&cs, OpKind::Create, "a") < pos(&cs, OpKind::Create, "0d"));
    assert!(pos(&cs, OpKind::Create, "b") < pos(&cs, OpKind::Create, "0d"));
}

#[test]
fn kind_change_in_delta_is_delete_then_create() {
    let r = DepResolver::with_core_patterns();
    let from = State::from_entries([entry("x", "k1", 1, &[])]);
    let to = State::from_entries([entry("x", "k2", 1, &[])]);
    let cs = build_delta(&from, &to, &r);
    assert_eq!(
        cs.ops.iter().map(|o| o.kind).collect::<Vec<_>>(),
        vec![OpKind::Delete, OpKind::Create]
    );
    let mut s = from.clone();
    apply_strict(&mut s, &cs.ops);
    assert_eq!(s, to);
}

#[test]
fn cycles_fall_back_without_losing_ops() {
    let r = DepResolver::with_core_patterns();
    let to = State::from_entries([
        entry("a", "k", 1, &["b"]),
        entry("b", "k", 1, &["a"]),
        entry("c", "k", 1, &["a"]),
    ]);
    let cs = build_delta(&State::new(), &to, &r);
    assert_eq!(cs.len(), 3);
    assert!(pos(&cs, OpKind::Create, "a") < pos(&cs, OpKind::Create, "c"));
}

#[test]
fn squash_delete_then_create_of_other_kind_keeps_the_delete() {
    let r = DepResolver::with_core_patterns();
    let old = entry("x", "http.service", 1, &[]);
    let new = entry("x", "process.host", 2, &[]);
    let from = State::from_entries([old.clone()]);
    let v1 = ChangeSet::from(vec![
        Operation::delete_entry(old.clone()).with_original(Some(old.clone())),
    ]);
    let v2 = ChangeSet::from(vec![Operation::create(new.clone())]);
    let net = squash([&v1, &v2], &from, &r);
    assert_eq!(net.ops.len(), 2, "{net:?}");
    assert_eq!(
        (net.ops[0].kind, net.ops[0].entry.kind.as_str()),
        (OpKind::Delete, "http.service")
    );
    assert_eq!(
        (net.ops[1].kind, net.ops[1].entry.kind.as_str()),
        (OpKind::Create, "process.host")
    );
    // Same kind: a single update.
    let same = entry("x", "http.service", 3, &[]);
    let net = squash(
        [&v1, &ChangeSet::from(vec![Operation::create(same.clone())])],
        &from,
        &r,
    );
    assert_eq!(net.ops.len(), 1);
    assert_eq!(net.ops[0].kind, OpKind::Update);
    assert_eq!(net.ops[0].original.as_deref(), Some(&*old));
}

#[test]
fn squash_create_then_delete_cancels() {
    let r = DepResolver::with_core_patterns();
    let a = entry("a", "k", 1, &[]);
    let v1 = ChangeSet::from(vec![Operation::create(a.clone())]);
    let v2 = ChangeSet::from(vec![
        Operation::delete_entry(a.clone()).with_original(Some(a.clone())),
    ]);
    assert!(squash([&v1, &v2], &State::new(), &r).is_empty());
}

// ---------- model-based property: squash(cs1..csn) applied == sequential application ----------

#[derive(Clone, Debug)]
enum Gen {
    Create(u8, u8, i64),
    Update(u8, i64),
    Delete(u8),
}

fn gen_op() -> impl Strategy<Value = Gen> {
    prop_oneof![
        (0u8..6, 0u8..2, 0i64..4).prop_map(|(n, k, v)| Gen::Create(n, k, v)),
        (0u8..6, 0i64..4).prop_map(|(n, v)| Gen::Update(n, v)),
        (0u8..6).prop_map(Gen::Delete),
    ]
}

/// Turn generated ops into *valid* enriched changesets against an evolving model state,
/// dependency lists pointing at random other names.
fn realise(initial: &State, batches: &[Vec<(Gen, u8)>]) -> (Vec<ChangeSet>, State) {
    let mut state = initial.clone();
    let mut out = Vec::new();
    for batch in batches {
        let mut ops = Vec::new();
        for (g, dep) in batch {
            let dep_name = format!("e{}", dep % 6);
            let op = match *g {
                Gen::Create(n, k, v) => {
                    let name = format!("e{n}");
                    let id = Id::new("app", &name);
                    if state.contains(&id) {
                        continue;
                    }
                    let deps: Vec<&str> = if dep_name != name {
                        vec![dep_name.as_str()]
                    } else {
                        vec![]
                    };
                    Operation::create(entry(&name, ["k0", "k1"][k as usize], v, &deps))
                }
                Gen::Update(n, v) => {
                    let id = Id::new("app", &format!("e{n}"));
                    let Some(cur) = state.get(&id).cloned() else {
                        continue;
                    };
                    let mut e = (*cur).clone();
                    e.data = Value::Map(vec![(Value::str("v"), Value::Int(v + 10))]);
                    Operation::update(e).with_original(Some(cur))
                }
                Gen::Delete(n) => {
                    let id = Id::new("app", &format!("e{n}"));
                    let Some(cur) = state.get(&id).cloned() else {
                        continue;
                    };
                    Operation::delete_entry(cur.clone()).with_original(Some(cur))
                }
            };
            state.apply_op(&op);
            ops.push(op);
        }
        out.push(ChangeSet::from(ops));
    }
    (out, state)
}

/// Does `from` depend (transitively, in `state`) on `to`?
fn reaches(state: &State, r: &DepResolver, from: &Id, to: &Id) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![from.clone()];
    while let Some(id) = stack.pop() {
        if &id == to {
            return true;
        }
        if !seen.insert(id.clone()) {
            continue;
        }
        if let Some(e) = state.get(&id) {
            for d in r.deps(e) {
                if let wippy::registry::Dep::Entry(x) = d {
                    stack.push(x);
                }
            }
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn squash_matches_sequential_application(
        seed in proptest::collection::vec((0u8..6, 0u8..2), 0..6),
        batches in proptest::collection::vec(proptest::collection::vec((gen_op(), 0u8..6), 0..6), 1..5),
    ) {
        let r = DepResolver::with_core_patterns();
        let initial = State::from_entries(seed.iter().map(|(n, k)| entry(&format!("e{n}"), ["k0", "k1"][*k as usize], 0, &[])));
        let (sets, expected) = realise(&initial, &batches);
        let net = squash(sets.iter(), &initial, &r);
        // The net changeset must validate step by step (same-id delete before create, no
        // kind-changing update) and reach the same state.
        let mut s = initial.clone();
        for op in &net.ops {
            prop_assert!(s.validate(op).is_ok(), "invalid {} {} in {:?}", op.kind, op.entry.id, net);
            if op.kind == OpKind::Update {
                prop_assert!(s.get(&op.entry.id).unwrap().kind == op.entry.kind);
            }
            s.apply_op(op);
        }
        prop_assert_eq!(&s, &expected);
        // And reversing the net changeset returns to the initial state.
        let mut back = s.clone();
        for op in &net.reverse().ops {
            prop_assert!(back.validate(op).is_ok());
            back.apply_op(op);
        }
        prop_assert_eq!(back, initial);
    }

    #[test]
    fn delta_reaches_target_and_respects_dependencies(
        from_spec in proptest::collection::vec((0u8..8, 0u8..2, 0i64..3, 0u8..8), 0..8),
        to_spec in proptest::collection::vec((0u8..8, 0u8..2, 0i64..3, 0u8..8), 0..8),
        shuffle in any::<u64>(),
    ) {
        let r = DepResolver::with_core_patterns();
        let mk = |spec: &[(u8, u8, i64, u8)]| State::from_entries(spec.iter().map(|(n, k, v, d)| {
            let name = format!("e{n}");
            let dep = format!("e{d}");
            let deps: Vec<&str> = if dep != name { vec![dep.as_str()] } else { vec![] };
            entry(&name, ["k0", "k1"][*k as usize], *v, &deps)
        }));
        let (from, to) = (mk(&from_spec), mk(&to_spec));
        let cs = build_delta(&from, &to, &r);
        let mut s = from.clone();
        apply_strict(&mut s, &cs.ops);
        prop_assert_eq!(&s, &to);

        // Order independence: sorting a shuffled copy gives the same order.
        let mut shuffled = cs.ops.clone();
        let n = shuffled.len();
        if n > 1 { for i in 0..n { shuffled.swap(i, (shuffle as usize).wrapping_mul(i + 7) % n); } }
        let resorted = sort_changeset(&from, ChangeSet::from(shuffled), &r);
        prop_assert_eq!(resorted.ops.iter().map(|o| (o.kind, o.entry.id.clone())).collect::<Vec<_>>(),
                        cs.ops.iter().map(|o| (o.kind, o.entry.id.clone())).collect::<Vec<_>>());

        // Acyclic dependency pairs: a created/updated dependency precedes its dependent. (A
        // kind change = delete+create of an id with live dependents is a genuine ordering
        // cycle with the dependents-first rule; no promise is made there.)
        let replaced = cs.ops.iter().any(|o| o.kind == OpKind::Delete && cs.ops.iter().any(|c| c.kind == OpKind::Create && c.entry.id == o.entry.id));
        if replaced { return Ok(()); }
        let idx = |k: OpKind, id: &Id| cs.ops.iter().position(|o| o.kind == k && &o.entry.id == id);
        for (i, op) in cs.ops.iter().enumerate() {
            if op.kind == OpKind::Delete { continue; }
            for d in r.deps(&op.entry) {
                if let wippy::registry::Dep::Entry(dep_id) = d {
                    if reaches(&to, &r, &dep_id, &op.entry.id) { continue; } // a cycle: no promise
                    for k in [OpKind::Create, OpKind::Update] {
                        if let Some(j) = idx(k, &dep_id) { prop_assert!(j < i, "{} before its dependency {}", op.entry.id, dep_id); }
                    }
                }
            }
        }
    }
}
