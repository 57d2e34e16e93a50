//! `time` (spec `lua-api.md` §3.8.1): the pure part — durations, Time, Location, layouts.
//!
//! - Durations are nanoseconds. A duration *argument* ([`duration_arg`]) is a number (integer
//!   or float, truncated), a Go duration string (`"1h30m"`, `"1.5s"`) or a Duration object;
//!   anything else is `Invalid`.
//! - [`Time`] is an instant (Unix seconds + nanoseconds) with a [`zone::Location`]; wall-clock
//!   fields are computed in that location with the system zone database
//!   (`/usr/share/zoneinfo`). Formatting/parsing use Go reference layouts ([`layout`]).
//! - Numbers produced by the module are integers where integral (upstream returns integral
//!   floats: observably identical except for `math.type`, as the spec allows), floats for
//!   fractional accessors (`d:seconds()`).
//!
//! The blocking members (`sleep`, `after`, `timer`, `ticker`) belong to the process engine,
//! which adds them with `modules::extend_module("time", ...)`, reusing [`duration_arg`] and
//! [`time_value`].

pub use crate::civil;
pub mod duration;
pub mod layout;
pub mod zone;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mlua::{Lua, MetaMethod, MultiValue, UserData, UserDataMethods, Value};
use wippy_rt::{Error, Kind};

use super::errors::{nil_err, nil_error};
use crate::lua::vm::raise;
use zone::Location;

/// Unix seconds of Go's zero time (January 1, year 1, 00:00:00 UTC).
pub const ZERO_UNIX: i64 = -62_135_596_800;
const NS: i64 = 1_000_000_000;

/// An instant with a location (Go's `time.Time`).
#[derive(Clone, Debug)]
pub struct Time {
    /// Unix seconds.
    pub sec: i64,
    /// Nanoseconds within the second, 0..1e9.
    pub nsec: u32,
    /// Location used for wall-clock fields and formatting.
    pub loc: Arc<Location>,
}

impl Time {
    /// The current time in the local zone.
    pub fn now() -> Time {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Time {
            sec: d.as_secs() as i64,
            nsec: d.subsec_nanos(),
            loc: zone::local(),
        }
    }

    /// Nanoseconds since Go's zero time (exact, i128).
    fn abs_ns(&self) -> i128 {
        (self.sec - ZERO_UNIX) as i128 * NS as i128 + self.nsec as i128
    }

    fn from_abs_ns(ns: i128, loc: Arc<Location>) -> Time {
        let sec = ns.div_euclid(NS as i128) as i64 + ZERO_UNIX;
        Time {
            sec,
            nsec: ns.rem_euclid(NS as i128) as u32,
            loc,
        }
    }

    /// `t + d` nanoseconds.
    pub fn add(&self, d: i64) -> Time {
        Time::from_abs_ns(self.abs_ns() + d as i128, self.loc.clone())
    }

