//! Boot components and the component loader (spec `runtime-internals.md` §10.2).
//!
//! A [`Component`] has a name, the names it depends on, and three phases:
//!
//! * **load** — wire the component: register dispatcher commands, registry kind listeners and
//!   transaction participants, publish services into the [`AppContext`](wippy_rt::AppContext).
//!   The dispatcher is still open and the app context unsealed;
//! * **start** — begin working. The dispatcher is frozen and the app context sealed before the
//!   first `start`; registry entries are not loaded yet;
//! * **stop** — release everything, respecting the shutdown deadline.
//!
//! # Ordering (the [`Loader`])
//!
//! 1. The dependency graph (edge *dependency → dependent*) is layered with Kahn's algorithm:
//!    level 0 holds the components without dependencies, level *n* those whose dependencies
//!    all sit in levels < *n*. Each level is sorted by name, so the order is deterministic.
//!    Unknown dependencies, duplicate names and cycles are errors naming the components.
//! 2. Levels load in order; **the components of one level load in parallel** (one scoped
//!    thread each; the original loaded them one after the other although its docs said
//!    otherwise). A level finishes only when all of its loads returned; if any failed, the
//!    loaded components are stopped in reverse order and the first failure (by name) is
//!    returned. A panic in `load` is caught and reported as that component's error.
//! 3. `start` runs sequentially in load order (levels in order, names within a level).
//! 4. `stop` runs in the exact reverse of the start order, for every component that loaded,
//!    whether or not it started; errors are collected and returned together, never
//!    short-circuiting the remaining stops.
//!
//! Invariant: a component's `load` never runs before the `load` of any of its dependencies
//! returned, and its `stop` never runs after the `stop` of a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use wippy_rt::Error;

use crate::system::System;

/// What a component sees in every phase.
pub struct BootCx<'a> {
    /// The shared services.
    pub system: &'a Arc<System>,
    /// The project directory (lock file, config, relative paths).
    pub dir: &'a Path,
}

impl fmt::Debug for BootCx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootCx").field("dir", &self.dir).finish()
    }
}

/// A boot component (see the module docs for the phase contract).
pub trait Component: Send + Sync + 'static {
    /// Unique name (`registry`, `supervisor`, `services.host`, …).
    fn name(&self) -> &'static str;

    /// Names of the components that must load (and start) before this one.
    fn depends_on(&self) -> &'static [&'static str] {
        &[]
    }

    /// Wire the component (dispatcher open, app context writable). May run concurrently with
    /// the loads of other components of the same level.
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error>;

    /// Begin working (dispatcher frozen, app context sealed, entries not loaded yet).
    fn start(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        let _ = cx;
        Ok(())
    }

    /// Stop; should return by `deadline` (the shutdown timeout).
    fn stop(&self, cx: &BootCx<'_>, deadline: Instant) -> Result<(), Error> {
        let _ = (cx, deadline);
        Ok(())
    }
}

impl fmt::Debug for dyn Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Component({})", self.name())
    }
}

/// The phase a component error happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Building the dependency graph.
    Graph,
    /// `load`.
    Load,
    /// `start`.
    Start,
    /// `stop`.
    Stop,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Graph => "dependency graph",
            Phase::Load => "load",
            Phase::Start => "start",
            Phase::Stop => "stop",
        })
    }
}

/// A failure of one component in one phase.
#[derive(Clone, Debug)]
pub struct ComponentError {
    /// The component (for graph errors: the first component involved).
    pub component: String,
    /// The phase.
    pub phase: Phase,
    /// The cause.
    pub error: Error,
}

impl fmt::Display for ComponentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.phase {
            Phase::Graph => write!(f, "components: {}", self.error),
            p => write!(
                f,
                "component {}: {p} failed: {}",
                self.component, self.error
            ),
        }
    }
}

impl std::error::Error for ComponentError {}

fn graph_error(component: &str, message: String) -> ComponentError {
    ComponentError {
        component: component.to_string(),
        phase: Phase::Graph,
        error: Error::invalid(message),
    }
}

