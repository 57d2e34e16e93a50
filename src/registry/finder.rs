//! The finder: criteria queries over registry entries (spec §9.9, `lua-api.md` §3.8.4).
//!
//! A query is a bag of `key → value` criteria, AND-combined:
//!
//! | key | match |
//! |---|---|
//! | `.kind` `.ns` `.name` `.id` | glob with one `*` (`pre*`, `*suf`, `pre*suf`, `*`), else exact |
//! | `meta.<f>` | equality; a string-list value requires every listed string in the entry's list |
//! | `~meta.<f>` | regex (RE2-style syntax of the `regex` crate) on a string field |
//! | `*meta.<f>` | substring of a string field, or equal to any element of a string list |
//! | `^meta.<f>` / `$meta.<f>` | prefix / suffix of a string field |
//!
//! Non-string values for the string operators are ignored, as are invalid regexes and any
//! other key (each with a warning): ignored criteria match everything, as in the original.
//! `<f>` is a key of `meta`; if absent and dotted, it is followed as a nested path.
//!
//! Results are cached in an LRU keyed by `(version, canonical query text)`; the registry
//! clears the cache whenever its version changes. Compiled regexes are cached separately.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use regex::Regex;
use wippy_rt::Value;

use super::entry::Entry;
use super::state::State;

/// Default result-cache capacity (`finder.query_cache_size`).
pub const DEFAULT_QUERY_CACHE: usize = 1000;
/// Default regex-cache capacity (`finder.regex_cache_size`).
pub const DEFAULT_REGEX_CACHE: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root {
    Kind,
    Ns,
    Name,
    Id,
}

#[derive(Clone, Debug)]
enum Crit {
    Root(Root, Glob),
    Eq(String, Value),
    Regex(String, Regex),
    Contains(String, String),
    Prefix(String, String),
    Suffix(String, String),
}

#[derive(Clone, Debug)]
enum Glob {
    Exact(String),
    Any,
    Parts(String, String),
}

impl Glob {
    fn new(p: &str) -> Glob {
        match p.split_once('*') {
            None => Glob::Exact(p.to_string()),
            Some(("", "")) => Glob::Any,
            Some((pre, suf)) => Glob::Parts(pre.to_string(), suf.to_string()),
        }
    }
    fn matches(&self, s: &str) -> bool {
        match self {
            Glob::Exact(e) => e == s,
            Glob::Any => true,
            Glob::Parts(pre, suf) => {
                s.len() >= pre.len() + suf.len()
                    && s.starts_with(pre.as_str())
                    && s.ends_with(suf.as_str())
            }
        }
    }
}

/// A compiled query.
#[derive(Clone, Debug)]
pub struct Query {
    crits: Vec<Crit>,
    key: String,
}

impl Query {
    /// The canonical text of the query (cache key).
    pub fn cache_key(&self) -> &str {
        &self.key
    }

    /// Does `entry` satisfy every criterion?
    pub fn matches(&self, entry: &Entry) -> bool {
        self.crits.iter().all(|c| crit_matches(c, entry))
    }
}

fn meta_field<'a>(entry: &'a Entry, field: &str) -> Option<&'a Value> {
    entry.meta.get(field).or_else(|| {
        if field.contains('.') {
            entry.meta.get_path(field)
        } else {
            None
        }
    })
}

fn crit_matches(c: &Crit, e: &Entry) -> bool {
    match c {
        Crit::Root(root, g) => match root {
            Root::Kind => g.matches(&e.kind),
            Root::Ns => g.matches(e.id.ns()),
            Root::Name => g.matches(e.id.name()),
            Root::Id => g.matches(&e.id.to_string()),
        },
        Crit::Eq(f, want) => match (meta_field(e, f), want) {
            (None, _) => false,
            (Some(Value::Array(have)), Value::Array(w))
                if w.iter().all(|x| x.as_str().is_some()) =>
            {
                w.iter().all(|x| have.contains(x))
            }
            (Some(have), w) => have == w,
        },
        Crit::Regex(f, re) => meta_field(e, f)
            .and_then(Value::as_str)
            .is_some_and(|s| re.is_match(s)),
        Crit::Contains(f, sub) => match meta_field(e, f) {
            Some(Value::Str(s)) => s.as_str().is_some_and(|s| s.contains(sub.as_str())),
            Some(Value::Array(a)) => a
                .iter()
                .any(|v| v.as_str().is_some_and(|s| s.contains(sub.as_str()))),
            _ => false,
        },
        Crit::Prefix(f, p) => meta_field(e, f)
            .and_then(Value::as_str)
            .is_some_and(|s| s.starts_with(p.as_str())),
        Crit::Suffix(f, p) => meta_field(e, f)
            .and_then(Value::as_str)
            .is_some_and(|s| s.ends_with(p.as_str())),
    }
}

/// A shared result list.
pub type Results = Arc<Vec<Arc<Entry>>>;

