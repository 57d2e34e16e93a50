//! Budgets: per-state memory limit and instruction-count preemption.
//!
//! **Memory**: [`VmConfig::memory_limit`](super::VmConfig) is applied with mlua's
//! `set_memory_limit`; an allocation beyond it raises a Lua memory error ("not enough
//! memory") that the engine turns into the process's exit reason.
//!
//! **Instructions**: a Lua count hook costs about 2x while installed (anchors §2), so it is
//! *armed only when a step overruns its time slice* and disarmed at the end of the step. Once
//! armed on a task's thread, the hook fires every `slice` VM instructions:
//! - at a yieldable point (the task runs as a coroutine and is not inside a non-yieldable C
//!   call) it yields the thread with no values and sets the [`Preemption::take_fired`] flag; the
//!   engine sees the flag after `resume` returns and re-queues the task instead of treating the
//!   yield as a runtime command;
//! - at a non-yieldable point (inside `table.sort`'s comparator, a `string.gsub` callback, a
//!   metamethod called from C, …) it lets the code continue, up to `max_blocked_fires`
//!   consecutive firings; beyond that it raises
//!   `instruction budget exceeded: <n> instructions without a yield point`.
//!
//! The policy (slice length, when to arm, what to do with a preempted task) is the engine's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use mlua::{HookTriggers, Lua, Thread, VmState};

/// Parameters of an armed instruction budget.
#[derive(Clone, Copy, Debug)]
pub struct PreemptConfig {
    /// VM instructions between hook firings.
    pub slice: u32,
    /// Consecutive firings at non-yieldable points tolerated before raising.
    pub max_blocked_fires: u32,
}

impl Default for PreemptConfig {
    fn default() -> Self {
        // 10k instructions ≈ 40-70 µs of plain Lua on the reference machine: fine-grained
        // enough for tail latency, coarse enough that the hook itself costs < 1%.
        // 1000 blocked firings ≈ 10M instructions ≈ 50-100 ms inside one C call.
        PreemptConfig {
            slice: 10_000,
            max_blocked_fires: 1_000,
        }
    }
}

/// Handle to an armed instruction budget on one thread.
#[derive(Clone, Debug, Default)]
pub struct Preemption {
    fired: Arc<AtomicBool>,
    blocked: Arc<AtomicU32>,
}

impl Preemption {
    /// True (and cleared) if the hook yielded the thread since the last call.
    pub fn take_fired(&self) -> bool {
        self.fired.swap(false, Ordering::Relaxed)
    }
}

/// Arm the instruction budget on `thread` (a task coroutine). Replaces any previous hook on
/// that thread.
pub fn arm(thread: &Thread, cfg: PreemptConfig) -> mlua::Result<Preemption> {
    let p = Preemption::default();
    let (fired, blocked) = (p.fired.clone(), p.blocked.clone());
    let limit = cfg.max_blocked_fires;
    let slice = cfg.slice.max(1);
    thread.set_hook(
        HookTriggers::new().every_nth_instruction(slice),
        move |lua, _dbg| {
            if is_yieldable(lua) {
                blocked.store(0, Ordering::Relaxed);
                fired.store(true, Ordering::Relaxed);
                Ok(VmState::Yield)
            } else {
                let n = blocked.fetch_add(1, Ordering::Relaxed) + 1;
                if n > limit {
                    return Err(mlua::Error::RuntimeError(format!(
                        "instruction budget exceeded: {} instructions without a yield point",
                        n as u64 * slice as u64
                    )));
                }
                Ok(VmState::Continue)
            }
        },
    )?;
    Ok(p)
}

/// Remove the budget hook from `thread`.
pub fn disarm(thread: &Thread) {
    thread.remove_hook();
}

/// Whether the running Lua thread can yield here.
pub fn is_yieldable(lua: &Lua) -> bool {
    lua.exec_raw_lua(|raw| {
        // SAFETY: `raw.state()` is the lua_State of the thread currently executing (mlua
        // points it at the running coroutine while a callback or hook runs), valid for the
        // duration of this call because the state lock is held; lua_isyieldable only reads
        // its `nCcalls`/`nny` fields.
        unsafe { mlua::ffi::lua_isyieldable(raw.state()) != 0 }
    })
}