/// Layer components into dependency levels (indices into `components`), each level sorted by
/// name. Errors: duplicate names, unknown dependencies, cycles.
pub fn levels(components: &[Arc<dyn Component>]) -> Result<Vec<Vec<usize>>, ComponentError> {
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, c) in components.iter().enumerate() {
        if by_name.insert(c.name(), i).is_some() {
            return Err(graph_error(
                c.name(),
                format!("duplicate component name {:?}", c.name()),
            ));
        }
    }
    // in-degree and dependents, keyed by index
    let mut indeg = vec![0usize; components.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); components.len()];
    for (i, c) in components.iter().enumerate() {
        let deps: BTreeSet<&str> = c.depends_on().iter().copied().collect();
        for d in deps {
            let Some(&j) = by_name.get(d) else {
                return Err(graph_error(
                    c.name(),
                    format!(
                        "component {:?} depends on unknown component {d:?}",
                        c.name()
                    ),
                ));
            };
            if j == i {
                return Err(graph_error(
                    c.name(),
                    format!("component {:?} depends on itself", c.name()),
                ));
            }
            indeg[i] += 1;
            dependents[j].push(i);
        }
    }
    let by_name_order =
        |v: &mut Vec<usize>| v.sort_by(|&a, &b| components[a].name().cmp(components[b].name()));
    let mut out = Vec::new();
    let mut current: Vec<usize> = (0..components.len()).filter(|&i| indeg[i] == 0).collect();
    let mut placed = 0;
    while !current.is_empty() {
        by_name_order(&mut current);
        let mut next = Vec::new();
        for &i in &current {
            for &d in &dependents[i] {
                indeg[d] -= 1;
                if indeg[d] == 0 {
                    next.push(d);
                }
            }
        }
        placed += current.len();
        out.push(std::mem::replace(&mut current, next));
    }
    if placed != components.len() {
        let mut stuck: Vec<&str> = (0..components.len())
            .filter(|&i| indeg[i] > 0)
            .map(|i| components[i].name())
            .collect();
        stuck.sort_unstable();
        return Err(graph_error(
            stuck[0],
            format!("dependency cycle among components: {}", stuck.join(", ")),
        ));
    }
    Ok(out)
}

/// Loads, starts and stops a set of components (see the module docs).
pub struct Loader {
    components: Vec<Arc<dyn Component>>,
    levels: Vec<Vec<usize>>,
    /// Indices that loaded successfully, in load order.
    loaded: Vec<usize>,
    /// Number of `loaded` components that started.
    started: usize,
}

impl fmt::Debug for Loader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("levels", &self.level_names())
            .field("loaded", &self.loaded.len())
            .field("started", &self.started)
            .finish()
    }
}

impl Loader {
    /// Build the dependency levels.
    ///
    /// # Errors
    /// Duplicate names, unknown dependencies, cycles.
    pub fn new(components: Vec<Arc<dyn Component>>) -> Result<Loader, ComponentError> {
        let levels = levels(&components)?;
        Ok(Loader {
            components,
            levels,
            loaded: Vec::new(),
            started: 0,
        })
    }

