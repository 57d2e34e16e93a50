//! `crypto` (spec `lua-api.md` §3.8.21), built on RustCrypto crates.
//!
//! - `crypto.random.bytes(n)` (1 ≤ n ≤ 1 MiB) → raw bytes; `random.string(n[, charset])`
//!   (default alphanumeric; unbiased rejection sampling); `random.uuid()` → v4 UUID.
//! - `crypto.hmac.sha256(key, data)` / `hmac.sha512(key, data)` → lowercase hex (**key
//!   first**, the opposite of `hash.hmac_*`).
//! - `crypto.encrypt.aes(data, key[, aad])` — AES-GCM with a 16/24/32-byte key, output =
//!   12-byte nonce ‖ ciphertext ‖ 16-byte tag; `encrypt.chacha20(data, key32[, aad])` —
//!   ChaCha20-Poly1305, same layout; `crypto.decrypt.aes/chacha20(blob, key[, aad])`.
//! - `crypto.jwt.encode(claims, key[, alg = "HS256"])` (HS256/384/512; `claims._header`
//!   adds header fields) and `jwt.verify(token, key[, alg[, require_exp = true]])` → claims or
//!   `nil, err` (signature, `alg` mismatch, `exp`/`nbf`). RS256 takes PEM keys: a private key
//!   (PKCS#8 or PKCS#1) to sign; a public key (SPKI or PKCS#1) — or the private key — to
//!   verify. (The `rsa` crate's private-key operations are not constant-time, RUSTSEC-2023-0071:
//!   signing is fine for tokens minted locally, verification uses only the public key.)
//! - `crypto.pbkdf2(password, salt, iterations, key_len[, "sha256" | "sha512"])` → raw bytes.
//! - `crypto.constant_time_compare(a, b)` → bool.
//!
//! Failures return `nil, err`: `Invalid` for bad arguments, keys, tokens or authentication
//! failures, `Internal` if the OS random source fails.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use mlua::{Lua, MultiValue, Table, Value};
use sha2::{Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;
use wippy_rt::{Error, Kind};

use super::errors::{nil_err, nil_error};
use super::hash::hex;
use super::{json, uuid};

type Aes192Gcm = AesGcm<Aes192, aes_gcm::aead::consts::U12>;

/// Largest `random.bytes` / `random.string` request.
const MAX_RANDOM: i64 = 1 << 20;
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const NONCE_LEN: usize = 12;

fn bytes_arg(args: &MultiValue, i: usize) -> Option<Vec<u8>> {
    match args.get(i) {
        Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn int_arg(args: &MultiValue, i: usize) -> Option<i64> {
    match args.get(i) {
        Some(Value::Integer(n)) => Some(*n),
        Some(Value::Number(f)) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
        _ => None,
    }
}

fn ok_bytes(lua: &Lua, b: &[u8]) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        Value::String(lua.create_string(b)?),
        Value::Nil,
    ]))
}

fn random_string(n: usize, charset: &[u8]) -> Result<Vec<u8>, Error> {
    // Rejection sampling over bytes keeps the distribution uniform for any charset size.
    let limit = 256 - (256 % charset.len());
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        uuid::random_bytes(&mut buf)?;
        for &b in &buf {
            if (b as usize) < limit && out.len() < n {
                out.push(charset[b as usize % charset.len()]);
            }
        }
    }
    Ok(out)
}

fn hmac_hex<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> String {
    let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    m.update(data);
    hex(&m.finalize().into_bytes())
}

