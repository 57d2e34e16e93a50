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

/// A test-and-test-and-set spin lock for critical sections of a few instructions (the
/// per-process event queue's push and swap). Cheaper than a futex mutex on the hot path: the
/// unlock is a plain release store instead of an atomic swap. Waiters spin briefly and then
/// yield their time slice (`crossbeam_utils::Backoff`), so a holder preempted by the OS does
/// not burn a core for long. Under loom it is loom's `Mutex` (see below).
#[cfg(not(loom))]
pub(crate) struct SpinLock<T> {
    locked: std::sync::atomic::AtomicBool,
    value: std::cell::UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one thread at a time (acquire on lock,
// release on unlock), which is exactly what `Mutex<T>: Sync` requires of `T: Send`.
#[cfg(not(loom))]
unsafe impl<T: Send> Sync for SpinLock<T> {}

#[cfg(not(loom))]
impl<T> SpinLock<T> {
    pub(crate) const fn new(v: T) -> Self {
        SpinLock {
            locked: std::sync::atomic::AtomicBool::new(false),
            value: std::cell::UnsafeCell::new(v),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        use std::sync::atomic::Ordering::{Acquire, Relaxed};
        if self
            .locked
            .compare_exchange_weak(false, true, Acquire, Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard { lock: self }
    }

    #[cold]
    fn lock_contended(&self) {
        use std::sync::atomic::Ordering::{Acquire, Relaxed};
        let backoff = crossbeam_utils::Backoff::new();
        loop {
            while self.locked.load(Relaxed) {
                backoff.snooze();
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Acquire, Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

#[cfg(not(loom))]
impl<T: std::fmt::Debug> std::fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpinLock")
    }
}

/// Guard of a [`SpinLock`].
#[cfg(not(loom))]
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

#[cfg(not(loom))]
impl<T> std::ops::Deref for SpinGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock (acquired in `lock`,
        // released in `drop`), so no other reference to `value` is live.
        unsafe { &*self.lock.value.get() }
    }
}

#[cfg(not(loom))]
impl<T> std::ops::DerefMut for SpinGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

#[cfg(not(loom))]
impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock
            .locked
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

/// Under loom the spin lock is loom's mutex (same API surface as used by the queue).
#[cfg(loom)]
pub(crate) struct SpinLock<T>(Mutex<T>);

#[cfg(loom)]
impl<T> SpinLock<T> {
    pub(crate) fn new(v: T) -> Self {
        SpinLock(Mutex::new(v))
    }
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        lock(&self.0)
    }
}

#[cfg(loom)]
impl<T> std::fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpinLock")
    }
}
