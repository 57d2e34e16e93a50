//! `uuid` (spec `lua-api.md` §3.8.19): generation, validation, inspection, formatting.
//!
//! Generators: `v1()` (time + random node with the multicast bit set, monotonic within the
//! OS process), `v4()` (random), `v7()` (48-bit Unix milliseconds + random), `v3(ns, name)` /
//! `v5(ns, name)` (MD5 / SHA-1 name-based; `ns` must be a UUID string). They return a string
//! or `nil, err` (`Invalid` for bad arguments, `Internal` if the OS RNG fails).
//!
//! Inspection accepts the forms Go's `uuid.Parse` accepts: standard `8-4-4-4-12`, `{…}`,
//! `urn:uuid:…` and 32 hex digits. `validate(x)` → bool (never errors); `version(u)` →
//! integer; `variant(u)` → `"RFC4122" | "Microsoft" | "NCS" | "Invalid"`; `parse(u)` →
//! `{version, variant, timestamp? (v1/v7, Unix seconds), node? (v1, "aa:bb:cc:dd:ee:ff")}`;
//! `format(u[, "standard" | "simple" | "urn"])`.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use md5::Md5;
use mlua::{Lua, MultiValue, Value};
use sha1::{Digest, Sha1};
use wippy_rt::Kind;

use super::errors::nil_err;
use super::hash::hex;

/// 100-ns intervals between the Gregorian epoch (1582-10-15) and the Unix epoch.
const GREGORIAN_OFFSET: u64 = 0x01B2_1DD2_1381_4000;

/// Fill `buf` from the OS RNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), wippy_rt::Error> {
    getrandom::fill(buf)
        .map_err(|e| wippy_rt::Error::internal(format!("random source failed: {e}")))
}

/// Parse any accepted textual form into 16 bytes.
pub fn parse(s: &str) -> Option<[u8; 16]> {
    let s = s.trim();
    let body = if let Some(rest) = s.strip_prefix("urn:uuid:") {
        rest
    } else if s.len() == 38 && s.starts_with('{') && s.ends_with('}') {
        &s[1..37]
    } else {
        s
    };
    let hexdigits: Vec<u8> = match body.len() {
        36 => {
            let b = body.as_bytes();
            if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
                return None;
            }
            b.iter()
                .enumerate()
                .filter(|(i, _)| ![8, 13, 18, 23].contains(i))
                .map(|(_, c)| *c)
                .collect()
        }
        32 => body.as_bytes().to_vec(),
        _ => return None,
    };
    let mut out = [0u8; 16];
    for (i, pair) in hexdigits.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// The standard `8-4-4-4-12` lowercase form.
pub fn to_standard(u: &[u8; 16]) -> String {
    let h = hex(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn set_version(u: &mut [u8; 16], v: u8) {
    u[6] = (u[6] & 0x0f) | (v << 4);
    u[8] = (u[8] & 0x3f) | 0x80;
}

/// A random (version 4) UUID.
pub fn v4() -> Result<[u8; 16], wippy_rt::Error> {
    let mut u = [0u8; 16];
    random_bytes(&mut u)?;
    set_version(&mut u, 4);
    Ok(u)
}

fn now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A time-ordered (version 7) UUID.
pub fn v7() -> Result<[u8; 16], wippy_rt::Error> {
    let mut u = [0u8; 16];
    random_bytes(&mut u[6..])?;
    let ms = now().as_millis() as u64;
    u[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    set_version(&mut u, 7);
    Ok(u)
}

/// Last v1 timestamp handed out, to keep v1 UUIDs unique within the OS process.
static V1_LAST: Mutex<u64> = Mutex::new(0);

/// A time-based (version 1) UUID with a random node.
pub fn v1() -> Result<[u8; 16], wippy_rt::Error> {
    let d = now();
    let mut ts = d.as_secs() * 10_000_000 + (d.subsec_nanos() / 100) as u64 + GREGORIAN_OFFSET;
    {
        let mut last = V1_LAST.lock().unwrap_or_else(|e| e.into_inner());
        if ts <= *last {
            ts = *last + 1;
        }
        *last = ts;
    }
    let mut u = [0u8; 16];
    random_bytes(&mut u[8..])?;
    u[0..4].copy_from_slice(&((ts & 0xffff_ffff) as u32).to_be_bytes());
    u[4..6].copy_from_slice(&(((ts >> 32) & 0xffff) as u16).to_be_bytes());
    u[6..8].copy_from_slice(&(((ts >> 48) & 0x0fff) as u16).to_be_bytes());
    u[10] |= 0x01; // random node: multicast bit set (RFC 4122 §4.5)
    set_version(&mut u, 1);
    Ok(u)
}

/// A name-based UUID (version 3 = MD5, 5 = SHA-1).
pub fn name_based(ns: &[u8; 16], name: &[u8], version: u8) -> [u8; 16] {
    let digest: Vec<u8> = if version == 3 {
        let mut h = Md5::new();
        h.update(ns);
        h.update(name);
        h.finalize().to_vec()
    } else {
        let mut h = Sha1::new();
        h.update(ns);
        h.update(name);
        h.finalize().to_vec()
    };
    let mut u = [0u8; 16];
    u.copy_from_slice(&digest[..16]);
    set_version(&mut u, version);
    u
}

fn variant(u: &[u8; 16]) -> &'static str {
    match u[8] {
        b if b & 0x80 == 0 => "NCS",
        b if b & 0xc0 == 0x80 => "RFC4122",
        b if b & 0xe0 == 0xc0 => "Microsoft",
        _ => "Invalid",
    }
}

fn timestamp(u: &[u8; 16]) -> Option<i64> {
    match u[6] >> 4 {
        1 => {
            let low = u32::from_be_bytes([u[0], u[1], u[2], u[3]]) as u64;
            let mid = u16::from_be_bytes([u[4], u[5]]) as u64;
            let hi = (u16::from_be_bytes([u[6], u[7]]) & 0x0fff) as u64;
            let ts = (hi << 48) | (mid << 32) | low;
            Some((ts as i64 - GREGORIAN_OFFSET as i64).div_euclid(10_000_000))
        }
        7 => {
            let mut ms = [0u8; 8];
            ms[2..].copy_from_slice(&u[..6]);
            Some((u64::from_be_bytes(ms) / 1000) as i64)
        }
        _ => None,
    }
}

fn str_arg(args: &MultiValue, i: usize) -> Option<String> {
    match args.get(i) {
        Some(Value::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    }
}

fn ret_str(lua: &Lua, s: String) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![Value::String(
        lua.create_string(s)?,
    )]))
}

