//! Restart delays: growing exponential backoff with a cap and uniform jitter.
//!
//! `delay(n)` for the n-th consecutive failure (n ≥ 1):
//!
//! ```text
//! base(n)  = min(initial_delay × backoff_factor^(n-1), max_delay)
//! delay(n) = base(n) × (1 + jitter × u),  u uniform in [-1, 1)
//! ```
//!
//! The counter `n` is the controller's retry count, which resets to 1 when a run lasted at
//! least `stable_threshold`, so a service that was healthy for a while restarts quickly again.
//!
//! ⚠ Upstream builds a fresh calculator for every retry, so its delay never grows (always
//! `initial_delay ± jitter`, spec §6.6). We grow it, as the documentation promises (decision
//! 0063). `backoff_factor: 1` restores a constant delay.
//!
//! The jitter source is a xorshift64* generator seeded per controller (from the OS RNG mixed
//! with the service id): cheap, lock-free, and good enough to de-synchronise restarts.

use std::time::Duration;

use super::config::RestartPolicy;

/// Largest exponent evaluated before capping (2^64 × any sane delay overflows anyway).
const MAX_EXPONENT: i32 = 64;

/// Per-controller delay calculator.
#[derive(Clone, Debug)]
pub struct Backoff {
    state: u64,
}

impl Backoff {
    /// A calculator seeded from the OS RNG and `salt` (the service id).
    pub fn new(salt: &str) -> Backoff {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        let mut s = u64::from_le_bytes(seed);
        for b in salt.bytes() {
            s = (s ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Backoff::seeded(s)
    }

    /// A calculator with a fixed seed (tests).
    pub fn seeded(seed: u64) -> Backoff {
        Backoff { state: seed | 1 }
    }

    fn next_unit(&mut self) -> f64 {
        // xorshift64*
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (r >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The delay before retry number `n` (1 = first retry).
    pub fn delay(&mut self, policy: &RestartPolicy, n: u32) -> Duration {
        let base = base_delay(policy, n);
        if policy.jitter <= 0.0 || base.is_zero() {
            return base;
        }
        let u = self.next_unit() * 2.0 - 1.0;
        base.mul_f64((1.0 + policy.jitter * u).max(0.0))
    }
}

/// `min(initial × factor^(n-1), max)` without jitter.
pub fn base_delay(policy: &RestartPolicy, n: u32) -> Duration {
    let exp = (n.max(1) - 1).min(MAX_EXPONENT as u32) as i32;
    let secs = policy.initial_delay.as_secs_f64() * policy.backoff_factor.powi(exp);
    let cap = policy.max_delay.as_secs_f64();
    if !secs.is_finite() || secs >= cap {
        policy.max_delay
    } else {
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters_within_bounds() {
        let p = RestartPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            backoff_factor: 2.0,
            jitter: 0.0,
            max_attempts: 0,
        };
        let mut b = Backoff::seeded(7);
        let got: Vec<u128> = (1..=6).map(|n| b.delay(&p, n).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        let pj = RestartPolicy { jitter: 0.1, ..p };
        for n in 1..=6 {
            let base = base_delay(&pj, n).as_secs_f64();
            for _ in 0..100 {
                let d = b.delay(&pj, n).as_secs_f64();
                assert!(d >= base * 0.9 - 1e-9 && d <= base * 1.1 + 1e-9, "{n}: {d}");
            }
        }
        assert_eq!(base_delay(&p, 10_000), Duration::from_millis(1000));
    }
}