    /// `t - u` in nanoseconds, saturated to the i64 range like Go's `Sub`.
    pub fn sub(&self, u: &Time) -> i64 {
        let d = self.abs_ns() - u.abs_ns();
        d.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// Go's `Date(...)` with normalisation of out-of-range fields.
    #[allow(clippy::too_many_arguments)] // mirrors Go's `time.Date` signature
    pub fn date(
        y: i64,
        mo: i64,
        d: i64,
        h: i64,
        mi: i64,
        s: i64,
        ns: i64,
        loc: Arc<Location>,
    ) -> Time {
        let (y, mo) = civil::norm_month(y, mo);
        let days = civil::days_from_civil(y, mo, 1) as i128 + d as i128 - 1;
        let wall_ns = days * 86400 * NS as i128
            + h as i128 * 3600 * NS as i128
            + mi as i128 * 60 * NS as i128
            + s as i128 * NS as i128
            + ns as i128;
        let wall = wall_ns.div_euclid(NS as i128) as i64;
        let nsec = wall_ns.rem_euclid(NS as i128) as u32;
        Time {
            sec: loc.unix_of_wall(wall),
            nsec,
            loc,
        }
    }

    /// Go's `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
    pub fn go_string(&self) -> String {
        layout::format(self, "2006-01-02 15:04:05.999999999 -0700 MST")
    }
}

/// A Duration object (nanoseconds).
#[derive(Clone, Copy, Debug)]
pub struct Duration(pub i64);

/// A Location object.
#[derive(Clone, Debug)]
pub struct LocationUd(pub Arc<Location>);

/// Nanoseconds of a duration argument (number, Go duration string or Duration object).
pub fn duration_arg(v: &Value) -> Result<i64, Error> {
    match v {
        Value::Integer(i) => Ok(*i),
        Value::Number(f) if f.is_finite() => Ok(f.trunc() as i64),
        Value::String(s) => duration::parse(&s.to_string_lossy()).map_err(Error::invalid),
        Value::UserData(ud) => match ud.borrow::<Duration>() {
            Ok(d) => Ok(d.0),
            Err(_) => Err(Error::invalid(
                "invalid duration: expected number, string or Duration",
            )),
        },
        _ => Err(Error::invalid(
            "invalid duration: expected number, string or Duration",
        )),
    }
}

/// A Lua Time object.
pub fn time_value(lua: &Lua, t: Time) -> mlua::Result<Value> {
    Ok(Value::UserData(lua.create_userdata(t)?))
}

/// The Time inside a Lua value, if it is one.
pub fn time_arg(v: Option<&Value>) -> Option<Time> {
    match v {
        Some(Value::UserData(ud)) => ud.borrow::<Time>().ok().map(|t| t.clone()),
        _ => None,
    }
}

fn loc_arg(v: Option<&Value>) -> Option<Arc<Location>> {
    match v {
        Some(Value::UserData(ud)) => ud.borrow::<LocationUd>().ok().map(|l| l.0.clone()),
        _ => None,
    }
}

fn ret(v: Value) -> MultiValue {
    MultiValue::from_vec(vec![v])
}

impl UserData for Duration {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("nanoseconds", |_, d, ()| Ok(d.0));
        m.add_method("microseconds", |_, d, ()| Ok(d.0 / 1_000));
        m.add_method("milliseconds", |_, d, ()| Ok(d.0 / 1_000_000));
        m.add_method("seconds", |_, d, ()| {
            Ok((d.0 / NS) as f64 + (d.0 % NS) as f64 / 1e9)
        });
        m.add_method("minutes", |_, d, ()| {
            let min = d.0 / (60 * NS);
            Ok(min as f64 + (d.0 % (60 * NS)) as f64 / (60e9))
        });
        m.add_method("hours", |_, d, ()| {
            let h = d.0 / (3600 * NS);
            Ok(h as f64 + (d.0 % (3600 * NS)) as f64 / (3600e9))
        });
        m.add_meta_method(MetaMethod::ToString, |_, d, ()| Ok(duration::format(d.0)));
    }
}

impl UserData for LocationUd {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("string", |_, l, ()| Ok(l.0.name().to_string()));
        m.add_meta_method(MetaMethod::ToString, |_, l, ()| Ok(l.0.name().to_string()));
    }
}

/// A raising method: argument errors raise a clean string (upstream raises there).
fn bad(lua: &Lua, msg: impl AsRef<str>) -> mlua::Result<MultiValue> {
    raise::raise_msg(lua, msg)
}

