//! Time zones: Go-compatible `Location`s loaded from the system zone database.
//!
//! A [`Location`] is either a fixed offset or a zone parsed from a TZif file under
//! `/usr/share/zoneinfo` (or `$ZONEINFO`): the transition table (64-bit section when present)
//! plus the POSIX TZ rule of the footer, used for instants after the last transition (as Go's
//! `time` package does). Loaded zones are cached per OS process.
//!
//! `lookup(unix_sec)` gives the zone abbreviation and UTC offset in force at an instant; the
//! inverse (wall clock → instant) is done by the caller the way Go's `Date` does it: guess
//! with the offset at `wall - offset`, then re-check once.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use wippy_rt::Error;

/// One zone type of a TZif file: offset east of UTC, DST flag, abbreviation.
#[derive(Clone, Debug)]
pub struct ZoneType {
    /// Seconds east of UTC.
    pub offset: i32,
    /// Daylight saving flag.
    pub is_dst: bool,
    /// Abbreviation (`CET`, `EST`, `+03`).
    pub abbrev: String,
}

/// A POSIX TZ rule (`CET-1CEST,M3.5.0,M10.5.0/3`).
#[derive(Clone, Debug)]
struct Rule {
    std: ZoneType,
    dst: Option<(ZoneType, RuleDate, i32, RuleDate, i32)>,
}

#[derive(Clone, Copy, Debug)]
enum RuleDate {
    /// `Jn`: day 1..365, Feb 29 never counted.
    Julian(u16),
    /// `n`: zero-based day of year 0..365.
    Day(u16),
    /// `Mm.w.d`: month, week 1..5 (5 = last), weekday 0..6.
    Month(u8, u8, u8),
}

/// A time zone.
#[derive(Debug)]
pub struct Location {
    name: String,
    transitions: Vec<i64>,
    indices: Vec<u8>,
    types: Vec<ZoneType>,
    rule: Option<Rule>,
}

impl Location {
    /// A fixed-offset zone (`time.fixed_zone`, `time.utc`).
    pub fn fixed(name: &str, offset: i32) -> Location {
        Location {
            name: name.to_string(),
            transitions: Vec::new(),
            indices: Vec::new(),
            types: vec![ZoneType {
                offset,
                is_dst: false,
                abbrev: name.to_string(),
            }],
            rule: None,
        }
    }

    /// The zone name (`"UTC"`, `"Local"`, `"Europe/Berlin"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Abbreviation and offset (seconds east of UTC) in force at `unix` seconds.
    pub fn lookup(&self, unix: i64) -> (&str, i32) {
        if self.transitions.is_empty() || unix < self.transitions[0] {
            if self.transitions.is_empty()
                && let Some(r) = &self.rule
            {
                let z = rule_lookup(r, unix);
                return (&z.abbrev, z.offset);
            }
            let z = self.first_std();
            return (&z.abbrev, z.offset);
        }
        let i = self.transitions.partition_point(|&t| t <= unix) - 1;
        if i == self.transitions.len() - 1
            && let Some(r) = &self.rule
        {
            let z = rule_lookup(r, unix);
            return (&z.abbrev, z.offset);
        }
        let z = &self.types[self.indices[i] as usize];
        (&z.abbrev, z.offset)
    }

    fn first_std(&self) -> &ZoneType {
        // Go: the zone used before the first transition is the first non-DST type.
        self.types
            .iter()
            .find(|z| !z.is_dst)
            .unwrap_or(&self.types[0])
    }

    /// The instant of wall-clock seconds `wall` (seconds since the epoch as if UTC) in this
    /// zone, resolving gaps and overlaps like Go's `time.Date`.
    pub fn unix_of_wall(&self, wall: i64) -> i64 {
        let (_, off) = self.lookup(wall);
        let mut unix = wall - off as i64;
        let (_, off2) = self.lookup(unix);
        if off2 != off {
            unix = wall - off2 as i64;
            let (_, off3) = self.lookup(unix);
            if off3 != off2 {
                unix = wall - off as i64;
            }
        }
        unix
    }
}

