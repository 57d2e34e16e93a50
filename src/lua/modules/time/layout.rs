//! Go reference-time layouts (`"2006-01-02T15:04:05Z07:00"`): formatting and parsing.
//!
//! The layout is split into literal text and *std chunks* exactly as Go's `nextStdChunk`
//! does (so `"Jan"` is a month only when not followed by a lower-case letter, `"_2006"` is a
//! literal `_` plus the year, `.000`/`.999` are fractional seconds only when they end the digit
//! run, …). Parsing follows Go's `time.Parse` rules for the common elements: fixed-width vs
//! variable-width numbers, month/weekday names (case-insensitive), `PM`, `Z`/numeric offsets,
//! zone abbreviations (resolved in the default location, `UTC`/`GMT`, else a zero-offset zone
//! with that name), and fractional seconds after a seconds field even when the layout has none.

use std::sync::Arc;

use super::Time;
use super::civil;
use super::zone::Location;

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    Tz,
    Iso8601Tz,
    Iso8601SecondsTz,
    Iso8601ShortTz,
    Iso8601ColonTz,
    Iso8601ColonSecondsTz,
    NumTz,
    NumSecondsTz,
    NumShortTz,
    NumColonTz,
    NumColonSecondsTz,
    /// Fractional seconds with `n` fixed digits, separator byte.
    Frac0(usize, u8),
    /// Fractional seconds, up to `n` digits, trailing zeros dropped.
    Frac9(usize, u8),
}

fn starts_lower(s: &[u8]) -> bool {
    s.first().is_some_and(|c| c.is_ascii_lowercase())
}

/// Split `layout` into (prefix, std, suffix) at the first std chunk.
fn next_std(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let n = b.len();
    let at = |i: usize, s: &str| b[i..].starts_with(s.as_bytes());
    let mut i = 0;
    while i < n {
        let hit: Option<(Std, usize)> = match b[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    Some((Std::LongMonth, 7))
                } else if !starts_lower(&b[i + 3..]) {
                    Some((Std::Month, 3))
                } else {
                    None
                }
            }
            b'M' if at(i, "Mon") => {
                if at(i, "Monday") {
                    Some((Std::LongWeekDay, 6))
                } else if !starts_lower(&b[i + 3..]) {
                    Some((Std::WeekDay, 3))
                } else {
                    None
                }
            }
            b'M' if at(i, "MST") => Some((Std::Tz, 3)),
            b'0' if i + 1 < n && (b'1'..=b'6').contains(&b[i + 1]) => Some((
                [
                    Std::ZeroMonth,
                    Std::ZeroDay,
                    Std::ZeroHour12,
                    Std::ZeroMinute,
                    Std::ZeroSecond,
                    Std::Year,
                ][(b[i + 1] - b'1') as usize],
                2,
            )),
            b'0' if at(i, "002") => Some((Std::ZeroYearDay, 3)),
            b'1' if at(i, "15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if at(i, "2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            b'_' if at(i, "_2") => {
                if at(i + 1, "2006") {
                    return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
                }
                Some((Std::UnderDay, 2))
            }
            b'_' if at(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if at(i, "PM") => Some((Std::PM, 2)),
            b'p' if at(i, "pm") => Some((Std::Pm, 2)),
            b'-' => {
                if at(i, "-07:00:00") {
                    Some((Std::NumColonSecondsTz, 9))
                } else if at(i, "-070000") {
                    Some((Std::NumSecondsTz, 7))
                } else if at(i, "-07:00") {
                    Some((Std::NumColonTz, 6))
                } else if at(i, "-0700") {
                    Some((Std::NumTz, 5))
                } else if at(i, "-07") {
                    Some((Std::NumShortTz, 3))
                } else {
                    None
                }
            }
            b'Z' => {
                if at(i, "Z07:00:00") {
                    Some((Std::Iso8601ColonSecondsTz, 9))
                } else if at(i, "Z070000") {
                    Some((Std::Iso8601SecondsTz, 7))
                } else if at(i, "Z07:00") {
                    Some((Std::Iso8601ColonTz, 6))
                } else if at(i, "Z0700") {
                    Some((Std::Iso8601Tz, 5))
                } else if at(i, "Z07") {
                    Some((Std::Iso8601ShortTz, 3))
                } else {
                    None
                }
            }
            c @ (b'.' | b',') if i + 1 < n && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < n && b[j] == ch {
                    j += 1;
                }
                if j < n && b[j].is_ascii_digit() {
                    None
                } else {
                    let digits = j - (i + 1);
                    Some((
                        if ch == b'0' {
                            Std::Frac0(digits, c)
                        } else {
                            Std::Frac9(digits, c)
                        },
                        j - i,
                    ))
                }
            }
            _ => None,
        };
        if let Some((std, len)) = hit {
            return (&layout[..i], Some(std), &layout[i + len..]);
        }
        i += 1;
    }
    (layout, None, "")
}

