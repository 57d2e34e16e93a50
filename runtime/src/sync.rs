//! The std ↔ loom shim.
//!
//! Every cross-thread protocol of the crate (process state word, event queue, parking, idle
//! accounting, run queues) imports its primitives from here, never from `std::sync` directly,
//! so that `RUSTFLAGS="--cfg loom"` swaps them for loom's model-checked versions (the same idea
//! as tokio's `src/loom` module and crossbeam-utils' `primitive`). Code that is never part of a
//! loom model (reactor, bus, relay worker pools) may use std directly.
//!
//! [`lock`] hides poisoning: a panic while holding one of our locks is a broken runtime
//! invariant, and the data behind our locks stays consistent across a panic in user code (user
//! code never runs under them), so we keep going with the inner guard.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(not(loom))]
#[allow(unused_imports)] // `Arc` is used by the loom models
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Lock a mutex, ignoring poisoning (see the module docs).
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Wait on a condition variable, ignoring poisoning.
#[inline]
pub(crate) fn wait<'a, T>(cv: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    match cv.wait(g) {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// `std::thread::yield_now`, or a loom scheduling point.
#[allow(dead_code)] // loom models
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// An `UnsafeCell` with loom's closure API (`with` / `with_mut`), so loom can track accesses.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(v: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(v))
    }
    /// Run `f` with a mutable pointer to the contents; the caller argues exclusivity.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