    /// Component names per level (for logs and tests).
    pub fn level_names(&self) -> Vec<Vec<&'static str>> {
        self.levels
            .iter()
            .map(|l| l.iter().map(|&i| self.components[i].name()).collect())
            .collect()
    }

    /// Names in load (= start) order.
    pub fn order(&self) -> Vec<&'static str> {
        self.levels
            .iter()
            .flatten()
            .map(|&i| self.components[i].name())
            .collect()
    }

    /// Load level by level, each level in parallel. On failure the components loaded so far
    /// are stopped (reverse order, `deadline`) and the first error of the failing level (by
    /// component name) is returned.
    ///
    /// # Errors
    /// The failing component's error.
    pub fn load(&mut self, cx: &BootCx<'_>, deadline: Instant) -> Result<(), ComponentError> {
        for li in 0..self.levels.len() {
            let level = self.levels[li].clone();
            let results: Vec<(usize, Result<(), Error>)> = if level.len() == 1 {
                vec![(level[0], guarded(|| self.components[level[0]].load(cx)))]
            } else {
                std::thread::scope(|s| {
                    let handles: Vec<_> = level
                        .iter()
                        .map(|&i| {
                            let c = &self.components[i];
                            let h = std::thread::Builder::new()
                                .name(format!("boot-load-{}", c.name()))
                                .spawn_scoped(s, move || guarded(|| c.load(cx)));
                            (i, h)
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|(i, h)| match h {
                            Ok(h) => (
                                i,
                                h.join().unwrap_or_else(|_| {
                                    Err(Error::internal("load thread panicked"))
                                }),
                            ),
                            Err(e) => (
                                i,
                                Err(Error::internal(format!("cannot spawn load thread: {e}"))),
                            ),
                        })
                        .collect()
                })
            };
            let mut first_err: Option<ComponentError> = None;
            for (i, r) in results {
                match r {
                    Ok(()) => {
                        log::debug!(target: "wippy::boot", "component {} loaded", self.components[i].name());
                        self.loaded.push(i);
                    }
                    Err(error) if first_err.is_none() => {
                        first_err = Some(ComponentError {
                            component: self.components[i].name().to_string(),
                            phase: Phase::Load,
                            error,
                        })
                    }
                    Err(error) => log::error!(target: "wippy::boot",
                        "component {} failed to load: {error}", self.components[i].name()),
                }
            }
            if let Some(e) = first_err {
                for err in self.stop(cx, deadline) {
                    log::error!(target: "wippy::boot", "{err}");
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Start every loaded component in load order. On failure the started and loaded
    /// components are stopped (reverse order) and the error is returned.
    ///
    /// # Errors
    /// The failing component's error.
    pub fn start(&mut self, cx: &BootCx<'_>, deadline: Instant) -> Result<(), ComponentError> {
        while self.started < self.loaded.len() {
            let c = &self.components[self.loaded[self.started]];
            if let Err(error) = guarded(|| c.start(cx)) {
                let e = ComponentError {
                    component: c.name().to_string(),
                    phase: Phase::Start,
                    error,
                };
                for err in self.stop(cx, deadline) {
                    log::error!(target: "wippy::boot", "{err}");
                }
                return Err(e);
            }
            log::debug!(target: "wippy::boot", "component {} started", c.name());
            self.started += 1;
        }
        Ok(())
    }

    /// Stop every loaded component in reverse load order (each at most once). Returns the
    /// errors; never stops early.
    pub fn stop(&mut self, cx: &BootCx<'_>, deadline: Instant) -> Vec<ComponentError> {
        let mut errors = Vec::new();
        while let Some(i) = self.loaded.pop() {
            let c = &self.components[i];
            if let Err(error) = guarded(|| c.stop(cx, deadline)) {
                errors.push(ComponentError {
                    component: c.name().to_string(),
                    phase: Phase::Stop,
                    error,
                });
            } else {
                log::debug!(target: "wippy::boot", "component {} stopped", c.name());
            }
        }
        self.started = 0;
        errors
    }

    /// True while some component is loaded and not yet stopped.
    pub fn is_active(&self) -> bool {
        !self.loaded.is_empty()
    }
}

/// Run `f` on a named helper thread and wait for its result until `deadline`; `None` when the
/// deadline passed first (the call keeps running on its thread) or no thread could be
/// started. Used to keep a stop step that overruns from holding the rest of the shutdown.
pub fn run_until<T: Send + 'static>(
    name: &str,
    deadline: Instant,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .ok()
}

/// Run a phase, turning a panic into an `Internal` error.
fn guarded(f: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_string());
            Err(Error::internal(format!("panicked: {msg}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct C(&'static str, &'static [&'static str]);
    impl Component for C {
        fn name(&self) -> &'static str {
            self.0
        }
        fn depends_on(&self) -> &'static [&'static str] {
            self.1
        }
        fn load(&self, _: &BootCx<'_>) -> Result<(), Error> {
            Ok(())
        }
    }

    fn set(v: Vec<C>) -> Vec<Arc<dyn Component>> {
        v.into_iter()
            .map(|c| Arc::new(c) as Arc<dyn Component>)
            .collect()
    }

    #[test]
    fn kahn_levels_sorted_by_name() {
        let cs = set(vec![
            C("d", &["b", "c"]),
            C("c", &["a"]),
            C("b", &["a"]),
            C("a", &[]),
            C("e", &[]),
        ]);
        let l = Loader::new(cs).unwrap();
        assert_eq!(
            l.level_names(),
            vec![vec!["a", "e"], vec!["b", "c"], vec!["d"]]
        );
        assert_eq!(l.order(), vec!["a", "e", "b", "c", "d"]);
    }

    #[test]
    fn graph_errors_name_the_components() {
        let e = Loader::new(set(vec![C("a", &["zz"])])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "components: component \"a\" depends on unknown component \"zz\""
        );
        let e = Loader::new(set(vec![
            C("a", &["b"]),
            C("b", &["c"]),
            C("c", &["a"]),
            C("d", &[]),
        ]))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "components: dependency cycle among components: a, b, c"
        );
        let e = Loader::new(set(vec![C("a", &[]), C("a", &[])])).unwrap_err();
        assert!(e.to_string().contains("duplicate component name \"a\""));
    }
}
