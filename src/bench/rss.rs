//! Resident memory of this OS process, from `/proc/self/status` (Linux).
//!
//! * `VmRSS` — resident set now;
//! * `VmHWM` — peak resident set ("high water mark"). Writing `5` to `/proc/self/clear_refs`
//!   (Linux ≥ 4.0) resets it to the current RSS, so [`reset_peak`] before a run and [`read`]
//!   after it give that run's peak. Where the reset is refused the peak is the process's
//!   lifetime peak, which the report says ([`reset_peak`] returns false).

use std::io::Write;

/// Both figures, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Current resident set.
    pub rss_bytes: u64,
    /// Peak resident set since start or the last [`reset_peak`].
    pub peak_bytes: u64,
}

/// Read `/proc/self/status`. None where it is unavailable (not Linux).
pub fn read() -> Option<Memory> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status(&text)
}

/// Parse the `VmRSS` and `VmHWM` lines (values in kB) of a `/proc/<pid>/status` text.
pub fn parse_status(text: &str) -> Option<Memory> {
    let mut rss = None;
    let mut hwm = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            rss = kb(v);
        } else if let Some(v) = line.strip_prefix("VmHWM:") {
            hwm = kb(v);
        }
    }
    let rss = rss?;
    Some(Memory {
        rss_bytes: rss,
        peak_bytes: hwm.unwrap_or(rss).max(rss),
    })
}

fn kb(v: &str) -> Option<u64> {
    let mut it = v.split_whitespace();
    let n: u64 = it.next()?.parse().ok()?;
    match it.next() {
        Some("kB") | None => Some(n * 1024),
        Some(_) => None,
    }
}

/// Reset the peak to the current resident set; false if the kernel refused.
pub fn reset_peak() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
        .and_then(|mut f| f.write_all(b"5"))
        .is_ok()
}