/// Seconds east of UTC that a rule-based zone uses at `unix`.
fn rule_lookup(r: &Rule, unix: i64) -> &ZoneType {
    let Some((dst, start, start_t, end, end_t)) = &r.dst else {
        return &r.std;
    };
    let days = unix.div_euclid(86400);
    let (year, _, _) = super::civil::civil_from_days(days);
    let y0 = super::civil::days_from_civil(year, 1, 1) * 86400;
    let s = y0 + rule_day(*start, year) * 86400 + *start_t as i64 - r.std.offset as i64;
    let e = y0 + rule_day(*end, year) * 86400 + *end_t as i64 - dst.offset as i64;
    let in_dst = if s < e {
        unix >= s && unix < e
    } else {
        !(unix >= e && unix < s)
    };
    if in_dst { dst } else { &r.std }
}

/// Zero-based day of `year` on which a rule date falls.
fn rule_day(d: RuleDate, year: i64) -> i64 {
    let leap = super::civil::is_leap(year);
    match d {
        RuleDate::Julian(n) => {
            let n = n as i64 - 1;
            if leap && n >= 59 { n + 1 } else { n }
        }
        RuleDate::Day(n) => n as i64,
        RuleDate::Month(m, w, wd) => {
            let first = super::civil::days_from_civil(year, m as i64, 1);
            let y0 = super::civil::days_from_civil(year, 1, 1);
            let first_wd = (first + 4).rem_euclid(7); // 1970-01-01 was a Thursday
            let mut day = (wd as i64 - first_wd).rem_euclid(7) + (w as i64 - 1) * 7;
            let mlen = super::civil::days_in_month(year, m as i64);
            while day >= mlen {
                day -= 7;
            }
            first - y0 + day
        }
    }
}

fn parse_rule(s: &str) -> Option<Rule> {
    let b = s.as_bytes();
    let mut i = 0;
    let std_name = parse_name(b, &mut i)?;
    let std_off = -parse_offset(b, &mut i)?;
    let std = ZoneType {
        offset: std_off,
        is_dst: false,
        abbrev: std_name,
    };
    if i >= b.len() {
        return Some(Rule { std, dst: None });
    }
    let dst_name = parse_name(b, &mut i)?;
    let dst_off = if i < b.len() && b[i] != b',' {
        -parse_offset(b, &mut i)?
    } else {
        std_off + 3600
    };
    let dst = ZoneType {
        offset: dst_off,
        is_dst: true,
        abbrev: dst_name,
    };
    if i >= b.len() {
        // No rule: US rules by POSIX default.
        return Some(Rule {
            std,
            dst: Some((
                dst,
                RuleDate::Month(3, 2, 0),
                7200,
                RuleDate::Month(11, 1, 0),
                7200,
            )),
        });
    }
    if b[i] != b',' {
        return None;
    }
    i += 1;
    let (sd, st) = parse_rule_date(b, &mut i)?;
    if i >= b.len() || b[i] != b',' {
        return None;
    }
    i += 1;
    let (ed, et) = parse_rule_date(b, &mut i)?;
    Some(Rule {
        std,
        dst: Some((dst, sd, st, ed, et)),
    })
}

fn parse_name(b: &[u8], i: &mut usize) -> Option<String> {
    if *i < b.len() && b[*i] == b'<' {
        let end = b[*i..].iter().position(|&c| c == b'>')? + *i;
        let name = String::from_utf8_lossy(&b[*i + 1..end]).into_owned();
        *i = end + 1;
        return Some(name);
    }
    let start = *i;
    while *i < b.len() && b[*i].is_ascii_alphabetic() {
        *i += 1;
    }
    if *i - start < 3 {
        return None;
    }
    Some(String::from_utf8_lossy(&b[start..*i]).into_owned())
}

/// `[+-]hh[:mm[:ss]]` → seconds (POSIX sign: positive = west).
fn parse_offset(b: &[u8], i: &mut usize) -> Option<i32> {
    let mut sign = 1;
    if *i < b.len() && (b[*i] == b'+' || b[*i] == b'-') {
        if b[*i] == b'-' {
            sign = -1;
        }
        *i += 1;
    }
    let mut secs = 0i32;
    for (k, mult) in [3600, 60, 1].iter().enumerate() {
        if k > 0 {
            if *i < b.len() && b[*i] == b':' {
                *i += 1;
            } else {
                break;
            }
        }
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if start == *i {
            return None;
        }
        let n: i32 = std::str::from_utf8(&b[start..*i]).ok()?.parse().ok()?;
        secs += n * mult;
    }
    Some(sign * secs)
}

