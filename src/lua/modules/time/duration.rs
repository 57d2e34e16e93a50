//! Go durations: parsing (`"1h30m"`, `"1.5s"`, `"-2µs"`) and `Duration.String()` formatting.

/// Nanoseconds per unit.
const UNITS: &[(&str, i64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parse a Go duration string into nanoseconds (Go's `time.ParseDuration`).
pub fn parse(s: &str) -> Result<i64, String> {
    let orig = s;
    let err = || format!("time: invalid duration \"{orig}\"");
    let mut s = s;
    let mut neg = false;
    if let Some(r) = s.strip_prefix('-') {
        neg = true;
        s = r;
    } else if let Some(r) = s.strip_prefix('+') {
        s = r;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(err());
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_part = &s[..i];
        let mut frac_part = "";
        if i < b.len() && b[i] == b'.' {
            let j0 = i + 1;
            let mut j = j0;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            frac_part = &s[j0..j];
            i = j;
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        let rest = &s[i..];
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let Some(&(_, mult)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(if unit.is_empty() {
                format!("time: missing unit in duration \"{orig}\"")
            } else {
                format!("time: unknown unit \"{unit}\" in duration \"{orig}\"")
            });
        };
        let iv: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err())?
        };
        let mut v = iv * mult as i128;
        if !frac_part.is_empty() {
            let mut scale: i128 = 1;
            let mut f: i128 = 0;
            for c in frac_part.bytes().take(18) {
                f = f * 10 + (c - b'0') as i128;
                scale *= 10;
            }
            v += f * mult as i128 / scale;
        }
        total += v;
        if total > i64::MAX as i128 + 1 {
            return Err(err());
        }
        s = &rest[unit_len..];
    }
    let total = if neg { -total } else { total };
    i64::try_from(total).map_err(|_| err())
}

/// Go's `Duration.String()`: `"1h30m0s"`, `"1.5s"`, `"500ms"`, `"0s"`.
pub fn format(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac(u, div));
        out.push_str(unit);
    } else {
        let secs = u / 1_000_000_000;
        let ns = u % 1_000_000_000;
        let h = secs / 3600;
        let m = (secs / 60) % 60;
        let s = secs % 60;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac(s * 1_000_000_000 + ns, 1_000_000_000));
        out.push('s');
    }
    if neg { format!("-{out}") } else { out }
}

/// `v / div` with the fraction's trailing zeros removed.
fn frac(v: u64, div: u64) -> String {
    let ip = v / div;
    let fp = v % div;
    if fp == 0 {
        return ip.to_string();
    }
    let width = (div as f64).log10().round() as usize;
    let f = format!("{fp:0width$}");
    format!("{ip}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_like_go() {
        assert_eq!(parse("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse("500ms"), Ok(500_000_000));
        assert_eq!(parse("-2µs"), Ok(-2_000));
        assert_eq!(parse("1h2m3.5s4ms"), Ok(3_723_504_000_000));
        assert_eq!(parse("0"), Ok(0));
        assert!(
            parse("").is_err()
                && parse("5").is_err()
                && parse("1x").is_err()
                && parse(".s").is_err()
        );
        assert_eq!(format(5_400_000_000_000), "1h30m0s");
        assert_eq!(format(1_500_000_000), "1.5s");
        assert_eq!(format(500_000_000), "500ms");
        assert_eq!(format(1_500), "1.5µs");
        assert_eq!(format(7), "7ns");
        assert_eq!(format(-60_000_000_000), "-1m0s");
        assert_eq!(format(0), "0s");
        assert_eq!(format(3_723_504_000_000), "1h2m3.504s");
    }
}