impl UserData for Time {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("unix", |_, t, ()| Ok(t.sec));
        m.add_method("unix_nano", |_, t, ()| {
            Ok(t.sec.wrapping_mul(NS).wrapping_add(t.nsec as i64))
        });
        m.add_method("date", |_, t, ()| {
            let p = layout::parts(t);
            Ok((p.year, p.month, p.day))
        });
        m.add_method("clock", |_, t, ()| {
            let p = layout::parts(t);
            Ok((p.hour, p.min, p.sec))
        });
        m.add_method("year", |_, t, ()| Ok(layout::parts(t).year));
        m.add_method("month", |_, t, ()| Ok(layout::parts(t).month));
        m.add_method("day", |_, t, ()| Ok(layout::parts(t).day));
        m.add_method("hour", |_, t, ()| Ok(layout::parts(t).hour));
        m.add_method("minute", |_, t, ()| Ok(layout::parts(t).min));
        m.add_method("second", |_, t, ()| Ok(layout::parts(t).sec));
        m.add_method("nanosecond", |_, t, ()| Ok(t.nsec as i64));
        m.add_method("weekday", |_, t, ()| Ok(layout::parts(t).wday));
        m.add_method("year_day", |_, t, ()| Ok(layout::parts(t).yday));
        m.add_method("is_zero", |_, t, ()| Ok(t.sec == ZERO_UNIX && t.nsec == 0));
        m.add_method("format", |_, t, l: mlua::LuaString| {
            Ok(layout::format(t, &l.to_string_lossy()))
        });
        m.add_method("format_rfc3339", |_, t, ()| {
            Ok(layout::format(t, "2006-01-02T15:04:05Z07:00"))
        });
        m.add_method("location", |_, t, ()| Ok(LocationUd(t.loc.clone())));
        m.add_method("utc", |_, t, ()| {
            Ok(Time {
                loc: zone::utc(),
                ..t.clone()
            })
        });
        m.add_method("in_local", |_, t, ()| {
            Ok(Time {
                loc: zone::local(),
                ..t.clone()
            })
        });
        m.add_method("in_location", |lua, t, args: MultiValue| {
            match loc_arg(args.front()) {
                Some(loc) => Ok(ret(time_value(lua, Time { loc, ..t.clone() })?)),
                None => Err(mlua::Error::RuntimeError(
                    "in_location: Location expected".into(),
                )),
            }
        });
        m.add_method("after", |_, t, u: mlua::UserDataRef<Time>| {
            Ok(t.abs_ns() > u.abs_ns())
        });
        m.add_method("before", |_, t, u: mlua::UserDataRef<Time>| {
            Ok(t.abs_ns() < u.abs_ns())
        });
        m.add_method("equal", |_, t, u: mlua::UserDataRef<Time>| {
            Ok(t.abs_ns() == u.abs_ns())
        });
        m.add_method("sub", |_, t, u: mlua::UserDataRef<Time>| {
            Ok(Duration(t.sub(&u)))
        });
        m.add_method("add_date", |_, t, (y, mo, d): (i64, i64, i64)| {
            let p = layout::parts(t);
            Ok(Time::date(
                p.year + y,
                p.month + mo,
                p.day + d,
                p.hour,
                p.min,
                p.sec,
                t.nsec as i64,
                t.loc.clone(),
            ))
        });
        m.add_method("add", |_, t, d: Value| match duration_arg(&d) {
            Ok(ns) => Ok(t.add(ns)),
            Err(e) => Err(mlua::Error::RuntimeError(format!("add: {}", e.message()))),
        });
        m.add_method("round", |_, t, d: mlua::UserDataRef<Duration>| {
            Ok(round(t, d.0, true))
        });
        m.add_method("truncate", |_, t, d: mlua::UserDataRef<Duration>| {
            Ok(round(t, d.0, false))
        });
        m.add_meta_method(MetaMethod::ToString, |_, t, ()| Ok(t.go_string()));
    }
}

/// Go's `Round` (`up == true`) and `Truncate`, relative to the zero time.
fn round(t: &Time, d: i64, up: bool) -> Time {
    if d <= 0 {
        return t.clone();
    }
    let abs = t.abs_ns();
    let r = abs.rem_euclid(d as i128);
    let base = abs - r;
    let out = if up && r + r >= d as i128 {
        base + d as i128
    } else {
        base
    };
    Time::from_abs_ns(out, t.loc.clone())
}

fn int_arg(args: &MultiValue, i: usize) -> Option<i64> {
    match args.get(i) {
        Some(Value::Integer(n)) => Some(*n),
        Some(Value::Number(f)) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
        _ => None,
    }
}

fn date_fn(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let names = ["year", "month", "day", "hour", "min", "sec", "nsec"];
    let mut v = [0i64; 7];
    for (i, name) in names.iter().enumerate() {
        match int_arg(&args, i) {
            Some(n) => v[i] = n,
            None => {
                return bad(
                    lua,
                    format!(
                        "bad argument #{} to 'date' ({name}: integer expected)",
                        i + 1
                    ),
                );
            }
        }
    }
    let loc = match args.get(7) {
        None | Some(Value::Nil) => zone::local(),
        other => match loc_arg(other) {
            Some(l) => l,
            None => return bad(lua, "bad argument #8 to 'date' (Location expected)"),
        },
    };
    Ok(ret(time_value(
        lua,
        Time::date(v[0], v[1], v[2], v[3], v[4], v[5], v[6], loc),
    )?))
}

