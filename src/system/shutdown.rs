//! Programmatic shutdown and the process exit code (spec `runtime-internals.md` §6.8,
//! `lua-api.md` §5.4).
//!
//! [`Shutdown::trigger`] stores the exit code on **every** call (last writer wins, codes outside
//! `i32` become 1) and only the first call starts the graceful shutdown (through the callback
//! boot installs, normally `Handle::raise_shutdown_signal`). `system.exit(n)` and the terminal
//! host's completion both go through it, exactly as in the original.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

type StartFn = Box<dyn Fn() + Send + Sync + 'static>;

/// Exit-code store and shutdown trigger.
pub struct Shutdown {
    code: AtomicI64,
    triggered: AtomicBool,
    start: Mutex<Option<StartFn>>,
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        Shutdown {
            code: AtomicI64::new(0),
            triggered: AtomicBool::new(false),
            start: Mutex::new(None),
        }
    }
}

impl Shutdown {
    /// A store with exit code 0 and no start callback.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Install what the first trigger runs (boot: raise the shutdown signal).
    pub fn on_start(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.start.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(f));
    }

    /// Record `code` and start the shutdown if it was not started yet.
    pub fn trigger(&self, code: i64) {
        let code = if code < i32::MIN as i64 || code > i32::MAX as i64 {
            1
        } else {
            code
        };
        self.code.store(code, Ordering::SeqCst);
        if self.triggered.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(f) = self
            .start
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            f();
        }
    }

    /// True once [`trigger`](Self::trigger) has been called.
    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::SeqCst)
    }

    /// The stored exit code (0 unless triggered with another).
    pub fn code(&self) -> i32 {
        self.code.load(Ordering::SeqCst) as i32
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("code", &self.code())
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn last_writer_wins_first_trigger_starts() {
        let s = Shutdown::new();
        let started = Arc::new(AtomicUsize::new(0));
        let c = started.clone();
        s.on_start(move || {
            c.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(s.code(), 0);
        s.trigger(3);
        s.trigger(0);
        assert_eq!(s.code(), 0);
        assert_eq!(started.load(Ordering::SeqCst), 1);
        s.trigger(1 << 40);
        assert_eq!(s.code(), 1);
    }
}
