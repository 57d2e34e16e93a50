//! `os` — the restricted subset upstream keeps (spec `lua-api.md` §3.3).
//!
//! `os.time([tbl])` → integral Unix seconds (the table's `year month day hour min sec` are a
//! local wall-clock time; missing date parts default to today, missing time parts to 0;
//! out-of-range values are normalised); `os.date([fmt[, t]])` (strftime conversions, `"*t"`
//! returns a table, a leading `!` means UTC; default format `"%c"`); `os.clock()` →
//! **wall-clock** seconds since the runtime started (not CPU time); `os.difftime(t2, t1)`;
//! `os.platform = "wippy"`. Results are integers where integral (upstream returns integral
//! floats; only `math.type` can tell). Everything else of the stock `os` library is absent.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use mlua::{Lua, MultiValue, Table, Value};

use super::time::layout::{self, Parts};
use super::time::{Time, zone};
use crate::lua::vm::raise;

/// When the runtime started (first use of the `os` module or [`init_clock`]).
static START: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Pin the `os.clock()` origin (call at runtime start-up).
pub fn init_clock() {
    LazyLock::force(&START);
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
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

fn strftime(fmt: &str, p: &Parts) -> Result<String, String> {
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut it = fmt.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = it.next() else {
            return Err("invalid conversion specifier '%'".into());
        };
        let h12 = match p.hour % 12 {
            0 => 12,
            h => h,
        };
        match spec {
            'a' => out.push_str(&DAYS[p.wday as usize][..3]),
            'A' => out.push_str(DAYS[p.wday as usize]),
            'b' | 'h' => out.push_str(&MONTHS[(p.month - 1) as usize][..3]),
            'B' => out.push_str(MONTHS[(p.month - 1) as usize]),
            'c' => out.push_str(&format!(
                "{} {} {:>2} {:02}:{:02}:{:02} {}",
                &DAYS[p.wday as usize][..3],
                &MONTHS[(p.month - 1) as usize][..3],
                p.day,
                p.hour,
                p.min,
                p.sec,
                p.year
            )),
            'C' => out.push_str(&format!("{:02}", p.year / 100)),
            'd' => out.push_str(&format!("{:02}", p.day)),
            'D' => out.push_str(&format!("{:02}/{:02}/{:02}", p.month, p.day, p.year % 100)),
            'e' => out.push_str(&format!("{:>2}", p.day)),
            'F' => out.push_str(&format!("{}-{:02}-{:02}", p.year, p.month, p.day)),
            'H' => out.push_str(&format!("{:02}", p.hour)),
            'I' => out.push_str(&format!("{h12:02}")),
            'j' => out.push_str(&format!("{:03}", p.yday)),
            'm' => out.push_str(&format!("{:02}", p.month)),
            'M' => out.push_str(&format!("{:02}", p.min)),
            'n' => out.push('\n'),
            'p' => out.push_str(if p.hour >= 12 { "PM" } else { "AM" }),
            'r' => out.push_str(&format!(
                "{h12:02}:{:02}:{:02} {}",
                p.min,
                p.sec,
                if p.hour >= 12 { "PM" } else { "AM" }
            )),
            'R' => out.push_str(&format!("{:02}:{:02}", p.hour, p.min)),
            'S' => out.push_str(&format!("{:02}", p.sec)),
            't' => out.push('\t'),
            'T' | 'X' => out.push_str(&format!("{:02}:{:02}:{:02}", p.hour, p.min, p.sec)),
            'u' => out.push_str(&(if p.wday == 0 { 7 } else { p.wday }).to_string()),
            'w' => out.push_str(&p.wday.to_string()),
            'x' => out.push_str(&format!("{:02}/{:02}/{:02}", p.month, p.day, p.year % 100)),
            'y' => out.push_str(&format!("{:02}", p.year.rem_euclid(100))),
            'Y' => out.push_str(&p.year.to_string()),
            'z' => {
                let o = p.offset;
                let sign = if o < 0 { '-' } else { '+' };
                let a = o.unsigned_abs();
                out.push_str(&format!("{sign}{:02}{:02}", a / 3600, (a / 60) % 60));
            }
            'Z' => out.push_str(&p.abbrev),
            '%' => out.push('%'),
            other => return Err(format!("invalid conversion specifier '%{other}'")),
        }
    }
    Ok(out)
}