fn parse_num(b: &[u8], i: &mut usize) -> Option<u16> {
    let start = *i;
    while *i < b.len() && b[*i].is_ascii_digit() {
        *i += 1;
    }
    std::str::from_utf8(&b[start..*i]).ok()?.parse().ok()
}

fn parse_rule_date(b: &[u8], i: &mut usize) -> Option<(RuleDate, i32)> {
    let d = match b.get(*i)? {
        b'J' => {
            *i += 1;
            RuleDate::Julian(parse_num(b, i)?)
        }
        b'M' => {
            *i += 1;
            let m = parse_num(b, i)? as u8;
            if b.get(*i)? != &b'.' {
                return None;
            }
            *i += 1;
            let w = parse_num(b, i)? as u8;
            if b.get(*i)? != &b'.' {
                return None;
            }
            *i += 1;
            let d = parse_num(b, i)? as u8;
            RuleDate::Month(m, w, d)
        }
        _ => RuleDate::Day(parse_num(b, i)?),
    };
    let mut t = 7200;
    if *i < b.len() && b[*i] == b'/' {
        *i += 1;
        t = parse_offset(b, i)?;
    }
    Some((d, t))
}

/// Parse a TZif file.
pub fn parse_tzif(name: &str, data: &[u8]) -> Option<Location> {
    fn be32(b: &[u8]) -> i64 {
        i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64
    }
    fn be64(b: &[u8]) -> i64 {
        i64::from_be_bytes(b[..8].try_into().expect("8 bytes"))
    }
    if data.len() < 44 || &data[..4] != b"TZif" {
        return None;
    }
    let version = data[4];
    let counts = |h: &[u8]| -> [usize; 6] {
        let mut c = [0usize; 6];
        for (k, slot) in c.iter_mut().enumerate() {
            *slot = be32(&h[20 + k * 4..]) as usize;
        }
        c
    };
    // counts: isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
    let c1 = counts(data);
    let v1_len = c1[3] * 5 + c1[4] * 6 + c1[5] + c1[2] * 8 + c1[1] + c1[0];
    let (body, c, tsize) = if version >= b'2' && data.len() > 44 + v1_len + 44 {
        let h2 = &data[44 + v1_len..];
        if &h2[..4] != b"TZif" {
            return None;
        }
        (&h2[44..], counts(h2), 8)
    } else {
        (&data[44..], c1, 4)
    };
    let [isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt] = c;
    let need = timecnt * tsize
        + timecnt
        + typecnt * 6
        + charcnt
        + leapcnt * (tsize + 4)
        + isstdcnt
        + isutcnt;
    if body.len() < need || typecnt == 0 {
        return None;
    }
    let mut p = 0;
    let mut transitions = Vec::with_capacity(timecnt);
    for k in 0..timecnt {
        let o = p + k * tsize;
        transitions.push(if tsize == 8 {
            be64(&body[o..])
        } else {
            be32(&body[o..])
        });
    }
    p += timecnt * tsize;
    let indices = body[p..p + timecnt].to_vec();
    p += timecnt;
    let chars = &body[p + typecnt * 6..p + typecnt * 6 + charcnt];
    let mut types = Vec::with_capacity(typecnt);
    for k in 0..typecnt {
        let o = p + k * 6;
        let offset = be32(&body[o..]) as i32;
        let is_dst = body[o + 4] != 0;
        let ai = body[o + 5] as usize;
        let end = chars[ai.min(chars.len())..]
            .iter()
            .position(|&x| x == 0)
            .map_or(chars.len(), |e| ai + e);
        let abbrev = String::from_utf8_lossy(&chars[ai.min(end)..end]).into_owned();
        types.push(ZoneType {
            offset,
            is_dst,
            abbrev,
        });
    }
    if indices.iter().any(|&ix| ix as usize >= typecnt) {
        return None;
    }
    p += typecnt * 6 + charcnt + leapcnt * (tsize + 4) + isstdcnt + isutcnt;
    let rule = if tsize == 8 {
        let footer = &body[p..];
        let text = std::str::from_utf8(footer)
            .ok()
            .map(|s| s.trim_matches('\n'))
            .unwrap_or("");
        if text.is_empty() {
            None
        } else {
            parse_rule(text)
        }
    } else {
        None
    };
    Some(Location {
        name: name.to_string(),
        transitions,
        indices,
        types,
        rule,
    })
}

