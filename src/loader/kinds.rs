//! Entry kinds the runtime knows (spec `lua-api.md` §2) and the relative-reference rules of
//! §1.5.
//!
//! A kind outside [`KNOWN_KINDS`] (or the patterns a component adds) still loads as a plain
//! entry; the loader warns so typos (`function.lau`) are visible.

use wippy_rt::Value;

use crate::registry::{Entry, Id};

/// Kind patterns (§8.3 syntax) with a handler in Wippy.
pub const KNOWN_KINDS: &[&str] = &[
    "registry.entry",
    "ns.dependency",
    "ns.requirement",
    "ns.definition",
    "function.lua.**",
    "process.lua.**",
    "library.lua.**",
    "workflow.lua.**",
    "module.lua",
    "function.(wasm|wat)",
    "process.wasm",
    "process.host",
    "process.service",
    "terminal.host",
    "http.(service|router|endpoint|static)",
    "store.(memory|sql)",
    "store.kv.(crdt|raft)",
    "queue.(queue|consumer)",
    "queue.driver.*",
    "db.sql.*",
    "db.cdc.*",
    "env.variable",
    "env.storage.*",
    "fs.(directory|embed)",
    "contract.(definition|binding)",
    "security.policy",
    "security.policy.expr",
    "security.token_store",
    "template.(jet|set)",
    "temporal.(client|worker)",
    "exec.(native|docker)",
    "config.aws",
    "network.tailscale",
    "pg.scope",
];

/// Fields resolved against the entry's own namespace when written without `ns:` (the
/// original's `WithDefaultNS` sites). Paths are into the `{meta, data}` document.
pub const RELATIVE_REF_FIELDS: &[(&str, &[&str])] = &[
    ("http.router", &["meta.server"]),
    ("http.endpoint", &["meta.router", "data.func"]),
    ("http.static", &["meta.server", "data.fs"]),
    ("process.service", &["data.process"]),
    ("security.token_store", &["data.store"]),
    ("template.jet", &["data.set"]),
];

/// True when some known pattern matches `kind`.
pub fn is_known_kind(kind: &str, extra: &[String]) -> bool {
    KNOWN_KINDS
        .iter()
        .any(|p| wippy_rt::wildcard::matches(p, kind))
        || extra.iter().any(|p| wippy_rt::wildcard::matches(p, kind))
}

/// Resolve a reference string found in `entry` (relative names take the entry's namespace).
/// Lua `imports` and `process.service` `host` must be fully qualified in the original; this
/// runtime accepts relative references everywhere (a superset), per §1.5's recommendation.
pub fn resolve_ref(entry: &Entry, reference: &str) -> Id {
    Id::parse_relative(reference, entry.id.ns())
}

/// Read a reference field (`meta.server`, `data.func`) of an entry and resolve it.
pub fn ref_field(entry: &Entry, path: &str) -> Option<Id> {
    let v = match path.split_once('.') {
        Some(("meta", rest)) => entry.meta.get_path(rest),
        Some(("data", rest)) => entry.data.get_path(rest),
        _ => None,
    }?;
    v.as_str()
        .filter(|s| !s.is_empty())
        .map(|s| resolve_ref(entry, s))
}

/// Every relative-reference field of `entry`'s kind, resolved.
pub fn resolved_refs(entry: &Entry) -> Vec<(&'static str, Id)> {
    RELATIVE_REF_FIELDS
        .iter()
        .filter(|(k, _)| *k == entry.kind)
        .flat_map(|(_, fields)| {
            fields
                .iter()
                .filter_map(|f| ref_field(entry, f).map(|id| (*f, id)))
        })
        .collect()
}

/// `imports` of a Lua entry: alias → id. A value without `:` (or with an empty namespace)
/// denotes a built-in module, so it keeps the empty namespace.
pub fn lua_imports(entry: &Entry) -> Vec<(String, Id)> {
    entry
        .data
        .get("imports")
        .and_then(Value::as_map)
        .unwrap_or(&[])
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), Id::parse(v.as_str()?))))
        .collect()
}