fn field(t: &Table, k: &str) -> mlua::Result<Option<i64>> {
    Ok(match t.raw_get::<Value>(k)? {
        Value::Integer(i) => Some(i),
        Value::Number(f) if f.is_finite() => Some(f.trunc() as i64),
        Value::String(s) => s.to_str()?.trim().parse().ok(),
        _ => None,
    })
}

fn os_time(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let now = Time::now();
    let secs = match args.front() {
        None | Some(Value::Nil) => now.sec,
        Some(Value::Table(t)) => {
            let today = layout::parts(&now);
            let y = field(t, "year")?.unwrap_or(today.year);
            let mo = field(t, "month")?.unwrap_or(today.month);
            let d = field(t, "day")?.unwrap_or(today.day);
            let h = field(t, "hour")?.unwrap_or(0);
            let mi = field(t, "min")?.unwrap_or(0);
            let s = field(t, "sec")?.unwrap_or(0);
            Time::date(y, mo, d, h, mi, s, 0, zone::local()).sec
        }
        Some(other) => {
            return raise::raise_msg(
                lua,
                format!(
                    "bad argument #1 to 'time' (table expected, got {})",
                    other.type_name()
                ),
            );
        }
    };
    Ok(MultiValue::from_vec(vec![Value::Integer(secs)]))
}

fn os_date(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let fmt = match args.front() {
        None | Some(Value::Nil) => "%c".to_string(),
        Some(Value::String(s)) => s.to_string_lossy(),
        Some(other) => {
            return raise::raise_msg(
                lua,
                format!(
                    "bad argument #1 to 'date' (string expected, got {})",
                    other.type_name()
                ),
            );
        }
    };
    let sec = match args.get(1) {
        None | Some(Value::Nil) => Time::now().sec,
        Some(Value::Integer(i)) => *i,
        Some(Value::Number(f)) if f.is_finite() => f.trunc() as i64,
        Some(other) => {
            return raise::raise_msg(
                lua,
                format!(
                    "bad argument #2 to 'date' (number expected, got {})",
                    other.type_name()
                ),
            );
        }
    };
    let (fmt, loc): (&str, Arc<zone::Location>) = match fmt.strip_prefix('!') {
        Some(f) => (f, zone::utc()),
        None => (fmt.as_str(), zone::local()),
    };
    let p = layout::parts(&Time { sec, nsec: 0, loc });
    if fmt.starts_with("*t") {
        let t = lua.create_table_with_capacity(0, 9)?;
        t.raw_set("year", p.year)?;
        t.raw_set("month", p.month)?;
        t.raw_set("day", p.day)?;
        t.raw_set("hour", p.hour)?;
        t.raw_set("min", p.min)?;
        t.raw_set("sec", p.sec)?;
        t.raw_set("wday", p.wday + 1)?;
        t.raw_set("yday", p.yday)?;
        t.raw_set("isdst", false)?;
        return Ok(MultiValue::from_vec(vec![Value::Table(t)]));
    }
    match strftime(fmt, &p) {
        Ok(s) => Ok(MultiValue::from_vec(vec![Value::String(
            lua.create_string(s)?,
        )])),
        Err(e) => raise::raise_msg(lua, format!("bad argument #1 to 'date' ({e})")),
    }
}

/// The `os` table.
pub fn build(lua: &Lua) -> mlua::Result<Value> {
    init_clock();
    let t = lua.create_table_with_capacity(0, 5)?;
    t.raw_set("time", raise::function(lua, os_time)?)?;
    t.raw_set("date", raise::function(lua, os_date)?)?;
    t.raw_set(
        "clock",
        lua.create_function(|_, ()| Ok(START.elapsed().as_secs_f64()))?,
    )?;
    t.raw_set(
        "difftime",
        lua.create_function(|_, (a, b): (f64, Option<f64>)| Ok(a - b.unwrap_or(0.0)))?,
    )?;
    t.raw_set("platform", "wippy")?;
    Ok(Value::Table(t))
}
