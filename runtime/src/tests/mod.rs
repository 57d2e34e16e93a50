//! loom models (compiled only with `RUSTFLAGS="--cfg loom"`), named `loom_*`.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p wippy-rt --release --lib
//! --target-dir target/loom loom_` (see `.ci/run`). The models drive the real protocol code
//! (`StateWord`, `EventQueue`, `Parker`, `Idle`, `Executor::{schedule_remote, park_worker}`)
//! with the run queues swapped for mutex models (`exec/queue.rs`).

mod loom_park;
mod loom_queue;
mod loom_state;