static UTC: LazyLock<Arc<Location>> = LazyLock::new(|| Arc::new(Location::fixed("UTC", 0)));
static LOCAL: LazyLock<Arc<Location>> = LazyLock::new(|| {
    let from_tz = std::env::var("TZ").ok().filter(|s| !s.is_empty());
    let loc = match from_tz {
        Some(tz) => {
            let tz = tz.trim_start_matches(':').to_string();
            load_file(&tz, "Local").or_else(|| {
                parse_rule(&tz).map(|r| Location {
                    name: "Local".into(),
                    transitions: Vec::new(),
                    indices: Vec::new(),
                    types: vec![r.std.clone()],
                    rule: Some(r),
                })
            })
        }
        None => std::fs::read("/etc/localtime")
            .ok()
            .and_then(|d| parse_tzif("Local", &d)),
    };
    Arc::new(loc.unwrap_or_else(|| Location::fixed("UTC", 0)))
});
static CACHE: LazyLock<Mutex<HashMap<String, Arc<Location>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn zoneinfo_dirs() -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(d) = std::env::var("ZONEINFO") {
        v.push(d);
    }
    v.push("/usr/share/zoneinfo".into());
    v
}

fn load_file(name: &str, as_name: &str) -> Option<Location> {
    if name.starts_with('/') {
        return std::fs::read(name)
            .ok()
            .and_then(|d| parse_tzif(as_name, &d));
    }
    for dir in zoneinfo_dirs() {
        if let Ok(d) = std::fs::read(format!("{dir}/{name}")) {
            return parse_tzif(as_name, &d);
        }
    }
    None
}

/// UTC.
pub fn utc() -> Arc<Location> {
    UTC.clone()
}

/// The local zone (`$TZ`, else `/etc/localtime`, else UTC), named `"Local"` like Go.
pub fn local() -> Arc<Location> {
    LOCAL.clone()
}

/// Go's `time.LoadLocation`: `""`/`"UTC"` → UTC, `"Local"` → local, else the zone database.
/// Errors: `Invalid` for an empty name when called from Lua (checked by the caller), or a
/// name that tries to escape the database; `NotFound` for an unknown zone.
pub fn load(name: &str) -> Result<Arc<Location>, Error> {
    match name {
        "" | "UTC" => return Ok(utc()),
        "Local" => return Ok(local()),
        _ => {}
    }
    if name.contains("..") || name.starts_with('/') || name.contains('\\') {
        return Err(Error::invalid(format!("invalid location name: {name}")));
    }
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = cache.get(name) {
        return Ok(l.clone());
    }
    match load_file(name, name) {
        Some(l) => {
            let l = Arc::new(l);
            cache.insert(name.to_string(), l.clone());
            Ok(l)
        }
        None => Err(Error::not_found(format!("unknown time zone {name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_rule_matches_table() {
        let Ok(berlin) = load("Europe/Berlin") else {
            return;
        };
        // 2024-07-01 12:00 UTC: CEST (+2); 2024-01-15: CET (+1)
        assert_eq!(berlin.lookup(1719835200), ("CEST", 7200));
        assert_eq!(berlin.lookup(1705320000), ("CET", 3600));
        // Far future (beyond the table): the footer rule applies.
        assert_eq!(berlin.lookup(4_102_444_800 + 200 * 86400).1, 7200); // mid-2100
        assert_eq!(berlin.lookup(4_102_444_800).1, 3600); // 2100-01-01
        let r = parse_rule("EST5EDT,M3.2.0,M11.1.0").unwrap();
        assert_eq!(rule_lookup(&r, 1719835200).abbrev, "EDT");
        assert_eq!(rule_lookup(&r, 1705320000).abbrev, "EST");
    }
}
