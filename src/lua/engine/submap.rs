//! The subscriptions of one process by topic: a vector while small, a hash map when large.
//!
//! Almost every process holds one subscription (its inbox) or a few (`listen` topics, timer
//! and future topics while they are pending). A hash map's first allocation holds four
//! buckets (~340 B with the topic and [`Sub`]) — paid by every idle process. A vector with
//! exact first capacity costs one entry, and a linear scan over a handful of short keys is as
//! fast as hashing. Past [`SMALL_MAX`] entries (a process with many pending futures or
//! timers), lookups would grow linearly, so the map switches to hashing for good.
//!
//! Invariant: keys are unique in either representation.

use std::ops::Index;

use fnv::FnvHashMap;

use super::core::Sub;

/// Entries kept in the vector form; one more moves the map to hashing.
const SMALL_MAX: usize = 8;

/// Topic → subscription.
pub(crate) enum SubMap {
    /// Few entries, scanned linearly.
    Small(Vec<(Box<str>, Sub)>),
    /// Many entries.
    Large(FnvHashMap<Box<str>, Sub>),
}

impl Default for SubMap {
    fn default() -> Self {
        SubMap::Small(Vec::new())
    }
}

impl SubMap {
    /// The subscription of `topic`.
    pub fn get(&self, topic: &str) -> Option<&Sub> {
        match self {
            SubMap::Small(v) => v.iter().find(|(k, _)| **k == *topic).map(|(_, s)| s),
            SubMap::Large(m) => m.get(topic),
        }
    }

    /// Whether `topic` has a subscription.
    pub fn contains_key(&self, topic: &str) -> bool {
        self.get(topic).is_some()
    }

    /// Set the subscription of `topic`, returning the one it replaces.
    pub fn insert(&mut self, topic: String, sub: Sub) -> Option<Sub> {
        match self {
            SubMap::Small(v) => {
                if let Some((_, s)) = v.iter_mut().find(|(k, _)| **k == *topic) {
                    return Some(std::mem::replace(s, sub));
                }
                if v.len() < SMALL_MAX {
                    if v.capacity() == 0 {
                        v.reserve_exact(1);
                    }
                    v.push((topic.into_boxed_str(), sub));
                    return None;
                }
                let mut m: FnvHashMap<Box<str>, Sub> = v.drain(..).collect();
                m.insert(topic.into_boxed_str(), sub);
                *self = SubMap::Large(m);
                None
            }
            SubMap::Large(m) => m.insert(topic.into_boxed_str(), sub),
        }
    }

    /// Remove the subscription of `topic`.
    pub fn remove(&mut self, topic: &str) -> Option<Sub> {
        match self {
            SubMap::Small(v) => {
                let i = v.iter().position(|(k, _)| **k == *topic)?;
                Some(v.swap_remove(i).1)
            }
            SubMap::Large(m) => m.remove(topic),
        }
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        match self {
            SubMap::Small(v) => v.len(),
            SubMap::Large(m) => m.len(),
        }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop every subscription (the map goes back to the small form).
    pub fn clear(&mut self) {
        *self = SubMap::default();
    }
}

impl Index<&str> for SubMap {
    type Output = Sub;

    fn index(&self, topic: &str) -> &Sub {
        self.get(topic)
            .unwrap_or_else(|| panic!("no subscription for topic {topic:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `Sub` holds Lua handles; the map's logic is generic over the value in all but type, so
    // the tests drive it through a real state's channels.
    fn sub(lua: &mlua::Lua) -> Sub {
        let ch = super::super::channel::new_channel(lua, 0).unwrap();
        Sub {
            raw: super::super::channel::raw_ref(&ch),
            chan: ch,
            mode: super::super::core::SubMode::Raw,
        }
    }

    #[test]
    fn small_then_large_keeps_every_entry() {
        let lua = mlua::Lua::new();
        let mut m = SubMap::default();
        for i in 0..20 {
            assert!(m.insert(format!("t{i}"), sub(&lua)).is_none());
            assert_eq!(m.len(), i + 1);
            assert!(matches!(m, SubMap::Small(_)) == (i < SMALL_MAX));
        }
        for i in 0..20 {
            assert!(m.contains_key(&format!("t{i}")), "t{i}");
        }
        assert!(!m.contains_key("t20"));
        // Replacing returns the old entry and keeps the count.
        assert!(m.insert("t3".into(), sub(&lua)).is_some());
        assert_eq!(m.len(), 20);
        assert!(m.remove("t3").is_some());
        assert!(m.remove("t3").is_none());
        assert_eq!(m.len(), 19);
        let _ = &m["t4"];
        m.clear();
        assert!(m.is_empty() && matches!(m, SubMap::Small(_)));
    }

    #[test]
    fn small_form_replaces_and_removes_in_place() {
        let lua = mlua::Lua::new();
        let mut m = SubMap::default();
        m.insert("@inbox".into(), sub(&lua));
        m.insert("a".into(), sub(&lua));
        assert!(m.insert("@inbox".into(), sub(&lua)).is_some());
        assert_eq!(m.len(), 2);
        assert!(m.remove("@inbox").is_some());
        assert!(m.get("a").is_some() && m.get("@inbox").is_none());
    }
}