/// Broken-down wall clock of `t` in its location.
pub struct Parts {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub min: i64,
    pub sec: i64,
    pub nsec: u32,
    pub wday: i64,
    pub yday: i64,
    pub offset: i32,
    pub abbrev: String,
}

/// Break `t` down in its own location.
pub fn parts(t: &Time) -> Parts {
    let (abbrev, offset) = t.loc.lookup(t.sec);
    let wall = t.sec + offset as i64;
    let days = wall.div_euclid(86400);
    let secs = wall.rem_euclid(86400);
    let (year, month, day) = civil::civil_from_days(days);
    Parts {
        year,
        month,
        day,
        hour: secs / 3600,
        min: (secs / 60) % 60,
        sec: secs % 60,
        nsec: t.nsec,
        wday: civil::weekday(days),
        yday: civil::year_day(year, month, day),
        offset,
        abbrev: abbrev.to_string(),
    }
}

fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
        out.push_str(&format!("{:0width$}", -v));
    } else {
        out.push_str(&format!("{v:0width$}"));
    }
}

fn write_offset(out: &mut String, offset: i32, colon: bool, seconds: bool, short: bool) {
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.unsigned_abs();
    out.push(sign);
    out.push_str(&format!("{:02}", o / 3600));
    if !short {
        if colon {
            out.push(':');
        }
        out.push_str(&format!("{:02}", (o / 60) % 60));
    }
    if seconds {
        if colon {
            out.push(':');
        }
        out.push_str(&format!("{:02}", o % 60));
    }
}

/// Format `t` with a Go layout.
pub fn format(t: &Time, layout: &str) -> String {
    let p = parts(t);
    let mut out = String::with_capacity(layout.len() + 10);
    let mut rest = layout;
    loop {
        let (prefix, std, suffix) = next_std(rest);
        out.push_str(prefix);
        let Some(std) = std else { break };
        rest = suffix;
        match std {
            Std::LongYear => pad(&mut out, p.year, 4),
            Std::Year => pad(&mut out, p.year.rem_euclid(100), 2),
            Std::LongMonth => out.push_str(LONG_MONTHS[(p.month - 1) as usize]),
            Std::Month => out.push_str(&LONG_MONTHS[(p.month - 1) as usize][..3]),
            Std::NumMonth => out.push_str(&p.month.to_string()),
            Std::ZeroMonth => pad(&mut out, p.month, 2),
            Std::LongWeekDay => out.push_str(LONG_DAYS[p.wday as usize]),
            Std::WeekDay => out.push_str(&LONG_DAYS[p.wday as usize][..3]),
            Std::Day => out.push_str(&p.day.to_string()),
            Std::UnderDay => out.push_str(&format!("{:>2}", p.day)),
            Std::ZeroDay => pad(&mut out, p.day, 2),
            Std::UnderYearDay => out.push_str(&format!("{:>3}", p.yday)),
            Std::ZeroYearDay => pad(&mut out, p.yday, 3),
            Std::Hour => pad(&mut out, p.hour, 2),
            Std::Hour12 | Std::ZeroHour12 => {
                let h = match p.hour % 12 {
                    0 => 12,
                    h => h,
                };
                if std == Std::Hour12 {
                    out.push_str(&h.to_string())
                } else {
                    pad(&mut out, h, 2)
                }
            }
            Std::Minute => out.push_str(&p.min.to_string()),
            Std::ZeroMinute => pad(&mut out, p.min, 2),
            Std::Second => out.push_str(&p.sec.to_string()),
            Std::ZeroSecond => pad(&mut out, p.sec, 2),
            Std::PM => out.push_str(if p.hour >= 12 { "PM" } else { "AM" }),
            Std::Pm => out.push_str(if p.hour >= 12 { "pm" } else { "am" }),
            Std::Tz => {
                if !p.abbrev.is_empty() {
                    out.push_str(&p.abbrev);
                } else {
                    write_offset(&mut out, p.offset, false, false, false);
                }
            }
            Std::Iso8601Tz
            | Std::Iso8601SecondsTz
            | Std::Iso8601ShortTz
            | Std::Iso8601ColonTz
            | Std::Iso8601ColonSecondsTz
                if p.offset == 0 =>
            {
                out.push('Z')
            }
            Std::Iso8601Tz | Std::NumTz => write_offset(&mut out, p.offset, false, false, false),
            Std::Iso8601SecondsTz | Std::NumSecondsTz => {
                write_offset(&mut out, p.offset, false, true, false)
            }
            Std::Iso8601ShortTz | Std::NumShortTz => {
                write_offset(&mut out, p.offset, false, false, true)
            }
            Std::Iso8601ColonTz | Std::NumColonTz => {
                write_offset(&mut out, p.offset, true, false, false)
            }
            Std::Iso8601ColonSecondsTz | Std::NumColonSecondsTz => {
                write_offset(&mut out, p.offset, true, true, false)
            }
            Std::Frac0(n, sep) => {
                out.push(sep as char);
                out.push_str(&format!("{:09}", p.nsec)[..n.min(9)]);
            }
            Std::Frac9(n, sep) => {
                let digits = format!("{:09}", p.nsec);
                let d = digits[..n.min(9)].trim_end_matches('0');
                if !d.is_empty() {
                    out.push(sep as char);
                    out.push_str(d);
                }
            }
        }
    }
    out
}

