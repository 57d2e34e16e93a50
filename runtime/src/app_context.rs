//! The application context: typed, write-once service slots shared by boot components
//! (the original's `AppContext`, spec §0).
//!
//! * Writes happen only before [`AppContext::seal`]; writing a key twice, or any write after
//!   the seal, panics naming the key — both are wiring bugs in boot code, not user errors.
//! * After the seal, reads are lock-free (a frozen map behind a `OnceLock`). Before it, reads
//!   take a mutex (boot components read each other's services while loading).
//!
//! ```
//! use wippy_rt::app_context::{AppContext, Key};
//! static ROUTER_NAME: Key<String> = Key::new("router.name");
//! let cx = AppContext::new();
//! cx.set(&ROUTER_NAME, "main".to_string());
//! cx.seal();
//! assert_eq!(cx.get_ref(&ROUTER_NAME).map(String::as_str), Some("main"));
//! ```

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock};

use fnv::FnvBuildHasher;

type Slot = Arc<dyn Any + Send + Sync>;
type Map = HashMap<&'static str, Slot, FnvBuildHasher>;

/// A typed key: the name is the identity (two keys with one name are the same slot).
pub struct Key<T> {
    name: &'static str,
    _t: PhantomData<fn() -> T>,
}

impl<T> Key<T> {
    /// A key named `name`.
    pub const fn new(name: &'static str) -> Key<T> {
        Key {
            name,
            _t: PhantomData,
        }
    }
    /// The key's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<T> fmt::Debug for Key<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.name)
    }
}

/// See the module docs.
#[derive(Default)]
pub struct AppContext {
    pending: Mutex<Option<Map>>,
    sealed: OnceLock<Map>,
}

impl fmt::Debug for AppContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppContext")
            .field("sealed", &self.is_sealed())
            .finish()
    }
}

impl AppContext {
    /// An empty, unsealed context.
    pub fn new() -> AppContext {
        AppContext {
            pending: Mutex::new(Some(Map::default())),
            sealed: OnceLock::new(),
        }
    }

    /// Store a value.
    ///
    /// # Panics
    /// When the key is already set, or after [`AppContext::seal`]; the message names the key.
    pub fn set<T: Send + Sync + 'static>(&self, key: &Key<T>, value: T) {
        self.set_arc(key, Arc::new(value));
    }

    /// Store a shared value (see [`AppContext::set`]).
    pub fn set_arc<T: Send + Sync + 'static>(&self, key: &Key<T>, value: Arc<T>) {
        let mut g = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(map) = g.as_mut() else {
            panic!("app context: write of key '{}' after seal()", key.name);
        };
        if map.contains_key(key.name) {
            panic!("app context: duplicate key '{}'", key.name);
        }
        map.insert(key.name, value);
    }

    /// Read a value (lock-free after the seal).
    ///
    /// # Panics
    /// When the slot holds another type than the key's (two keys share a name).
    pub fn get<T: Send + Sync + 'static>(&self, key: &Key<T>) -> Option<Arc<T>> {
        let slot = match self.sealed.get() {
            Some(m) => m.get(key.name).cloned(),
            None => {
                let g = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                match g.as_ref() {
                    Some(m) => m.get(key.name).cloned(),
                    // Sealed between the two checks.
                    None => self.sealed.get().and_then(|m| m.get(key.name).cloned()),
                }
            }
        }?;
        Some(
            slot.downcast::<T>()
                .unwrap_or_else(|_| panic!("app context: key '{}' holds another type", key.name)),
        )
    }

    /// Borrow a value without touching reference counts; only after the seal (None before).
    pub fn get_ref<T: Send + Sync + 'static>(&self, key: &Key<T>) -> Option<&T> {
        let slot = self.sealed.get()?.get(key.name)?;
        Some(
            slot.downcast_ref::<T>()
                .unwrap_or_else(|| panic!("app context: key '{}' holds another type", key.name)),
        )
    }

    /// True when a value is stored under `key`.
    pub fn contains<T>(&self, key: &Key<T>) -> bool {
        match self.sealed.get() {
            Some(m) => m.contains_key(key.name),
            None => self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|m| m.contains_key(key.name)),
        }
    }

    /// Freeze the context: later writes panic, reads become lock-free. Idempotent.
    pub fn seal(&self) {
        let mut g = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = g.take() {
            let _ = self.sealed.set(map);
        }
    }

    /// True once sealed.
    pub fn is_sealed(&self) -> bool {
        self.sealed.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: Key<u32> = Key::new("a");
    static B: Key<String> = Key::new("b");

    #[test]
    fn set_get_seal() {
        let cx = AppContext::new();
        cx.set(&A, 7);
        assert_eq!(cx.get(&A).as_deref(), Some(&7));
        assert!(cx.get_ref(&A).is_none(), "borrowing reads need the seal");
        assert!(!cx.contains(&B));
        cx.seal();
        assert_eq!(cx.get_ref(&A), Some(&7));
        assert_eq!(cx.get(&B), None);
    }

    #[test]
    #[should_panic(expected = "duplicate key 'a'")]
    fn duplicate_panics() {
        let cx = AppContext::new();
        cx.set(&A, 1);
        cx.set(&A, 2);
    }

    #[test]
    #[should_panic(expected = "write of key 'b' after seal()")]
    fn write_after_seal_panics() {
        let cx = AppContext::new();
        cx.seal();
        cx.set(&B, String::new());
    }
}
