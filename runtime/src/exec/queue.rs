//! Run-queue seam: crossbeam-deque in normal builds, a trivially correct mutex model under loom.
//!
//! crossbeam-deque is not loom-instrumented (its atomics are invisible to loom), so the loom
//! models of *our* protocols (parking, idle accounting) run on [`Mutex`]`<VecDeque>` stand-ins
//! with the same API. crossbeam-deque's own correctness is covered by its authors; our use of it
//! is covered by the stress tests in `tests/`.
//!
//! * [`Local`] — the owner's FIFO run queue (push back, pop front); [`Stealer`] — its
//!   thread-safe handle used by thieves (steal half).
//! * [`Injector`] — a multi-producer FIFO used both for the global queue and for each
//!   worker's private inject queue (only its owner pops from the latter).

#[cfg(not(loom))]
mod imp {
    use crossbeam_deque::{Steal, Worker};

    /// Bounded retries when crossbeam reports `Steal::Retry` (lost a race with another thief):
    /// enough to make progress, small enough not to spin on one victim.
    const RETRIES: usize = 4;

    /// The owner's end of a worker's run queue.
    pub(crate) struct Local<T>(Worker<T>);
    /// Thieves' end of a worker's run queue.
    pub(crate) struct Stealer<T>(crossbeam_deque::Stealer<T>);
    /// A multi-producer FIFO.
    pub(crate) struct Injector<T>(crossbeam_deque::Injector<T>);

    impl<T> Local<T> {
        pub(crate) fn new() -> (Local<T>, Stealer<T>) {
            let w = Worker::new_fifo();
            let s = w.stealer();
            (Local(w), Stealer(s))
        }
        #[inline]
        pub(crate) fn push(&self, t: T) {
            self.0.push(t)
        }
        #[inline]
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.pop()
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
    }

    impl<T> Stealer<T> {
        /// Steal about half of the victim's queue into `dest`, returning one task to run.
        pub(crate) fn steal_half_into(&self, dest: &Local<T>) -> Option<T> {
            for _ in 0..RETRIES {
                match self.0.steal_batch_and_pop(&dest.0) {
                    Steal::Success(t) => return Some(t),
                    Steal::Empty => return None,
                    Steal::Retry => std::hint::spin_loop(),
                }
            }
            None
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
    }

    impl<T> Injector<T> {
        pub(crate) fn new() -> Injector<T> {
            Injector(crossbeam_deque::Injector::new())
        }
        #[inline]
        pub(crate) fn push(&self, t: T) {
            self.0.push(t)
        }
        /// Take one task and move up to `limit - 1` more into `dest`.
        pub(crate) fn pop_batch_into(&self, dest: &Local<T>, limit: usize) -> Option<T> {
            for _ in 0..RETRIES {
                match self.0.steal_batch_with_limit_and_pop(&dest.0, limit) {
                    Steal::Success(t) => return Some(t),
                    Steal::Empty => return None,
                    Steal::Retry => std::hint::spin_loop(),
                }
            }
            None
        }
        /// Take one task.
        pub(crate) fn pop(&self) -> Option<T> {
            for _ in 0..RETRIES {
                match self.0.steal() {
                    Steal::Success(t) => return Some(t),
                    Steal::Empty => return None,
                    Steal::Retry => std::hint::spin_loop(),
                }
            }
            None
        }
        #[inline]
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
    }
}

#[cfg(loom)]
mod imp {
    use std::collections::VecDeque;

    use crate::sync::{Arc, Mutex, lock};

    pub(crate) struct Local<T>(Arc<Mutex<VecDeque<T>>>);
    pub(crate) struct Stealer<T>(Arc<Mutex<VecDeque<T>>>);
    pub(crate) struct Injector<T>(Mutex<VecDeque<T>>);

    impl<T> Local<T> {
        pub(crate) fn new() -> (Local<T>, Stealer<T>) {
            let q = Arc::new(Mutex::new(VecDeque::new()));
            (Local(q.clone()), Stealer(q))
        }
        pub(crate) fn push(&self, t: T) {
            lock(&self.0).push_back(t)
        }
        pub(crate) fn pop(&self) -> Option<T> {
            lock(&self.0).pop_front()
        }
        pub(crate) fn len(&self) -> usize {
            lock(&self.0).len()
        }
    }

    impl<T> Stealer<T> {
        pub(crate) fn steal_half_into(&self, dest: &Local<T>) -> Option<T> {
            let mut moved: Vec<T> = {
                let mut q = lock(&self.0);
                let n = q.len().div_ceil(2);
                q.drain(..n).collect()
            };
            if moved.is_empty() {
                return None;
            }
            let first = moved.remove(0);
            for t in moved {
                dest.push(t);
            }
            Some(first)
        }
        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.0).is_empty()
        }
        pub(crate) fn len(&self) -> usize {
            lock(&self.0).len()
        }
    }

    impl<T> Injector<T> {
        pub(crate) fn new() -> Injector<T> {
            Injector(Mutex::new(VecDeque::new()))
        }
        pub(crate) fn push(&self, t: T) {
            lock(&self.0).push_back(t)
        }
        pub(crate) fn pop_batch_into(&self, dest: &Local<T>, limit: usize) -> Option<T> {
            let mut q = lock(&self.0);
            let first = q.pop_front()?;
            for _ in 1..limit {
                match q.pop_front() {
                    Some(t) => dest.push(t),
                    None => break,
                }
            }
            Some(first)
        }
        pub(crate) fn pop(&self) -> Option<T> {
            lock(&self.0).pop_front()
        }
        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.0).is_empty()
        }
        pub(crate) fn len(&self) -> usize {
            lock(&self.0).len()
        }
    }
}

pub(crate) use imp::{Injector, Local, Stealer};
