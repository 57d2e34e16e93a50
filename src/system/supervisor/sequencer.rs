//! Dependency-ordered start and stop of service sets (spec `runtime-internals.md` §6.5).
//!
//! # Start ([`Supervisor::start_services`])
//!
//! 1. Closure: the roots plus, transitively, every dependency that is not running yet.
//!    Dependencies of a service = its `requires` (a missing target **blocks** it: "service
//!    startup blocked by missing dependencies") ∪ the service ids found through registry
//!    references (missing ones ignored).
//! 2. Cycles among the services to start fail every member ("dependency cycle: a -> b -> a").
//! 3. Services whose dependencies all started are started **in parallel**; each completion
//!    releases its dependents. A failed service blocks only its own dependent subtree;
//!    independent branches continue.
//! 4. Waiting: a service something else waits on, and a required root, is awaited until it
//!    runs, exits, or exhausts its retries; an optional root only until its first attempt's
//!    outcome (it keeps retrying in the background). An overall `deadline` bounds the wait;
//!    services still starting then are reported as pending.
//!
//! # Stop ([`Supervisor::stop_services`])
//!
//! The roots plus every active service that (transitively) depends on one of them, in reverse
//! topological levels: dependents first, each level stopped in parallel and awaited (every
//! stop is bounded by its `stop_timeout`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Select, bounded};
use wippy_rt::{Error, Kind};

use super::config::Startup;
use super::controller::WaitMode;
use super::engine::Op;
use super::state::{Desired, Status};
use super::{Spec, Supervisor};

/// Outcome of a start or stop transition.
#[derive(Clone, Debug, Default)]
pub struct TransitionReport {
    /// Services that reached the goal (running / stopped), in completion order.
    pub done: Vec<String>,
    /// Services that failed or were blocked, with the cause.
    pub failed: Vec<(String, Error)>,
    /// Services still starting when the deadline passed.
    pub pending: Vec<String>,
    /// The subset of `failed` that makes the transition fail (required roots and services a
    /// required root depends on).
    pub fatal: Vec<String>,
}

impl TransitionReport {
    /// `Ok` unless a required service failed; the error lists them.
    ///
    /// # Errors
    /// `Unavailable` "services failed to start: id (cause); …".
    pub fn into_result(self) -> Result<TransitionReport, Error> {
        if self.fatal.is_empty() {
            return Ok(self);
        }
        let parts: Vec<String> = self
            .failed
            .iter()
            .filter(|(id, _)| self.fatal.contains(id))
            .map(|(id, e)| format!("{id} ({e})"))
            .collect();
        Err(Error::new(
            Kind::UNAVAILABLE,
            format!("services failed to start: {}", parts.join("; ")),
        ))
    }
}

type Specs = BTreeMap<Arc<str>, Arc<Spec>>;
/// A service and the channel its start/stop result arrives on.
type InFlight = Vec<(Arc<str>, Receiver<Result<(), Error>>)>;

