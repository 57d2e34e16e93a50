//! Go duration strings (`"10s"`, `"1m30s"`, `"500ms"`, `"1.5h"`), the format Wippy uses for
//! every duration in `.wippy.yaml` and entry data.
//!
//! Grammar (Go's `time.ParseDuration`): an optional sign, then one or more
//! `<decimal number><unit>` pairs, units `ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`; the bare
//! string `"0"` is zero. Negative durations are rejected here (no Wippy setting takes one).
//! [`format_duration`] prints Go's `Duration.String()` form (`1m30s`, `500ms`, `0s`).

use std::fmt;
use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for DurationError {}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Parse a Go duration string.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    let s = match s.strip_prefix('+') {
        Some(r) => r,
        None if s.starts_with('-') => {
            if s[1..].chars().all(|c| c == '0') && s.len() > 1 {
                return Ok(Duration::ZERO);
            }
            return Err(err("negative durations are not allowed"));
        }
        None => s,
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(err("empty duration"));
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." {
            return Err(err("expected a number"));
        }
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        if frac_part.contains('.') {
            return Err(err("malformed number"));
        }
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        if unit.is_empty() {
            return Err(err("missing unit (one of ns, us, ms, s, m, h)"));
        }
        let scale =
            unit_nanos(unit).ok_or_else(|| err("unknown unit (expected ns, us, ms, s, m, h)"))?;
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err("number too large"))?
        };
        let mut v = int.checked_mul(scale).ok_or_else(|| err("overflow"))?;
        if !frac_part.is_empty() {
            // Exact decimal fraction: frac / 10^digits * scale, truncated like Go.
            let digits = frac_part.len().min(30) as u32;
            let frac: u128 = frac_part[..digits as usize]
                .parse()
                .map_err(|_| err("malformed number"))?;
            v += frac * scale / 10u128.pow(digits);
        }
        total = total.checked_add(v).ok_or_else(|| err("overflow"))?;
    }
    if total > i64::MAX as u128 {
        return Err(err("overflow"));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// Format like Go's `Duration.String()`.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000));
    }
    let h = ns / 3_600_000_000_000;
    let m = (ns / 60_000_000_000) % 60;
    let s = ns % 60_000_000_000;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", frac(s, 1_000_000_000)));
    out
}

fn frac(v: u128, unit: u128) -> String {
    let int = v / unit;
    let rem = v % unit;
    if rem == 0 {
        return int.to_string();
    }
    let width = unit.to_string().len() - 1;
    let f = format!("{rem:0width$}");
    format!("{int}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("10s", 10_000_000_000),
            ("1m30s", 90_000_000_000),
            ("500ms", 500_000_000),
            ("1.5h", 5_400_000_000_000),
            ("2h45m", 9_900_000_000_000),
            ("100us", 100_000),
            ("100µs", 100_000),
            ("7ns", 7),
            (".5s", 500_000_000),
            ("+3s", 3_000_000_000),
        ];
        for (s, n) in ok {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_nanos(*n), "{s}");
        }
        for bad in ["", "10", "s", "1x", "-1s", "1..5s", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(
            parse_duration("5").unwrap_err().to_string(),
            "invalid duration \"5\": missing unit (one of ns, us, ms, s, m, h)"
        );
    }

    #[test]
    fn format_forms() {
        for (n, s) in [
            (0u64, "0s"),
            (90_000_000_000, "1m30s"),
            (500_000_000, "500ms"),
            (1_500_000_000, "1.5s"),
            (3_600_000_000_000, "1h0m0s"),
            (30_000_000_000, "30s"),
            (1_500, "1.5µs"),
        ] {
            assert_eq!(format_duration(Duration::from_nanos(n)), s);
        }
    }
}
