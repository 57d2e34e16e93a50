//! The relay node name (spec `runtime-internals.md` §1.3).
//!
//! Resolution order:
//! 1. `relay.node_name` set in the config file or by `--set` (trimmed, non-empty);
//! 2. `WIPPY_NODE_ID`, then `WIPPY_RELAY_NODE_NAME` (trimmed, non-empty);
//! 3. derived: the UUIDv5 (SHA-1, namespace OID) of `"wippy-node:" + host + "\0" + cwd`,
//!    where `host` is `/etc/machine-id` (trimmed) or else the hostname, and `cwd` the absolute
//!    working directory — stable across restarts of one instance, distinct for co-located
//!    instances started from different directories;
//! 4. when neither host identity nor working directory is known: a random UUIDv4.
//!
//! The name is given to the runtime's relay node and PID generator; the generator blanks a
//! node literally named `local`, so such PIDs render without a node prefix.
//!
//! Precedence note: the original treats both env variables as *defaults* that a config-file
//! `relay.node_name` overrides; here the configuration layering already puts the environment
//! above the file (defaults < file < env < `--set`), and this module follows it.

use std::path::Path;

use sha1::{Digest, Sha1};

use crate::config::Config;

/// RFC 4122 namespace for ISO OIDs (`6ba7b812-9dad-11d1-80b4-00c04fd430c8`), as the original.
const NAMESPACE_OID: [u8; 16] = [
    0x6b, 0xa7, 0xb8, 0x12, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
];

/// Resolve the node name from the configuration, the environment and the host.
pub fn resolve(cfg: &Config, env: &[(String, String)], cwd: Option<&Path>) -> String {
    let from_env = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(name) = cfg
        .node_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        && !cfg
            .origin("relay.node_name")
            .is_some_and(|o| o.starts_with("env "))
    {
        return name.to_string();
    }
    if let Some(v) = from_env("WIPPY_NODE_ID").or_else(|| from_env("WIPPY_RELAY_NODE_NAME")) {
        return v;
    }
    derived(
        &host_identity(),
        &cwd.map(|p| p.display().to_string()).unwrap_or_default(),
    )
}

/// The derived name for a host identity and a working directory (empty strings when unknown).
pub fn derived(host: &str, cwd: &str) -> String {
    if host.is_empty() && cwd.is_empty() {
        let mut u = [0u8; 16];
        if getrandom::fill(&mut u).is_err() {
            // No entropy source: fall back to the clock; uniqueness is best effort.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            u.copy_from_slice(&t.to_le_bytes());
        }
        return format_uuid(stamp(u, 4));
    }
    let mut h = Sha1::new();
    h.update(NAMESPACE_OID);
    h.update(b"wippy-node:");
    h.update(host.as_bytes());
    h.update([0u8]);
    h.update(cwd.as_bytes());
    let digest = h.finalize();
    let mut u = [0u8; 16];
    u.copy_from_slice(&digest[..16]);
    format_uuid(stamp(u, 5))
}

/// `/etc/machine-id`, else the hostname, else empty.
pub fn host_identity() -> String {
    if let Ok(s) = std::fs::read_to_string("/etc/machine-id") {
        let s = s.trim();
        if !s.is_empty() {
            return s.to_string();
        }
    }
    hostname().unwrap_or_default()
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is a valid writable buffer of the given length; gethostname writes at most
    // that many bytes and we only read up to the first NUL inside the buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let s = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn stamp(mut u: [u8; 16], version: u8) -> [u8; 16] {
    u[6] = (u[6] & 0x0f) | (version << 4);
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

fn format_uuid(u: [u8; 16]) -> String {
    let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSources;

    #[test]
    fn uuid_v5_matches_rfc_layout() {
        // Known vector: uuid.NewSHA1(NameSpaceOID, "wippy-node:h\x00/d") computed independently
        // with Python's uuid.uuid5(uuid.NAMESPACE_OID, "wippy-node:h\x00/d").
        let a = derived("h", "/d");
        assert_eq!(a, "247abf9c-b45b-50c1-a897-3e6899eb9390");
        assert_eq!(a, derived("h", "/d"), "stable");
        assert_ne!(a, derived("h", "/e"), "distinct per directory");
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "5");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        let r = derived("", "");
        assert_eq!(&r[14..15], "4");
        assert_ne!(r, derived("", ""));
    }

    #[test]
    fn precedence() {
        let env = vec![
            ("WIPPY_RELAY_NODE_NAME".to_string(), "b".to_string()),
            ("WIPPY_NODE_ID".to_string(), "  a  ".to_string()),
        ];
        let plain = Config::defaults();
        assert_eq!(resolve(&plain, &env, None), "a");
        let env2 = vec![
            ("WIPPY_NODE_ID".into(), " ".into()),
            ("WIPPY_RELAY_NODE_NAME".into(), "b".into()),
        ];
        assert_eq!(resolve(&plain, &env2, None), "b");
        let set = Config::load(&ConfigSources {
            sets: vec!["relay.node_name=n1".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(resolve(&set, &env, None), "n1");
        let derived_name = resolve(&plain, &[], Some(Path::new("/srv/app")));
        assert_eq!(derived_name, derived(&host_identity(), "/srv/app"));
    }
}