impl Supervisor {
    fn status_of(&self, id: &str) -> (Status, Desired) {
        self.engine
            .states()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|s| (s.status, s.desired))
            .unwrap_or((Status::Unknown, Desired::Stopped))
    }

    /// Start `roots` and what they need, in dependency order (see the module docs).
    /// `required_roots` makes every root required regardless of its `startup` mode (explicit
    /// starts); otherwise each root's `startup` decides.
    pub fn start_services(
        &self,
        roots: &[String],
        required_roots: bool,
        deadline: Option<Instant>,
    ) -> TransitionReport {
        let _t = self.transition.lock().unwrap_or_else(|e| e.into_inner());
        let specs = self.spec_snapshot();
        let mut report = TransitionReport::default();

        // 1. closure
        let mut nodes: BTreeSet<Arc<str>> = BTreeSet::new();
        let mut failed: BTreeMap<Arc<str>, Error> = BTreeMap::new();
        let mut deps: BTreeMap<Arc<str>, Vec<Arc<str>>> = BTreeMap::new();
        let mut stack: Vec<Arc<str>> = roots.iter().map(|r| Arc::from(r.as_str())).collect();
        let root_set: BTreeSet<Arc<str>> = stack.iter().cloned().collect();
        while let Some(id) = stack.pop() {
            if !nodes.insert(id.clone()) {
                continue;
            }
            let Some(spec) = specs.get(&id) else {
                failed.insert(id.clone(), super::unknown_service(&id));
                continue;
            };
            let missing: Vec<&str> = spec
                .config
                .requires
                .iter()
                .filter(|r| !specs.contains_key(r.as_str()))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                failed.insert(
                    id.clone(),
                    Error::new(
                        Kind::NOT_FOUND,
                        format!(
                            "service startup blocked by missing dependencies: [{}]",
                            missing.join(", ")
                        ),
                    ),
                );
            }
            let mut ds = Vec::new();
            for d in spec.all_deps() {
                if !specs.contains_key(&d) || self.status_of(&d).0 == Status::Running {
                    continue;
                }
                ds.push(d.clone());
                stack.push(d);
            }
            deps.insert(id, ds);
        }
        // Already running services need nothing.
        let mut done: BTreeSet<Arc<str>> = BTreeSet::new();
        for id in &nodes {
            if !failed.contains_key(id) && self.status_of(id).0 == Status::Running {
                done.insert(id.clone());
                report.done.push(id.to_string());
            }
        }

        // 2. cycles
        for cycle in find_cycles(&nodes, &deps) {
            let text = cycle
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" -> ");
            for id in &cycle {
                failed
                    .entry(id.clone())
                    .or_insert_with(|| Error::invalid(format!("dependency cycle: {text}")));
            }
        }

        // Who waits on whom.
        let mut dependents: BTreeMap<Arc<str>, Vec<Arc<str>>> = BTreeMap::new();
        for (id, ds) in &deps {
            for d in ds {
                dependents.entry(d.clone()).or_default().push(id.clone());
            }
        }
        // Propagate initial failures to dependents.
        let initial: Vec<Arc<str>> = failed.keys().cloned().collect();
        for id in initial {
            block_dependents(&id, &dependents, &mut failed);
        }

        // 3. drive
        let mode_of = |id: &Arc<str>| -> WaitMode {
            let waited_on = dependents.get(id).is_some_and(|v| !v.is_empty());
            let required = required_roots
                || specs
                    .get(id)
                    .is_none_or(|s| s.config.startup == Startup::Required);
            if waited_on || !root_set.contains(id) || required {
                WaitMode::UntilRunning
            } else {
                WaitMode::FirstAttempt
            }
        };
        let mut in_flight: InFlight = Vec::new();
        let mut launched: BTreeSet<Arc<str>> = BTreeSet::new();
        loop {
            for id in &nodes {
                if done.contains(id) || failed.contains_key(id) || launched.contains(id) {
                    continue;
                }
                let ready = deps
                    .get(id)
                    .is_none_or(|ds| ds.iter().all(|d| done.contains(d)));
                if !ready {
                    continue;
                }
                let (tx, rx) = bounded(1);
                self.engine.send(Op::Start {
                    id: id.clone(),
                    mode: mode_of(id),
                    reply: Some(tx),
                });
                launched.insert(id.clone());
                in_flight.push((id.clone(), rx));
            }
            if in_flight.is_empty() {
                break;
            }
            let mut sel = Select::new();
            for (_, rx) in &in_flight {
                sel.recv(rx);
            }
            let op = match deadline {
                Some(d) => match sel.select_deadline(d) {
                    Ok(op) => op,
                    Err(_) => break,
                },
                None => sel.select(),
            };
            let i = op.index();
            let r = op
                .recv(&in_flight[i].1)
                .unwrap_or_else(|_| Err(Error::unavailable("supervisor is shutting down")));
            let (id, _) = in_flight.swap_remove(i);
            match r {
                Ok(()) => {
                    done.insert(id.clone());
                    report.done.push(id.to_string());
                }
                Err(e) => {
                    failed.insert(id.clone(), e);
                    block_dependents(&id, &dependents, &mut failed);
                }
            }
        }
        report.pending = in_flight.iter().map(|(id, _)| id.to_string()).collect();

        // 4. which failures are fatal: required roots and whatever a required root needed.
        let mut fatal: BTreeSet<Arc<str>> = BTreeSet::new();
        for r in &root_set {
            let required = required_roots
                || specs
                    .get(r)
                    .is_none_or(|s| s.config.startup == Startup::Required);
            if required && failed.contains_key(r) {
                fatal.insert(r.clone());
                let mut st = deps.get(r).cloned().unwrap_or_default();
                while let Some(d) = st.pop() {
                    if failed.contains_key(&d) && fatal.insert(d.clone()) {
                        st.extend(deps.get(&d).cloned().unwrap_or_default());
                    }
                }
            }
        }
        report.fatal = fatal.iter().map(|s| s.to_string()).collect();
        report.failed = failed
            .into_iter()
            .map(|(id, e)| (id.to_string(), e))
            .collect();
        report
    }

    /// Stop `roots` and every active service depending on them, dependents first (see the
    /// module docs).
    pub fn stop_services(&self, roots: &[String]) -> TransitionReport {
        let _t = self.transition.lock().unwrap_or_else(|e| e.into_inner());
        self.stop_locked(roots)
    }

    pub(crate) fn stop_locked(&self, roots: &[String]) -> TransitionReport {
        let specs = self.spec_snapshot();
        let mut dependents: BTreeMap<Arc<str>, Vec<Arc<str>>> = BTreeMap::new();
        for (id, s) in &specs {
            for d in s.all_deps() {
                dependents.entry(d).or_default().push(id.clone());
            }
        }
        let active = |id: &str| {
            let (st, want) = self.status_of(id);
            st.is_active() || want == Desired::Running
        };
        let mut set: BTreeSet<Arc<str>> = BTreeSet::new();
        let mut stack: Vec<Arc<str>> = roots.iter().map(|r| Arc::from(r.as_str())).collect();
        let roots: BTreeSet<Arc<str>> = stack.iter().cloned().collect();
        while let Some(id) = stack.pop() {
            if !(roots.contains(&id) || active(&id)) || !set.insert(id.clone()) {
                continue;
            }
            for d in dependents.get(&id).cloned().unwrap_or_default() {
                stack.push(d);
            }
        }
        // level(n) = 0 without dependents in the set, else 1 + max(level(dependent)).
        let mut level: BTreeMap<Arc<str>, usize> = BTreeMap::new();
        fn lvl(
            id: &Arc<str>,
            set: &BTreeSet<Arc<str>>,
            dependents: &BTreeMap<Arc<str>, Vec<Arc<str>>>,
            memo: &mut BTreeMap<Arc<str>, usize>,
            visiting: &mut BTreeSet<Arc<str>>,
        ) -> usize {
            if let Some(l) = memo.get(id) {
                return *l;
            }
            if !visiting.insert(id.clone()) {
                return 0; // cycle: break it arbitrarily
            }
            let l = dependents
                .get(id)
                .map(|ds| {
                    ds.iter()
                        .filter(|d| set.contains(*d))
                        .map(|d| 1 + lvl(d, set, dependents, memo, visiting))
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0);
            visiting.remove(id);
            memo.insert(id.clone(), l);
            l
        }
        for id in &set {
            let mut visiting = BTreeSet::new();
            lvl(id, &set, &dependents, &mut level, &mut visiting);
        }
        let max = level.values().copied().max().unwrap_or(0);
        let mut report = TransitionReport::default();
        for l in 0..=max {
            let batch: InFlight = set
                .iter()
                .filter(|id| level.get(*id) == Some(&l))
                .map(|id| {
                    let (tx, rx) = bounded(1);
                    self.engine.send(Op::Stop {
                        id: id.clone(),
                        reply: Some(tx),
                    });
                    (id.clone(), rx)
                })
                .collect();
            for (id, rx) in batch {
                match rx
                    .recv()
                    .unwrap_or_else(|_| Err(Error::unavailable("supervisor is shutting down")))
                {
                    Ok(()) => report.done.push(id.to_string()),
                    Err(e) => report.failed.push((id.to_string(), e)),
                }
            }
        }
        report
    }

    fn spec_snapshot(&self) -> Specs {
        self.specs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Mark every transitive dependent of `id` as blocked.
fn block_dependents(
    id: &Arc<str>,
    dependents: &BTreeMap<Arc<str>, Vec<Arc<str>>>,
    failed: &mut BTreeMap<Arc<str>, Error>,
) {
    let mut stack = dependents.get(id).cloned().unwrap_or_default();
    while let Some(d) = stack.pop() {
        if failed.contains_key(&d) {
            continue;
        }
        failed.insert(
            d.clone(),
            Error::new(
                Kind::UNAVAILABLE,
                format!("service startup blocked by failed dependency {id}"),
            ),
        );
        stack.extend(dependents.get(&d).cloned().unwrap_or_default());
    }
}

/// Strongly connected components with more than one member (or a self loop), each as a
/// closed path `a -> b -> a` (Tarjan).
fn find_cycles(
    nodes: &BTreeSet<Arc<str>>,
    deps: &BTreeMap<Arc<str>, Vec<Arc<str>>>,
) -> Vec<Vec<Arc<str>>> {
    struct T<'a> {
        deps: &'a BTreeMap<Arc<str>, Vec<Arc<str>>>,
        index: BTreeMap<Arc<str>, usize>,
        low: BTreeMap<Arc<str>, usize>,
        on: BTreeSet<Arc<str>>,
        stack: Vec<Arc<str>>,
        next: usize,
        out: Vec<Vec<Arc<str>>>,
    }
    impl T<'_> {
        fn visit(&mut self, v: &Arc<str>) {
            self.index.insert(v.clone(), self.next);
            self.low.insert(v.clone(), self.next);
            self.next += 1;
            self.stack.push(v.clone());
            self.on.insert(v.clone());
            for w in self.deps.get(v).cloned().unwrap_or_default() {
                if !self.index.contains_key(&w) {
                    self.visit(&w);
                    let lw = self.low[&w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on.contains(&w) {
                    let iw = self.index[&w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(&w);
                    let stop = &w == v;
                    comp.push(w);
                    if stop {
                        break;
                    }
                }
                let self_loop = comp.len() == 1 && self.deps.get(v).is_some_and(|d| d.contains(v));
                if comp.len() > 1 || self_loop {
                    comp.reverse();
                    comp.push(comp[0].clone());
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = T {
        deps,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for n in nodes {
        if !t.index.contains_key(n) {
            t.visit(n);
        }
    }
    t.out
}
