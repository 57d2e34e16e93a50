//! The OS fence: every libc call of the crate goes through here (see `docs/unsafe.md`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `SystemTime::now()` from `CLOCK_REALTIME_COARSE` (updated every tick, ~1–4 ms resolution):
/// a plain read of the vDSO page instead of a full clock read. Falls back to
/// `SystemTime::now()` if the clock is unavailable.
pub(crate) fn coarse_now() -> SystemTime {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the call, which is all
    // `clock_gettime(2)` requires; the clock id is a constant the kernel either supports or
    // rejects with EINVAL (handled below).
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 || ts.tv_sec < 0 {
        return SystemTime::now();
    }
    UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
