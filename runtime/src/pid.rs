//! Process identifiers in the original's string form (spec `runtime-internals.md` §1).
//!
//! A PID is `{node, host, uniq}`. Its text form is `{` + (`node@` if node is non-empty) + host +
//! `|` + uniq + `}`; the zero PID renders `{|}`. Parsing accepts the legacy three-part form
//! `{node@host|ns:name|uniq}` (only the text after the second `|` is the uniq id).
//!
//! Equality and hashing use the three fields, never the cached text (the Go original compared
//! the cached string too, which made a pre-rendered and a parsed copy of one PID unequal).
//! A `Pid` is one pointer wide and cheap to clone; the rendered text is cached because every
//! send and every lookup by string uses it.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Kind};

struct Inner {
    /// Canonical rendering: `{node@host|uniq}`.
    text: Box<str>,
    node: (u32, u32),
    host: (u32, u32),
    uniq: (u32, u32),
    /// The uniq id as a number when it has the generated `0x…` form.
    uniq_num: Option<u64>,
}

/// A process identifier.
#[derive(Clone)]
pub struct Pid(Arc<Inner>);

impl Pid {
    /// Build a PID from its three fields.
    pub fn new(node: &str, host: &str, uniq: &str) -> Pid {
        let mut text = String::with_capacity(node.len() + host.len() + uniq.len() + 4);
        text.push('{');
        let node_r = if node.is_empty() {
            (1, 1)
        } else {
            text.push_str(node);
            let r = (1, 1 + node.len() as u32);
            text.push('@');
            r
        };
        let hs = text.len() as u32;
        text.push_str(host);
        let host_r = (hs, text.len() as u32);
        text.push('|');
        let us = text.len() as u32;
        text.push_str(uniq);
        let uniq_r = (us, text.len() as u32);
        text.push('}');
        Pid(Arc::new(Inner {
            text: text.into_boxed_str(),
            node: node_r,
            host: host_r,
            uniq: uniq_r,
            uniq_num: parse_uniq_num(uniq),
        }))
    }

    /// The zero PID (`{|}`), used as "no sender".
    pub fn zero() -> Pid {
        Pid::new("", "", "")
    }

    /// Parse the text form (see the module docs for the exact rules).
    ///
    /// # Errors
    /// Kind `Invalid`, non-retryable, message `invalid pid format: missing braces` or
    /// `invalid pid format: missing pipe`.
    pub fn parse(s: &str) -> Result<Pid, Error> {
        let invalid = |why: &str| {
            Error::new(Kind::INVALID, format!("invalid pid format: {why}"))
                .with_retryable(Some(false))
                .with_detail("pid", s)
        };
        if s.len() < 3 || !s.starts_with('{') || !s.ends_with('}') {
            return Err(invalid("missing braces"));
        }
        let body = &s[1..s.len() - 1];
        let Some(pipe) = body.find('|') else {
            return Err(invalid("missing pipe"));
        };
        let (left, right) = (&body[..pipe], &body[pipe + 1..]);
        let (node, host) = match left.find('@') {
            Some(at) => (&left[..at], &left[at + 1..]),
            None => ("", left),
        };
        let uniq = match right.find('|') {
            Some(p2) => &right[p2 + 1..],
            None => right,
        };
        Ok(Pid::new(node, host, uniq))
    }

    /// The node id (empty = this node).
    pub fn node(&self) -> &str {
        self.slice(self.0.node)
    }
    /// The host id (a registry ID string such as `app:processes`).
    pub fn host(&self) -> &str {
        self.slice(self.0.host)
    }
    /// The unique id (`0x00001`).
    pub fn uniq(&self) -> &str {
        self.slice(self.0.uniq)
    }
    /// The numeric value of a generated uniq id (`0x…`), if it has that form.
    pub fn uniq_num(&self) -> Option<u64> {
        self.0.uniq_num
    }
    /// The canonical text form.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }
    /// True for `{|}`.
    pub fn is_zero(&self) -> bool {
        self.0.text.len() == 3
    }
    /// This PID with a different host (same node and uniq).
    pub fn with_host(&self, host: &str) -> Pid {
        Pid::new(self.node(), host, self.uniq())
    }

    fn slice(&self, r: (u32, u32)) -> &str {
        &self.0.text[r.0 as usize..r.1 as usize]
    }
}

fn parse_uniq_num(uniq: &str) -> Option<u64> {
    let hex = uniq.strip_prefix("0x")?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

impl PartialEq for Pid {
    fn eq(&self, other: &Pid) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.node() == other.node()
                && self.host() == other.host()
                && self.uniq() == other.uniq())
    }
}
impl Eq for Pid {}

