//! Process-wide cache of translations keyed by source hash.
//!
//! The registry's bytecode stage and every Lua state spawn ask for the translation of the same
//! few sources over and over; each distinct source is translated once per cache. Protocol:
//!
//! 1. Hash the source (SipHash, fixed keys) and, under the mutex, find or create the *slot* for
//!    that hash. A slot stores the full source, so a hit is confirmed byte for byte; on a hash
//!    collision with a different source the call translates without caching.
//! 2. Outside the mutex, `OnceLock::get_or_init` on the slot translates; concurrent callers for
//!    the same source block on the same `OnceLock` instead of translating twice.
//! 3. Results (translations *and* syntax errors, which do not depend on the chunk name until it
//!    is attached) stay in an LRU bounded by entry count; evicting a slot never invalidates an
//!    `Arc<Translation>` already handed out.

use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};

use lru::LruCache;

use super::error::{RawError, SyntaxError};
use super::{Translation, translate_raw};

/// Default number of cached sources.
///
/// A large application has a few hundred Lua entries; 4096 leaves room for reloads while keeping
/// the worst case (each a few KiB of code plus its translation) in the tens of MiB.
pub const DEFAULT_CAPACITY: usize = 4096;

struct Slot {
    source: Box<[u8]>,
    result: OnceLock<Result<Arc<Translation>, RawError>>,
}

/// Thread-safe, bounded cache of translations keyed by source hash; see the module docs.
pub struct TranslationCache {
    slots: Mutex<LruCache<u64, Arc<Slot>>>,
    hasher: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>,
}

impl Default for TranslationCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for TranslationCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranslationCache")
            .field("len", &self.len())
            .finish()
    }
}

impl TranslationCache {
    /// A cache holding at most `capacity` sources (at least one).
    pub fn new(capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).expect("capacity is at least one");
        TranslationCache {
            slots: Mutex::new(LruCache::new(cap)),
            hasher: Default::default(),
        }
    }

    /// Translation of `source`, computed at most once per cached source. `chunk_name` is used
    /// only to label a syntax error.
    pub fn get(&self, source: &str, chunk_name: &str) -> Result<Arc<Translation>, SyntaxError> {
        self.get_bytes(source.as_bytes(), chunk_name)
    }

    /// [`get`](Self::get) for non-UTF-8 sources.
    pub fn get_bytes(
        &self,
        source: &[u8],
        chunk_name: &str,
    ) -> Result<Arc<Translation>, SyntaxError> {
        let mut h = self.hasher.build_hasher();
        h.write(source);
        let key = h.finish();
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            match slots.get(&key) {
                Some(s) if *s.source == *source => Some(Arc::clone(s)),
                Some(_) => None, // collision: do not cache
                None => {
                    let s = Arc::new(Slot {
                        source: source.into(),
                        result: OnceLock::new(),
                    });
                    slots.put(key, Arc::clone(&s));
                    Some(s)
                }
            }
        };
        let result = match slot {
            Some(s) => s
                .result
                .get_or_init(|| translate_raw(source).map(Arc::new))
                .clone(),
            None => translate_raw(source).map(Arc::new),
        };
        result.map_err(|e| e.with_chunk(chunk_name))
    }

    /// Number of cached sources.
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop every cached translation.
    pub fn clear(&self) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_share_the_translation() {
        let c = TranslationCache::new(2);
        let a = c.get("local x: number = 1", "a").unwrap();
        let b = c.get("local x: number = 1", "b").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn errors_carry_the_callers_chunk_name() {
        let c = TranslationCache::new(2);
        let e1 = c.get("local = 1", "one").unwrap_err();
        let e2 = c.get("local = 1", "two").unwrap_err();
        assert!(e1.to_string().starts_with("one:1:7:"), "{e1}");
        assert!(e2.to_string().starts_with("two:1:7:"), "{e2}");
    }

    #[test]
    fn bounded() {
        let c = TranslationCache::new(2);
        for i in 0..10 {
            c.get(&format!("x = {i}"), "c").unwrap();
        }
        assert_eq!(c.len(), 2);
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn concurrent_callers_translate_once() {
        let c = Arc::new(TranslationCache::new(8));
        let src = "local function f(a: number): number return a end";
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || c.get(src, "t").unwrap())
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(results.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));
    }
}