fn lookup_name<'a>(names: &[&str], v: &'a str, len: Option<usize>) -> Option<(usize, &'a str)> {
    for (i, n) in names.iter().enumerate() {
        let n = match len {
            Some(l) => &n[..l],
            None => n,
        };
        if v.len() >= n.len() && v.as_bytes()[..n.len()].eq_ignore_ascii_case(n.as_bytes()) {
            return Some((i, &v[n.len()..]));
        }
    }
    None
}

/// Leading number of at most `max` digits (exactly `max` when `fixed`).
fn getnum(v: &str, min: usize, max: usize, fixed: bool) -> Option<(i64, &str)> {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() && i < max && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < min || (fixed && i != max) {
        return None;
    }
    Some((v[..i].parse().ok()?, &v[i..]))
}

fn parse_offset(v: &str, std: Std) -> Option<(i32, &str)> {
    let b = v.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (colon, secs, short) = match std {
        Std::NumColonTz | Std::Iso8601ColonTz => (true, false, false),
        Std::NumColonSecondsTz | Std::Iso8601ColonSecondsTz => (true, true, false),
        Std::NumSecondsTz | Std::Iso8601SecondsTz => (false, true, false),
        Std::NumShortTz | Std::Iso8601ShortTz => (false, false, true),
        _ => (false, false, false),
    };
    let mut rest = &v[1..];
    let (hh, r) = getnum(rest, 2, 2, true)?;
    rest = r;
    let mut mm = 0;
    let mut ss = 0;
    if !short {
        if colon {
            rest = rest.strip_prefix(':')?;
        }
        let (m, r) = getnum(rest, 2, 2, true)?;
        mm = m;
        rest = r;
    }
    if secs {
        if colon {
            rest = rest.strip_prefix(':')?;
        }
        let (s, r) = getnum(rest, 2, 2, true)?;
        ss = s;
        rest = r;
    }
    Some((sign * (hh * 3600 + mm * 60 + ss) as i32, rest))
}

fn parse_frac(v: &str, sep: Option<u8>, max: Option<usize>) -> Option<(u32, &str)> {
    let b = v.as_bytes();
    if let Some(s) = sep {
        if b.first() != Some(&s) {
            return None;
        }
    } else if !matches!(b.first(), Some(b'.' | b',')) {
        return None;
    }
    let mut i = 1;
    while i < b.len() && b[i].is_ascii_digit() && max.is_none_or(|m| i <= m) {
        i += 1;
    }
    let digits = &v[1..i];
    if digits.is_empty() {
        return None;
    }
    let mut ns: u64 = 0;
    for (k, c) in digits.bytes().enumerate() {
        if k < 9 {
            ns = ns * 10 + (c - b'0') as u64;
        }
    }
    for _ in digits.len()..9 {
        ns *= 10;
    }
    Some((ns as u32, &v[i..]))
}