fn hmac_raw(alg: &str, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    macro_rules! mac {
        ($h:ty) => {{
            let mut m = <Hmac<$h> as KeyInit>::new_from_slice(key)
                .expect("HMAC accepts keys of any length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }};
    }
    Some(match alg {
        "HS256" => mac!(Sha256),
        "HS384" => mac!(Sha384),
        "HS512" => mac!(Sha512),
        _ => return None,
    })
}

/// AES-GCM / ChaCha20-Poly1305 encryption: `nonce ‖ ciphertext ‖ tag`.
pub fn encrypt(cipher: &str, data: &[u8], key: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
    let mut nonce = [0u8; NONCE_LEN];
    uuid::random_bytes(&mut nonce)?;
    let n = Nonce::from_slice(&nonce);
    let payload = Payload { msg: data, aad };
    let ct = match (cipher, key.len()) {
        ("aes", 16) => Aes128Gcm::new_from_slice(key)
            .map_err(bad_key)?
            .encrypt(n, payload),
        ("aes", 24) => Aes192Gcm::new_from_slice(key)
            .map_err(bad_key)?
            .encrypt(n, payload),
        ("aes", 32) => Aes256Gcm::new_from_slice(key)
            .map_err(bad_key)?
            .encrypt(n, payload),
        ("aes", _) => return Err(Error::invalid("AES key must be 16, 24 or 32 bytes")),
        (_, 32) => ChaCha20Poly1305::new_from_slice(key)
            .map_err(bad_key)?
            .encrypt(n, payload),
        _ => return Err(Error::invalid("ChaCha20 key must be 32 bytes")),
    }
    .map_err(|_| Error::internal("encryption failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Inverse of [`encrypt`].
pub fn decrypt(cipher: &str, blob: &[u8], key: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
    if blob.len() < NONCE_LEN + 16 {
        return Err(Error::invalid("ciphertext too short"));
    }
    let (nonce, ct) = blob.split_at(NONCE_LEN);
    let n = Nonce::from_slice(nonce);
    let payload = Payload { msg: ct, aad };
    match (cipher, key.len()) {
        ("aes", 16) => Aes128Gcm::new_from_slice(key)
            .map_err(bad_key)?
            .decrypt(n, payload),
        ("aes", 24) => Aes192Gcm::new_from_slice(key)
            .map_err(bad_key)?
            .decrypt(n, payload),
        ("aes", 32) => Aes256Gcm::new_from_slice(key)
            .map_err(bad_key)?
            .decrypt(n, payload),
        ("aes", _) => return Err(Error::invalid("AES key must be 16, 24 or 32 bytes")),
        (_, 32) => ChaCha20Poly1305::new_from_slice(key)
            .map_err(bad_key)?
            .decrypt(n, payload),
        _ => return Err(Error::invalid("ChaCha20 key must be 32 bytes")),
    }
    .map_err(|_| Error::invalid("decryption failed: authentication error"))
}

#[cold]
fn bad_key<E>(_: E) -> Error {
    Error::invalid("invalid key")
}

fn cipher_fns(lua: &Lua, cipher: &'static str, enc: bool) -> mlua::Result<mlua::Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let (Some(data), Some(key)) = (bytes_arg(&args, 0), bytes_arg(&args, 1)) else {
            return nil_err(lua, Kind::INVALID, "data and key must be strings");
        };
        let aad = bytes_arg(&args, 2).unwrap_or_default();
        let r = if enc {
            encrypt(cipher, &data, &key, &aad)
        } else {
            decrypt(cipher, &data, &key, &aad)
        };
        match r {
            Ok(b) => ok_bytes(lua, &b),
            Err(e) => nil_error(lua, e),
        }
    })
}

fn rsa_private(pem: &[u8]) -> Result<rsa::RsaPrivateKey, Error> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let text = std::str::from_utf8(pem).map_err(|_| Error::invalid("RSA key must be PEM text"))?;
    rsa::RsaPrivateKey::from_pkcs8_pem(text)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(text))
        .map_err(|_| Error::invalid("invalid RSA private key (PEM PKCS#8 or PKCS#1 expected)"))
}

fn rsa_public(pem: &[u8]) -> Result<rsa::RsaPublicKey, Error> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let text = std::str::from_utf8(pem).map_err(|_| Error::invalid("RSA key must be PEM text"))?;
    rsa::RsaPublicKey::from_public_key_pem(text)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(text))
        .or_else(|_| rsa_private(pem).map(|k| k.to_public_key()).map_err(|_| ()))
        .map_err(|_| Error::invalid("invalid RSA public key (PEM SPKI or PKCS#1 expected)"))
}

fn rs256_sign(pem: &[u8], msg: &[u8]) -> Result<Vec<u8>, Error> {
    use rsa::signature::{SignatureEncoding, Signer};
    let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa_private(pem)?);
    Ok(key.sign(msg).to_vec())
}

fn rs256_verify(pem: &[u8], msg: &[u8], sig: &[u8]) -> Result<bool, Error> {
    use rsa::signature::Verifier;
    let key = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(rsa_public(pem)?);
    let Ok(sig) = rsa::pkcs1v15::Signature::try_from(sig) else {
        return Ok(false);
    };
    Ok(key.verify(msg, &sig).is_ok())
}

fn jwt_encode(lua: &Lua, claims: &Table, key: &[u8], alg: &str) -> Result<String, Error> {
    let header = lua.create_table().map_err(lua_err)?;
    header.raw_set("alg", alg).map_err(lua_err)?;
    header.raw_set("typ", "JWT").map_err(lua_err)?;
    let body = lua.create_table().map_err(lua_err)?;
    for pair in claims.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(lua_err)?;
        if matches!(&k, Value::String(s) if s.as_bytes() == b"_header") {
            if let Value::Table(h) = &v {
                for hp in h.pairs::<Value, Value>() {
                    let (hk, hv) = hp.map_err(lua_err)?;
                    header.raw_set(hk, hv).map_err(lua_err)?;
                }
            }
            continue;
        }
        body.raw_set(k, v).map_err(lua_err)?;
    }
    let h = json::encode(&Value::Table(header))?;
    // An empty claims table must still encode as an object.
    let b = if body.raw_len() == 0 && body.pairs::<Value, Value>().next().is_none() {
        "{}".to_string()
    } else {
        json::encode(&Value::Table(body))?
    };
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(h),
        URL_SAFE_NO_PAD.encode(b)
    );
    let sig = if alg == "RS256" {
        rs256_sign(key, signing_input.as_bytes())?
    } else {
        hmac_raw(alg, key, signing_input.as_bytes())
            .ok_or_else(|| Error::invalid(format!("unsupported JWT algorithm: {alg}")))?
    };
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

