//! loom models (compiled only with `RUSTFLAGS="--cfg loom"`), named `loom_*`.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p wippy-rt --release --lib
//! --target-dir target/loom loom_` (see `.ci/run`).