fn str_arg(args: &MultiValue, i: usize) -> Option<String> {
    match args.get(i) {
        Some(Value::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    }
}

/// The `time` module table.
pub fn build(lua: &Lua) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(0, 64)?;
    for (k, v) in [
        ("NANOSECOND", 1i64),
        ("MICROSECOND", 1_000),
        ("MILLISECOND", 1_000_000),
        ("SECOND", NS),
        ("MINUTE", 60 * NS),
        ("HOUR", 3600 * NS),
    ] {
        t.raw_set(k, v)?;
    }
    for (k, v) in [
        ("RFC3339", "2006-01-02T15:04:05Z07:00"),
        ("RFC3339NANO", "2006-01-02T15:04:05.999999999Z07:00"),
        ("RFC822", "02 Jan 06 15:04 MST"),
        ("RFC822Z", "02 Jan 06 15:04 -0700"),
        ("RFC850", "Monday, 02-Jan-06 15:04:05 MST"),
        ("RFC1123", "Mon, 02 Jan 2006 15:04:05 MST"),
        ("RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700"),
        ("KITCHEN", "3:04PM"),
        ("STAMP", "Jan _2 15:04:05"),
        ("STAMP_MILLI", "Jan _2 15:04:05.000"),
        ("STAMP_MICRO", "Jan _2 15:04:05.000000"),
        ("STAMP_NANO", "Jan _2 15:04:05.000000000"),
        ("DATE_TIME", "2006-01-02 15:04:05"),
        ("DATE_ONLY", "2006-01-02"),
        ("TIME_ONLY", "15:04:05"),
    ] {
        t.raw_set(k, v)?;
    }
    for (i, m) in [
        "JANUARY",
        "FEBRUARY",
        "MARCH",
        "APRIL",
        "MAY",
        "JUNE",
        "JULY",
        "AUGUST",
        "SEPTEMBER",
        "OCTOBER",
        "NOVEMBER",
        "DECEMBER",
    ]
    .iter()
    .enumerate()
    {
        t.raw_set(*m, i as i64 + 1)?;
    }
    for (i, d) in [
        "SUNDAY",
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
    ]
    .iter()
    .enumerate()
    {
        t.raw_set(*d, i as i64)?;
    }
    t.raw_set("utc", LocationUd(zone::utc()))?;
    t.raw_set("localtz", LocationUd(zone::local()))?;
    t.raw_set("now", lua.create_function(|_, ()| Ok(Time::now()))?)?;
    t.raw_set("date", raise::function(lua, date_fn)?)?;
    t.raw_set(
        "unix",
        raise::function(lua, |lua, args| {
            match (int_arg(&args, 0), int_arg(&args, 1)) {
                (Some(s), Some(ns)) => Ok(ret(time_value(
                    lua,
                    Time {
                        sec: s,
                        nsec: 0,
                        loc: zone::local(),
                    }
                    .add(ns),
                )?)),
                _ => bad(
                    lua,
                    "bad argument to 'unix' (sec and nsec integers expected)",
                ),
            }
        })?,
    )?;
    t.raw_set(
        "parse",
        lua.create_function(|lua, args: MultiValue| {
            let (Some(layout_s), Some(value)) = (str_arg(&args, 0), str_arg(&args, 1)) else {
                return nil_err(lua, Kind::INVALID, "layout and value must be strings");
            };
            let loc = loc_arg(args.get(2)).unwrap_or_else(zone::utc);
            match layout::parse(&layout_s, &value, &loc) {
                Ok(t) => Ok(ret(time_value(lua, t)?)),
                Err(e) => nil_err(lua, Kind::INVALID, e),
            }
        })?,
    )?;
    t.raw_set(
        "parse_duration",
        lua.create_function(|lua, args: MultiValue| {
            let v = args.front().cloned().unwrap_or(Value::Nil);
            if matches!(v, Value::Nil | Value::Boolean(_) | Value::Table(_)) {
                return nil_err(
                    lua,
                    Kind::INVALID,
                    "invalid duration: expected number, string or Duration",
                );
            }
            match duration_arg(&v) {
                Ok(ns) => Ok(ret(Value::UserData(lua.create_userdata(Duration(ns))?))),
                Err(e) => nil_error(lua, e),
            }
        })?,
    )?;
    t.raw_set(
        "load_location",
        lua.create_function(|lua, args: MultiValue| {
            let Some(name) = str_arg(&args, 0) else {
                return nil_err(lua, Kind::INVALID, "location name must be a string");
            };
            if name.is_empty() {
                return nil_err(lua, Kind::INVALID, "location name cannot be empty");
            }
            match zone::load(&name) {
                Ok(l) => Ok(ret(Value::UserData(lua.create_userdata(LocationUd(l))?))),
                Err(e) => nil_error(lua, e),
            }
        })?,
    )?;
    t.raw_set(
        "fixed_zone",
        raise::function(lua, |lua, args| {
            match (str_arg(&args, 0), int_arg(&args, 1)) {
                (Some(name), Some(off)) => Ok(ret(Value::UserData(
                    lua.create_userdata(LocationUd(Arc::new(Location::fixed(&name, off as i32))))?,
                ))),
                _ => bad(
                    lua,
                    "bad argument to 'fixed_zone' (name string and offset integer expected)",
                ),
            }
        })?,
    )?;
    Ok(Value::Table(t))
}