fn jwt_verify(
    lua: &Lua,
    token: &str,
    key: &[u8],
    alg: Option<&str>,
    require_exp: bool,
) -> Result<Value, Error> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(Error::invalid("invalid token format"));
    }
    let dec = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| Error::invalid("invalid token encoding"))
    };
    let header: serde_json::Value = serde_json::from_slice(&dec(parts[0])?)
        .map_err(|_| Error::invalid("invalid token header"))?;
    let token_alg = header.get("alg").and_then(|a| a.as_str()).unwrap_or("");
    let expected = alg.unwrap_or("HS256");
    if token_alg != expected {
        return Err(Error::invalid(format!(
            "unexpected signing algorithm: {token_alg}"
        )));
    }
    let signing_input = &token[..parts[0].len() + 1 + parts[1].len()];
    let got = dec(parts[2])?;
    let valid = if expected == "RS256" {
        rs256_verify(key, signing_input.as_bytes(), &got)?
    } else {
        let want = hmac_raw(expected, key, signing_input.as_bytes())
            .ok_or_else(|| Error::invalid(format!("unsupported JWT algorithm: {expected}")))?;
        bool::from(want.ct_eq(&got))
    };
    if !valid {
        return Err(Error::invalid("invalid token signature"));
    }
    let claims =
        json::decode(lua, &dec(parts[1])?).map_err(|_| Error::invalid("invalid token claims"))?;
    let Value::Table(t) = &claims else {
        return Err(Error::invalid("invalid token claims"));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let num = |k: &str| -> Option<f64> {
        match t.raw_get::<Value>(k).ok()? {
            Value::Integer(i) => Some(i as f64),
            Value::Number(f) => Some(f),
            _ => None,
        }
    };
    match num("exp") {
        Some(exp) if now >= exp => return Err(Error::invalid("token has expired")),
        None if require_exp => return Err(Error::invalid("token has no expiration")),
        _ => {}
    }
    if let Some(nbf) = num("nbf")
        && now < nbf
    {
        return Err(Error::invalid("token is not valid yet"));
    }
    Ok(claims)
}

#[cold]
fn lua_err(e: mlua::Error) -> Error {
    Error::internal(e.to_string())
}

