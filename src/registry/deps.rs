//! Dependency extraction from entries (spec §9.7).
//!
//! Components register dotted paths into the virtual document `{meta: …, data: …}` of an entry
//! (`meta.server`, `data.lifecycle.requires`, `data.imports.*`). A `*` segment iterates every
//! map value / array item; a segment with a `*` inside (`*_suffix`, `prefix*`, `pre*suf`) is a
//! key glob over map keys. The leaf may be a string or an array of strings. Output strings are
//! deduplicated and sorted.
//!
//! A dependency string is one of `group:<g>` (entries whose `meta.groups` contains `g`),
//! `ns:<namespace>` (every entry of that namespace) or an entry id; a bare name (no colon)
//! refers to the source entry's namespace. [`Dep`] is the parsed form.

use std::sync::{Arc, RwLock};

use wippy_rt::Value;

use super::entry::{Entry, Id};

/// Paths every registry knows (the original's core patterns plus the ones the built-in kind
/// managers register).
pub const CORE_PATTERNS: &[&str] = &[
    "meta.parent",
    "meta.depends_on",
    "meta.server",
    "meta.router",
    "data.config",
    "data.imports.*",
    "data.*.depends_on",
    "data.lifecycle.requires",
    "data.lifecycle.depends_on",
    "data.host",
    "data.process",
    "data.func",
    "data.fs",
    "data.store",
    "data.queue",
    "data.driver",
    "data.database",
    "data.middleware",
    "data.token_store",
    "data.security.*",
];

/// A parsed dependency reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dep {
    /// Every entry whose `meta.groups` contains this group.
    Group(String),
    /// Every entry of this namespace.
    Namespace(String),
    /// One entry.
    Entry(Id),
}

impl Dep {
    /// Parse a dependency string relative to the source namespace.
    pub fn parse(s: &str, source_ns: &str) -> Dep {
        if let Some(g) = s.strip_prefix("group:") {
            Dep::Group(g.to_string())
        } else if let Some(ns) = s.strip_prefix("ns:") {
            Dep::Namespace(ns.to_string())
        } else {
            Dep::Entry(Id::parse_relative(s, source_ns))
        }
    }

    /// Does `entry` satisfy this dependency?
    pub fn matches(&self, entry: &Entry) -> bool {
        match self {
            Dep::Entry(id) => entry.id == *id,
            Dep::Namespace(ns) => entry.id.ns() == ns,
            Dep::Group(g) => entry_in_group(entry, g),
        }
    }
}

/// True when `meta.groups` (a string or string list) contains `group`.
pub fn entry_in_group(entry: &Entry, group: &str) -> bool {
    match entry.meta("groups") {
        Some(Value::Str(s)) => s.as_bytes() == group.as_bytes(),
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(group)),
        _ => false,
    }
}

/// A compiled extraction path.
#[derive(Clone, Debug)]
struct PathPattern {
    root_meta: bool,
    segs: Vec<String>,
}

/// The set of registered extraction patterns. Cheap to share; registration takes a write lock.
#[derive(Debug, Default)]
pub struct DepResolver {
    patterns: RwLock<Vec<PathPattern>>,
}

impl DepResolver {
    /// A resolver with no patterns.
    pub fn empty() -> DepResolver {
        DepResolver::default()
    }

    /// A resolver with [`CORE_PATTERNS`].
    pub fn with_core_patterns() -> DepResolver {
        let r = DepResolver::default();
        for p in CORE_PATTERNS {
            r.register(p);
        }
        r
    }

    /// Register one path (`meta.x`, `data.a.*.b`). Paths not rooted at `meta` or `data` are
    /// ignored with a warning; duplicates are ignored.
    pub fn register(&self, path: &str) {
        let mut segs = path.split('.');
        let root_meta = match segs.next() {
            Some("meta") => true,
            Some("data") => false,
            _ => {
                log::warn!(target: "wippy::registry", "dependency pattern {path:?} must start with meta. or data.; ignored");
                return;
            }
        };
        let segs: Vec<String> = segs.map(str::to_string).collect();
        let mut pats = self.patterns.write().unwrap_or_else(|e| e.into_inner());
        if !pats
            .iter()
            .any(|p| p.root_meta == root_meta && p.segs == segs)
        {
            pats.push(PathPattern { root_meta, segs });
        }
    }

    /// Raw dependency strings of an entry (deduplicated, sorted).
    pub fn extract(&self, entry: &Entry) -> Vec<String> {
        let pats = self.patterns.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for p in pats.iter() {
            let root = if p.root_meta {
                &entry.meta
            } else {
                &entry.data
            };
            collect(root, &p.segs, &mut out);
        }
        out.sort();
        out.dedup();
        out
    }

    /// Parsed dependencies of an entry, relative names resolved to its namespace. Self
    /// references are dropped.
    pub fn deps(&self, entry: &Entry) -> Vec<Dep> {
        let mut deps: Vec<Dep> = self
            .extract(entry)
            .iter()
            .map(|s| Dep::parse(s, entry.id.ns()))
            .filter(|d| !matches!(d, Dep::Entry(id) if *id == entry.id))
            .collect();
        deps.sort();
        deps.dedup();
        deps
    }
}

/// Shared handle.
pub type SharedResolver = Arc<DepResolver>;

fn collect(v: &Value, segs: &[String], out: &mut Vec<String>) {
    let Some((seg, rest)) = segs.split_first() else {
        match v {
            Value::Str(s) => {
                if let Some(t) = s.as_str().filter(|t| !t.is_empty()) {
                    out.push(t.to_string());
                }
            }
            Value::Array(a) => {
                for item in a {
                    if let Some(t) = item.as_str().filter(|t| !t.is_empty()) {
                        out.push(t.to_string());
                    }
                }
            }
            _ => {}
        }
        return;
    };
    if seg == "*" {
        match v {
            Value::Map(m) => m.iter().for_each(|(_, x)| collect(x, rest, out)),
            Value::Array(a) => a.iter().for_each(|x| collect(x, rest, out)),
            _ => {}
        }
    } else if let Some((pre, suf)) = seg.split_once('*') {
        if let Value::Map(m) = v {
            for (k, x) in m {
                if let Some(k) = k.as_str()
                    && k.len() >= pre.len() + suf.len()
                    && k.starts_with(pre)
                    && k.ends_with(suf)
                {
                    collect(x, rest, out);
                }
            }
        }
    } else if let Some(x) = v.get(seg) {
        collect(x, rest, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn extraction_paths() {
        let r = DepResolver::with_core_patterns();
        r.register("data.*_store");
        let e = Entry::new("app:x", "http.endpoint")
            .with_meta("router", "api")
            .with_meta("depends_on", Value::Array(vec![Value::str("group:g"), Value::str("ns:lib")]))
            .with_data(yaml("{func: handler, imports: {h: 'app.lib:h', j: 'app.lib:j'}, session_store: st, lifecycle: {requires: [db]}}"));
        assert_eq!(
            r.extract(&e),
            vec![
                "api",
                "app.lib:h",
                "app.lib:j",
                "db",
                "group:g",
                "handler",
                "ns:lib",
                "st"
            ]
        );
        let deps = r.deps(&e);
        assert!(deps.contains(&Dep::Entry(Id::parse("app:api"))));
        assert!(deps.contains(&Dep::Group("g".into())));
        assert!(deps.contains(&Dep::Namespace("lib".into())));
    }
}