/// Compiles queries and caches results.
pub struct Finder {
    results: Mutex<(u64, LruCache<String, Results>)>,
    regexes: Mutex<LruCache<String, Option<Regex>>>,
}

impl std::fmt::Debug for Finder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Finder")
    }
}

impl Default for Finder {
    fn default() -> Self {
        Finder::new(DEFAULT_QUERY_CACHE, DEFAULT_REGEX_CACHE)
    }
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

impl Finder {
    /// A finder with the given cache sizes (0 disables the result cache).
    pub fn new(query_cache_size: usize, regex_cache_size: usize) -> Finder {
        Finder {
            results: Mutex::new((u64::MAX, LruCache::new(cap(query_cache_size)))),
            regexes: Mutex::new(LruCache::new(cap(regex_cache_size))),
        }
    }

    fn regex(&self, pattern: &str) -> Option<Regex> {
        let mut g = self.regexes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = g.get(pattern) {
            return r.clone();
        }
        let r = match Regex::new(pattern) {
            Ok(r) => Some(r),
            Err(e) => {
                log::warn!(target: "wippy::registry", "finder: invalid regex {pattern:?} ignored: {e}");
                None
            }
        };
        g.put(pattern.to_string(), r.clone());
        r
    }

    /// Compile a criteria bag (a `Value::Map`, or any iterator of pairs).
    pub fn compile<'a, I>(&self, criteria: I) -> Query
    where
        I: IntoIterator<Item = (&'a str, &'a Value)>,
    {
        let mut items: Vec<(&str, &Value)> = criteria.into_iter().collect();
        items.sort_by(|a, b| a.0.cmp(b.0));
        let mut crits = Vec::with_capacity(items.len());
        let mut key = String::new();
        for (k, v) in items {
            let root = match k {
                ".kind" => Some(Root::Kind),
                ".ns" => Some(Root::Ns),
                ".name" => Some(Root::Name),
                ".id" => Some(Root::Id),
                _ => None,
            };
            let crit = if let Some(root) = root {
                v.as_str().map(|s| Crit::Root(root, Glob::new(s)))
            } else if let Some(f) = k.strip_prefix("meta.") {
                Some(Crit::Eq(f.to_string(), v.clone()))
            } else if let Some(rest) = k.get(1..).and_then(|r| r.strip_prefix("meta.")) {
                let s = v.as_str();
                match (k.as_bytes()[0], s) {
                    (b'~', Some(p)) => self.regex(p).map(|re| Crit::Regex(rest.to_string(), re)),
                    (b'*', Some(p)) => Some(Crit::Contains(rest.to_string(), p.to_string())),
                    (b'^', Some(p)) => Some(Crit::Prefix(rest.to_string(), p.to_string())),
                    (b'$', Some(p)) => Some(Crit::Suffix(rest.to_string(), p.to_string())),
                    (b'~' | b'*' | b'^' | b'$', None) => None,
                    _ => {
                        log::warn!(target: "wippy::registry", "finder: unknown criteria key {k:?} ignored");
                        None
                    }
                }
            } else {
                log::warn!(target: "wippy::registry", "finder: criteria key {k:?} ignored (use .kind/.ns/.name/.id or meta.<field>)");
                None
            };
            if let Some(c) = crit {
                key.push_str(k);
                key.push('\u{1}');
                key.push_str(&format!("{v:?}"));
                key.push('\u{2}');
                crits.push(c);
            }
        }
        Query { crits, key }
    }

    /// Compile from a `Value::Map` of criteria (non-string keys are ignored).
    pub fn compile_value(&self, criteria: &Value) -> Query {
        let pairs: Vec<(&str, &Value)> = criteria
            .as_map()
            .unwrap_or(&[])
            .iter()
            .filter_map(|(k, v)| k.as_str().map(|k| (k, v)))
            .collect();
        self.compile(pairs)
    }

    /// Evaluate without the cache.
    pub fn find_uncached(state: &State, q: &Query) -> Vec<Arc<Entry>> {
        state.iter().filter(|e| q.matches(e)).cloned().collect()
    }

    /// Evaluate through the cache; `version` identifies `state`.
    pub fn find(&self, state: &State, version: u64, q: &Query) -> Arc<Vec<Arc<Entry>>> {
        {
            let mut g = self.results.lock().unwrap_or_else(|e| e.into_inner());
            if g.0 != version {
                g.1.clear();
                g.0 = version;
            } else if let Some(hit) = g.1.get(q.cache_key()) {
                return hit.clone();
            }
        }
        let res = Arc::new(Finder::find_uncached(state, q));
        let mut g = self.results.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 == version {
            g.1.put(q.cache_key().to_string(), res.clone());
        }
        res
    }

    /// Drop all cached results.
    pub fn invalidate(&self) {
        let mut g = self.results.lock().unwrap_or_else(|e| e.into_inner());
        g.1.clear();
        g.0 = u64::MAX;
    }
}