/// The `crypto` module table.
pub fn build(lua: &Lua) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(0, 8)?;

    let random = lua.create_table_with_capacity(0, 3)?;
    random.raw_set(
        "bytes",
        lua.create_function(|lua, args: MultiValue| match int_arg(&args, 0) {
            Some(n) if (1..=MAX_RANDOM).contains(&n) => {
                let mut b = vec![0u8; n as usize];
                match uuid::random_bytes(&mut b) {
                    Ok(()) => ok_bytes(lua, &b),
                    Err(e) => nil_error(lua, e),
                }
            }
            _ => nil_err(
                lua,
                Kind::INVALID,
                format!("length must be between 1 and {MAX_RANDOM}"),
            ),
        })?,
    )?;
    random.raw_set(
        "string",
        lua.create_function(|lua, args: MultiValue| {
            let n = match int_arg(&args, 0) {
                Some(n) if (1..=MAX_RANDOM).contains(&n) => n as usize,
                _ => {
                    return nil_err(
                        lua,
                        Kind::INVALID,
                        format!("length must be between 1 and {MAX_RANDOM}"),
                    );
                }
            };
            let charset = match bytes_arg(&args, 1) {
                Some(c) if !c.is_empty() && c.len() <= 256 => c,
                Some(_) => {
                    return nil_err(lua, Kind::INVALID, "charset must have 1 to 256 characters");
                }
                None => ALNUM.to_vec(),
            };
            match random_string(n, &charset) {
                Ok(s) => ok_bytes(lua, &s),
                Err(e) => nil_error(lua, e),
            }
        })?,
    )?;
    random.raw_set(
        "uuid",
        lua.create_function(|lua, ()| match uuid::v4() {
            Ok(u) => ok_bytes(lua, uuid::to_standard(&u).as_bytes()),
            Err(e) => nil_error(lua, e),
        })?,
    )?;
    t.raw_set("random", random)?;

    let hm = lua.create_table_with_capacity(0, 2)?;
    hm.raw_set(
        "sha256",
        lua.create_function(|lua, args: MultiValue| {
            match (bytes_arg(&args, 0), bytes_arg(&args, 1)) {
                (Some(k), Some(d)) => ok_bytes(lua, hmac_hex::<Hmac<Sha256>>(&k, &d).as_bytes()),
                _ => nil_err(lua, Kind::INVALID, "key and data must be strings"),
            }
        })?,
    )?;
    hm.raw_set(
        "sha512",
        lua.create_function(|lua, args: MultiValue| {
            match (bytes_arg(&args, 0), bytes_arg(&args, 1)) {
                (Some(k), Some(d)) => ok_bytes(lua, hmac_hex::<Hmac<Sha512>>(&k, &d).as_bytes()),
                _ => nil_err(lua, Kind::INVALID, "key and data must be strings"),
            }
        })?,
    )?;
    t.raw_set("hmac", hm)?;

    let enc = lua.create_table_with_capacity(0, 2)?;
    enc.raw_set("aes", cipher_fns(lua, "aes", true)?)?;
    enc.raw_set("chacha20", cipher_fns(lua, "chacha20", true)?)?;
    t.raw_set("encrypt", enc)?;
    let dec = lua.create_table_with_capacity(0, 2)?;
    dec.raw_set("aes", cipher_fns(lua, "aes", false)?)?;
    dec.raw_set("chacha20", cipher_fns(lua, "chacha20", false)?)?;
    t.raw_set("decrypt", dec)?;

    let jwt = lua.create_table_with_capacity(0, 2)?;
    jwt.raw_set(
        "encode",
        lua.create_function(|lua, args: MultiValue| {
            let Some(Value::Table(claims)) = args.front() else {
                return nil_err(lua, Kind::INVALID, "claims must be a table");
            };
            let Some(key) = bytes_arg(&args, 1) else {
                return nil_err(lua, Kind::INVALID, "key must be a string");
            };
            let alg = match args.get(2) {
                Some(Value::String(s)) => s.to_string_lossy(),
                _ => "HS256".to_string(),
            };
            match jwt_encode(lua, claims, &key, &alg) {
                Ok(tok) => ok_bytes(lua, tok.as_bytes()),
                Err(e) => nil_error(lua, e),
            }
        })?,
    )?;
    jwt.raw_set(
        "verify",
        lua.create_function(|lua, args: MultiValue| {
            let (Some(token), Some(key)) = (bytes_arg(&args, 0), bytes_arg(&args, 1)) else {
                return nil_err(lua, Kind::INVALID, "token and key must be strings");
            };
            let alg = match args.get(2) {
                Some(Value::String(s)) => Some(s.to_string_lossy()),
                _ => None,
            };
            let require_exp = !matches!(args.get(3), Some(Value::Boolean(false)));
            let token = String::from_utf8_lossy(&token).into_owned();
            match jwt_verify(lua, &token, &key, alg.as_deref(), require_exp) {
                Ok(c) => Ok(MultiValue::from_vec(vec![c, Value::Nil])),
                Err(e) => nil_error(lua, e),
            }
        })?,
    )?;
    t.raw_set("jwt", jwt)?;

    t.raw_set(
        "pbkdf2",
        lua.create_function(|lua, args: MultiValue| {
            let (Some(pw), Some(salt)) = (bytes_arg(&args, 0), bytes_arg(&args, 1)) else {
                return nil_err(lua, Kind::INVALID, "password and salt must be strings");
            };
            let iters = match int_arg(&args, 2) {
                Some(n) if n >= 1 && n <= u32::MAX as i64 => n as u32,
                _ => return nil_err(lua, Kind::INVALID, "iterations must be a positive integer"),
            };
            let len = match int_arg(&args, 3) {
                Some(n) if (1..=1024).contains(&n) => n as usize,
                _ => return nil_err(lua, Kind::INVALID, "key length must be between 1 and 1024"),
            };
            let mut out = vec![0u8; len];
            match bytes_arg(&args, 4).as_deref() {
                None | Some(b"sha256") => {
                    pbkdf2::pbkdf2_hmac::<Sha256>(&pw, &salt, iters, &mut out)
                }
                Some(b"sha512") => pbkdf2::pbkdf2_hmac::<Sha512>(&pw, &salt, iters, &mut out),
                Some(_) => {
                    return nil_err(lua, Kind::INVALID, "hash must be \"sha256\" or \"sha512\"");
                }
            }
            ok_bytes(lua, &out)
        })?,
    )?;
    t.raw_set(
        "constant_time_compare",
        lua.create_function(|_, args: MultiValue| {
            Ok(match (bytes_arg(&args, 0), bytes_arg(&args, 1)) {
                (Some(a), Some(b)) => a.len() == b.len() && bool::from(a.ct_eq(&b)),
                _ => false,
            })
        })?,
    )?;
    Ok(Value::Table(t))
}