/// Parse `value` with a Go layout; times without zone information are in `default_loc`.
pub fn parse(layout: &str, value: &str, default_loc: &Arc<Location>) -> Result<Time, String> {
    let orig_layout = layout;
    let orig_value = value;
    let err = |elem: &str, rest: &str, msg: &str| {
        if msg.is_empty() {
            format!(
                "parsing time \"{orig_value}\" as \"{orig_layout}\": cannot parse \"{rest}\" as \"{elem}\""
            )
        } else {
            format!("parsing time \"{orig_value}\"{msg}")
        }
    };
    let (mut year, mut month, mut day, mut yday) = (1i64, -1i64, -1i64, -1i64);
    let (mut hour, mut min, mut sec, mut nsec) = (0i64, 0i64, 0i64, 0u32);
    let mut pm_set = false;
    let mut pm = false;
    let mut z_utc = false;
    let mut offset: Option<i32> = None;
    let mut zone_name: Option<String> = None;
    let mut layout = layout;
    let mut value = value;
    loop {
        let (prefix, std, suffix) = next_std(layout);
        let std_str = &layout[prefix.len()..layout.len() - suffix.len()];
        // Literal prefix must match (Go skips spaces leniently only in special cases).
        value = match value.strip_prefix(prefix) {
            Some(v) => v,
            None => return Err(err(prefix, value, "")),
        };
        let Some(std) = std else {
            if !value.is_empty() {
                return Err(err("", value, &format!(": extra text: \"{value}\"")));
            }
            break;
        };
        layout = suffix;
        let hold = value;
        let res: Option<&str> = (|| -> Option<&str> {
            match std {
                Std::LongYear => {
                    let (y, r) = getnum(value, 4, 4, true)?;
                    year = y;
                    Some(r)
                }
                Std::Year => {
                    let (y, r) = getnum(value, 2, 2, true)?;
                    year = if y >= 69 { 1900 + y } else { 2000 + y };
                    Some(r)
                }
                Std::LongMonth => {
                    let (m, r) = lookup_name(&LONG_MONTHS, value, None)?;
                    month = m as i64 + 1;
                    Some(r)
                }
                Std::Month => {
                    let (m, r) = lookup_name(&LONG_MONTHS, value, Some(3))?;
                    month = m as i64 + 1;
                    Some(r)
                }
                Std::NumMonth | Std::ZeroMonth => {
                    let (m, r) = getnum(value, 1, 2, std == Std::ZeroMonth)?;
                    if !(1..=12).contains(&m) {
                        return None;
                    }
                    month = m;
                    Some(r)
                }
                Std::LongWeekDay => lookup_name(&LONG_DAYS, value, None).map(|(_, r)| r),
                Std::WeekDay => lookup_name(&LONG_DAYS, value, Some(3)).map(|(_, r)| r),
                Std::Day | Std::UnderDay | Std::ZeroDay => {
                    let v = if std == Std::UnderDay {
                        value.strip_prefix(' ').unwrap_or(value)
                    } else {
                        value
                    };
                    let (d, r) = getnum(v, 1, 2, std == Std::ZeroDay)?;
                    day = d;
                    Some(r)
                }
                Std::UnderYearDay | Std::ZeroYearDay => {
                    let v = if std == Std::UnderYearDay {
                        value.trim_start_matches(' ')
                    } else {
                        value
                    };
                    let (d, r) = getnum(v, 1, 3, std == Std::ZeroYearDay)?;
                    yday = d;
                    Some(r)
                }
                Std::Hour => {
                    let (h, r) = getnum(value, 1, 2, false)?;
                    if h > 23 {
                        return None;
                    }
                    hour = h;
                    Some(r)
                }
                Std::Hour12 | Std::ZeroHour12 => {
                    let (h, r) = getnum(value, 1, 2, std == Std::ZeroHour12)?;
                    if !(0..=12).contains(&h) {
                        return None;
                    }
                    hour = h;
                    Some(r)
                }
                Std::Minute | Std::ZeroMinute => {
                    let (m, r) = getnum(value, 1, 2, std == Std::ZeroMinute)?;
                    if m > 59 {
                        return None;
                    }
                    min = m;
                    Some(r)
                }
                Std::Second | Std::ZeroSecond => {
                    let (s, mut r) = getnum(value, 1, 2, std == Std::ZeroSecond)?;
                    if s > 59 {
                        return None;
                    }
                    sec = s;
                    // Fractional seconds in the value but not in the layout (Go accepts them).
                    let next_is_frac =
                        matches!(next_std(layout).1, Some(Std::Frac0(..) | Std::Frac9(..)))
                            && next_std(layout).0.is_empty();
                    if !next_is_frac
                        && r.len() > 1
                        && matches!(r.as_bytes()[0], b'.' | b',')
                        && r.as_bytes()[1].is_ascii_digit()
                        && let Some((ns, rr)) = parse_frac(r, None, None)
                    {
                        nsec = ns;
                        r = rr;
                    }
                    Some(r)
                }
                Std::PM | Std::Pm => {
                    let p = value.get(..2)?;
                    pm_set = true;
                    match p.to_ascii_uppercase().as_str() {
                        "PM" => pm = true,
                        "AM" => pm = false,
                        _ => return None,
                    }
                    Some(&value[2..])
                }
                Std::Iso8601Tz
                | Std::Iso8601SecondsTz
                | Std::Iso8601ShortTz
                | Std::Iso8601ColonTz
                | Std::Iso8601ColonSecondsTz
                    if value.starts_with('Z') =>
                {
                    z_utc = true;
                    Some(&value[1..])
                }
                Std::Iso8601Tz
                | Std::Iso8601SecondsTz
                | Std::Iso8601ShortTz
                | Std::Iso8601ColonTz
                | Std::Iso8601ColonSecondsTz
                | Std::NumTz
                | Std::NumSecondsTz
                | Std::NumShortTz
                | Std::NumColonTz
                | Std::NumColonSecondsTz => {
                    let (o, r) = parse_offset(value, std)?;
                    offset = Some(o);
                    Some(r)
                }
                Std::Tz => {
                    if let Some(r) = value.strip_prefix("UTC") {
                        z_utc = true;
                        return Some(r);
                    }
                    let b = value.as_bytes();
                    let mut i = 0;
                    while i < b.len() && b[i].is_ascii_uppercase() {
                        i += 1;
                    }
                    if i < 3 {
                        // `+03` style abbreviations.
                        if matches!(b.first(), Some(b'+' | b'-')) {
                            let (o, r) = parse_offset(value, Std::NumShortTz)?;
                            offset = Some(o);
                            return Some(r);
                        }
                        return None;
                    }
                    zone_name = Some(value[..i].to_string());
                    Some(&value[i..])
                }
                Std::Frac0(n, sep) => {
                    let (ns, r) = parse_frac(value, Some(sep), Some(n))?;
                    nsec = ns;
                    Some(r)
                }
                Std::Frac9(_, sep) => {
                    if value.as_bytes().first() != Some(&sep) {
                        return Some(value);
                    }
                    let (ns, r) = parse_frac(value, Some(sep), None)?;
                    nsec = ns;
                    Some(r)
                }
            }
        })();
        match res {
            Some(r) => value = r,
            None => return Err(err(std_str, hold, "")),
        }
    }
    if pm_set {
        if hour > 12 {
            return Err(err("", "", ": hour out of range"));
        }
        if pm && hour < 12 {
            hour += 12;
        } else if !pm && hour == 12 {
            hour = 0;
        }
    }
    if yday >= 0 {
        let leap = civil::is_leap(year);
        if yday < 1 || yday > if leap { 366 } else { 365 } {
            return Err(err("", "", ": day-of-year out of range"));
        }
        let d0 = civil::days_from_civil(year, 1, 1) + yday - 1;
        let (_, m, d) = civil::civil_from_days(d0);
        if (month >= 0 && month != m) || (day >= 0 && day != d) {
            return Err(err("", "", ": day-of-year does not match month or day"));
        }
        month = m;
        day = d;
    }
    if month < 0 {
        month = 1;
    }
    if day < 0 {
        day = 1;
    }
    if day < 1 || day > civil::days_in_month(year, month) {
        return Err(err("", "", ": day out of range"));
    }
    let wall = civil::days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;
    if z_utc {
        return Ok(Time {
            sec: wall,
            nsec,
            loc: super::zone::utc(),
        });
    }
    if let Some(off) = offset {
        let unix = wall - off as i64;
        let (_, loc_off) = default_loc.lookup(unix);
        let loc = if loc_off == off {
            default_loc.clone()
        } else {
            Arc::new(Location::fixed("", off))
        };
        return Ok(Time {
            sec: unix,
            nsec,
            loc,
        });
    }
    if let Some(name) = zone_name {
        // The abbreviation of the default location at (about) that time?
        let guess = wall - default_loc.lookup(wall).1 as i64;
        let (abbr, off) = default_loc.lookup(guess);
        if abbr == name {
            return Ok(Time {
                sec: wall - off as i64,
                nsec,
                loc: default_loc.clone(),
            });
        }
        if name == "GMT" {
            return Ok(Time {
                sec: wall,
                nsec,
                loc: Arc::new(Location::fixed("GMT", 0)),
            });
        }
        return Ok(Time {
            sec: wall,
            nsec,
            loc: Arc::new(Location::fixed(&name, 0)),
        });
    }
    Ok(Time {
        sec: default_loc.unix_of_wall(wall),
        nsec,
        loc: default_loc.clone(),
    })
}