fn gen_result(lua: &Lua, r: Result<[u8; 16], wippy_rt::Error>) -> mlua::Result<MultiValue> {
    match r {
        Ok(u) => ret_str(lua, to_standard(&u)),
        Err(e) => super::errors::nil_error(lua, e),
    }
}

fn parsed_arg(lua: &Lua, args: &MultiValue) -> Result<[u8; 16], mlua::Result<MultiValue>> {
    match str_arg(args, 0).as_deref().and_then(parse) {
        Some(u) => Ok(u),
        None => Err(nil_err(lua, Kind::INVALID, "invalid UUID format")),
    }
}

fn name_based_fn(lua: &Lua, version: u8) -> mlua::Result<mlua::Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let Some(ns) = str_arg(&args, 0).as_deref().and_then(parse) else {
            return nil_err(lua, Kind::INVALID, "invalid namespace UUID");
        };
        let Some(Value::String(name)) = args.get(1) else {
            return nil_err(lua, Kind::INVALID, "name must be a string");
        };
        ret_str(
            lua,
            to_standard(&name_based(&ns, &name.as_bytes(), version)),
        )
    })
}

/// The `uuid` module table.
pub fn build(lua: &Lua) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(0, 10)?;
    t.raw_set(
        "v1",
        lua.create_function(|lua, _: MultiValue| gen_result(lua, v1()))?,
    )?;
    t.raw_set(
        "v4",
        lua.create_function(|lua, _: MultiValue| gen_result(lua, v4()))?,
    )?;
    t.raw_set(
        "v7",
        lua.create_function(|lua, _: MultiValue| gen_result(lua, v7()))?,
    )?;
    t.raw_set("v3", name_based_fn(lua, 3)?)?;
    t.raw_set("v5", name_based_fn(lua, 5)?)?;
    t.raw_set(
        "validate",
        lua.create_function(|_, args: MultiValue| {
            Ok(str_arg(&args, 0).as_deref().and_then(parse).is_some())
        })?,
    )?;
    t.raw_set(
        "version",
        lua.create_function(|lua, args: MultiValue| match parsed_arg(lua, &args) {
            Ok(u) => Ok(MultiValue::from_vec(vec![Value::Integer(
                (u[6] >> 4) as i64,
            )])),
            Err(r) => r,
        })?,
    )?;
    t.raw_set(
        "variant",
        lua.create_function(|lua, args: MultiValue| match parsed_arg(lua, &args) {
            Ok(u) => ret_str(lua, variant(&u).to_string()),
            Err(r) => r,
        })?,
    )?;
    t.raw_set(
        "parse",
        lua.create_function(|lua, args: MultiValue| {
            let u = match parsed_arg(lua, &args) {
                Ok(u) => u,
                Err(r) => return r,
            };
            let out = lua.create_table_with_capacity(0, 4)?;
            out.raw_set("version", (u[6] >> 4) as i64)?;
            out.raw_set("variant", variant(&u))?;
            if let Some(ts) = timestamp(&u) {
                out.raw_set("timestamp", ts)?;
            }
            if u[6] >> 4 == 1 {
                let node: Vec<String> = u[10..].iter().map(|b| format!("{b:02x}")).collect();
                out.raw_set("node", node.join(":"))?;
            }
            Ok(MultiValue::from_vec(vec![Value::Table(out)]))
        })?,
    )?;
    t.raw_set(
        "format",
        lua.create_function(|lua, args: MultiValue| {
            let u = match parsed_arg(lua, &args) {
                Ok(u) => u,
                Err(r) => return r,
            };
            let std = to_standard(&u);
            match str_arg(&args, 1).as_deref().unwrap_or("standard") {
                "standard" => ret_str(lua, std),
                "simple" => ret_str(lua, hex(&u)),
                "urn" => ret_str(lua, format!("urn:uuid:{std}")),
                other => nil_err(lua, Kind::INVALID, format!("unknown format: {other}")),
            }
        })?,
    )?;
    Ok(Value::Table(t))
}