impl Hash for Pid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.node().hash(state);
        self.host().hash(state);
        self.uniq().hash(state);
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Render a generated id: `0x` + lowercase hex zero-padded to 5 digits up to `0xFFFFF`, 6 up to
/// `0xFFFFFF`, 8 up to `0xFFFF_FFFF`, else 16.
pub fn format_uniq(n: u64) -> String {
    if n <= 0xF_FFFF {
        format!("0x{n:05x}")
    } else if n <= 0xFF_FFFF {
        format!("0x{n:06x}")
    } else if n <= 0xFFFF_FFFF {
        format!("0x{n:08x}")
    } else {
        format!("0x{n:016x}")
    }
}

/// [`format_uniq`] into a stack buffer (no allocation; the spawn path calls it every time).
fn write_uniq(n: u64, buf: &mut [u8; 18]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = if n <= 0xF_FFFF {
        5
    } else if n <= 0xFF_FFFF {
        6
    } else if n <= 0xFFFF_FFFF {
        8
    } else {
        16
    };
    buf[0] = b'0';
    buf[1] = b'x';
    for i in 0..digits {
        buf[2 + i] = HEX[((n >> (4 * (digits - 1 - i))) & 0xF) as usize];
    }
    std::str::from_utf8(&buf[..2 + digits]).expect("ascii hex")
}

/// The per-runtime PID generator: a counter starting at 1, rendered by [`format_uniq`].
#[derive(Debug)]
pub struct PidGen {
    node: Box<str>,
    counter: AtomicU64,
}

impl PidGen {
    /// A generator stamping `node` on every PID. The node name `"local"` is blanked, as the
    /// original's PIDGen component does.
    pub fn new(node: &str) -> PidGen {
        let node = if node == "local" { "" } else { node };
        PidGen {
            node: node.into(),
            counter: AtomicU64::new(0),
        }
    }
    /// The node id stamped on generated PIDs.
    pub fn node(&self) -> &str {
        &self.node
    }
    /// A fresh PID on `host`.
    pub fn generate(&self, host: &str) -> Pid {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let mut buf = [0u8; 18];
        Pid::new(&self.node, host, write_uniq(n, &mut buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_and_parse() {
        let p = Pid::new("n1", "app:processes", "0x0002a");
        assert_eq!(p.as_str(), "{n1@app:processes|0x0002a}");
        assert_eq!(Pid::parse(p.as_str()).unwrap(), p);
        assert_eq!(p.uniq_num(), Some(0x2a));
        let local = Pid::new("", "app:processes", "0x00001");
        assert_eq!(local.as_str(), "{app:processes|0x00001}");
        assert_eq!(Pid::zero().as_str(), "{|}");
        assert!(Pid::parse("{|}").unwrap().is_zero());
    }

    #[test]
    fn parse_rules() {
        let legacy = Pid::parse("{n@h|ns:name|0x00003}").unwrap();
        assert_eq!(
            (legacy.node(), legacy.host(), legacy.uniq()),
            ("n", "h", "0x00003")
        );
        assert!(
            Pid::parse("x")
                .unwrap_err()
                .message()
                .contains("missing braces")
        );
        assert!(
            Pid::parse("{abc}")
                .unwrap_err()
                .message()
                .contains("missing pipe")
        );
        let e = Pid::parse("{abc").unwrap_err();
        assert_eq!(e.kind(), &Kind::INVALID);
        assert_eq!(e.retryable(), Some(false));
        let odd = Pid::parse("{a@b@c|u}").unwrap();
        assert_eq!((odd.node(), odd.host()), ("a", "b@c"));
    }

    #[test]
    fn uniq_format() {
        assert_eq!(format_uniq(1), "0x00001");
        assert_eq!(format_uniq(0xFFFFF), "0xfffff");
        assert_eq!(format_uniq(0x100000), "0x100000");
        assert_eq!(format_uniq(0x1000000), "0x01000000");
        assert_eq!(format_uniq(0x1_0000_0000), "0x0000000100000000");
        for n in [
            1u64,
            0xFFFFF,
            0x100000,
            0xFFFFFF,
            0x1000000,
            0xFFFF_FFFF,
            0x1_0000_0000,
            u64::MAX,
        ] {
            let mut b = [0u8; 18];
            assert_eq!(write_uniq(n, &mut b), format_uniq(n));
        }
        let g = PidGen::new("local");
        assert_eq!(g.generate("h").as_str(), "{h|0x00001}");
        assert_eq!(g.generate("h").as_str(), "{h|0x00002}");
    }
}
