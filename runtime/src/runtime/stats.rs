//! Introspection: runtime counters, per-worker counters, the process list, stop reports.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use crate::pid::Pid;
use crate::process::ProcessState;
use crate::process::cell::Cell;
use crate::runtime::Shared;

/// Counters of one worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Steps run.
    pub executed: u64,
    /// Processes stolen from other workers.
    pub stolen: u64,
    /// Times the worker went to sleep.
    pub parks: u64,
    /// Current local queue length.
    pub local_queue: usize,
    /// Current inject queue length.
    pub inject_queue: usize,
}

/// Runtime counters (spec §2.13: executed, stolen, global_queue, workers, processes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Steps run, all workers.
    pub executed: u64,
    /// Processes stolen, all workers.
    pub stolen: u64,
    /// Global queue length.
    pub global_queue: usize,
    /// Number of workers.
    pub workers: usize,
    /// Whether workers are pinned to cores.
    pub pinned: bool,
    /// Live processes.
    pub processes: usize,
    /// Processes spawned since start.
    pub spawned: u64,
    /// Processes exited since start.
    pub exited: u64,
    /// Timers in the reactor's heap (including lazily-cancelled ones).
    pub timers: usize,
    /// Per-worker counters.
    pub per_worker: Vec<WorkerStats>,
}

impl RuntimeStats {
    pub(crate) fn collect(sh: &Shared) -> RuntimeStats {
        let per_worker: Vec<WorkerStats> = sh
            .exec
            .workers
            .iter()
            .map(|w| WorkerStats {
                executed: w.counters.executed.load(Relaxed),
                stolen: w.counters.stolen.load(Relaxed),
                parks: w.counters.parks.load(Relaxed),
                local_queue: w.stealer.len(),
                inject_queue: w.inject.len(),
            })
            .collect();
        RuntimeStats {
            executed: per_worker.iter().map(|w| w.executed).sum(),
            stolen: per_worker.iter().map(|w| w.stolen).sum(),
            global_queue: sh.exec.global.len(),
            workers: sh.workers,
            pinned: sh.pinned,
            processes: sh.table.len(),
            spawned: sh.spawned.load(Relaxed)
                + sh.exec
                    .workers
                    .iter()
                    .map(|w| w.counters.spawned.load(Relaxed))
                    .sum::<u64>(),
            exited: sh.exited.load(Relaxed)
                + sh.exec
                    .workers
                    .iter()
                    .map(|w| w.counters.exited.load(Relaxed))
                    .sum::<u64>(),
            timers: sh.reactor.timers_live(),
            per_worker,
        }
    }
}

/// One live process (spec §2.13 `ListProcesses`).
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessInfo {
    /// The PID.
    pub pid: Pid,
    /// The host id.
    pub host: String,
    /// Scheduling state.
    pub state: ProcessState,
    /// Steps run so far.
    pub steps: u64,
    /// Pending events in its queue.
    pub queued_events: usize,
    /// The parent (spawn option).
    pub parent: Option<Pid>,
    /// Registry id of the process entry (spawn option).
    pub source: Option<String>,
    /// Spawn time.
    pub started_at: SystemTime,
}

impl ProcessInfo {
    pub(crate) fn of(c: &Cell) -> ProcessInfo {
        ProcessInfo {
            pid: c.pid.clone(),
            host: c.host.id.clone(),
            state: c.state.get(),
            steps: c.steps(),
            queued_events: c.queue.len(),
            parent: c.options.parent.clone(),
            source: c.options.source.clone(),
            started_at: c.started_at,
        }
    }
}

/// What a stop did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Processes that received CANCEL.
    pub cancelled: usize,
    /// Of those, exited within the timeout.
    pub exited: usize,
    /// Killed after the timeout ("context canceled").
    pub forced: usize,
    /// Still inside a step that did not return (cannot be preempted).
    pub stuck: usize,
    /// Worker threads left behind by `Runtime::shutdown` (stuck in a step).
    pub stuck_workers: usize,
    /// Wall time of the stop.
    pub elapsed: Duration,
}
