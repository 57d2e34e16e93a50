//! `hash` (spec `lua-api.md` §3.8.20): digests, FNV-1a and HMACs.
//!
//! `md5/sha1/sha256/sha512(data[, raw])` → lowercase hex, or the raw digest bytes when
//! `raw == true`; `fnv32(data)` / `fnv64(data)` → FNV-1a as a number (`fnv64` is returned as a
//! float, like upstream's `LNumber(uint64)`, so values above 2^63 stay positive);
//! `hmac_md5/hmac_sha1/hmac_sha256/hmac_sha512(data, secret[, raw])` — **data first, secret
//! second**. A non-string `data`/`secret` gives `nil, err` (`Invalid`).

use hmac::{Hmac, Mac};
use md5::Md5;
use mlua::{Lua, MultiValue, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use wippy_rt::Kind;

use super::errors::nil_err;

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

fn out(lua: &Lua, digest: &[u8], raw: bool) -> mlua::Result<MultiValue> {
    let s = if raw {
        lua.create_string(digest)?
    } else {
        lua.create_string(hex(digest))?
    };
    Ok(MultiValue::from_vec(vec![Value::String(s)]))
}

fn is_true(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Boolean(true)))
}

fn digest_fn(lua: &Lua, f: fn(&[u8]) -> Vec<u8>) -> mlua::Result<mlua::Function> {
    lua.create_function(move |lua, args: MultiValue| match args.front() {
        Some(Value::String(s)) => out(lua, &f(&s.as_bytes()), is_true(args.get(1))),
        _ => nil_err(lua, Kind::INVALID, "data must be a string"),
    })
}

fn hmac_fn(lua: &Lua, f: fn(&[u8], &[u8]) -> Vec<u8>) -> mlua::Result<mlua::Function> {
    lua.create_function(
        move |lua, args: MultiValue| match (args.front(), args.get(1)) {
            (Some(Value::String(d)), Some(Value::String(k))) => {
                out(lua, &f(&d.as_bytes(), &k.as_bytes()), is_true(args.get(2)))
            }
            (Some(Value::String(_)), _) => nil_err(lua, Kind::INVALID, "secret must be a string"),
            _ => nil_err(lua, Kind::INVALID, "data must be a string"),
        },
    )
}

macro_rules! hmac_of {
    ($t:ty) => {
        |d: &[u8], k: &[u8]| {
            let mut m =
                <Hmac<$t> as Mac>::new_from_slice(k).expect("HMAC accepts keys of any length");
            m.update(d);
            m.finalize().into_bytes().to_vec()
        }
    };
}

/// FNV-1a, 32 bit.
pub fn fnv1a32(b: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for x in b {
        h ^= *x as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// FNV-1a, 64 bit.
pub fn fnv1a64(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for x in b {
        h ^= *x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The `hash` module table.
pub fn build(lua: &Lua) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(0, 10)?;
    t.raw_set("md5", digest_fn(lua, |b| Md5::digest(b).to_vec())?)?;
    t.raw_set("sha1", digest_fn(lua, |b| Sha1::digest(b).to_vec())?)?;
    t.raw_set("sha256", digest_fn(lua, |b| Sha256::digest(b).to_vec())?)?;
    t.raw_set("sha512", digest_fn(lua, |b| Sha512::digest(b).to_vec())?)?;
    t.raw_set("hmac_md5", hmac_fn(lua, hmac_of!(Md5))?)?;
    t.raw_set("hmac_sha1", hmac_fn(lua, hmac_of!(Sha1))?)?;
    t.raw_set("hmac_sha256", hmac_fn(lua, hmac_of!(Sha256))?)?;
    t.raw_set("hmac_sha512", hmac_fn(lua, hmac_of!(Sha512))?)?;
    t.raw_set(
        "fnv32",
        lua.create_function(|lua, args: MultiValue| match args.front() {
            Some(Value::String(s)) => Ok(MultiValue::from_vec(vec![Value::Integer(fnv1a32(
                &s.as_bytes(),
            )
                as i64)])),
            _ => nil_err(lua, Kind::INVALID, "data must be a string"),
        })?,
    )?;
    t.raw_set(
        "fnv64",
        lua.create_function(|lua, args: MultiValue| match args.front() {
            Some(Value::String(s)) => Ok(MultiValue::from_vec(vec![Value::Number(fnv1a64(
                &s.as_bytes(),
            )
                as f64)])),
            _ => nil_err(lua, Kind::INVALID, "data must be a string"),
        })?,
    )?;
    Ok(Value::Table(t))
}
