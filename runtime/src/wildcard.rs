//! The dotted wildcard pattern language (spec `runtime-internals.md` §8.3).
//!
//! Patterns and subjects are split on `.`:
//! * a pattern without wildcard segments matches by string equality;
//! * the whole pattern `*` matches any non-empty, dot-free subject;
//! * a `*` segment matches exactly one segment, `**` zero or more segments;
//! * a `(a|b|c)` segment matches one segment equal to one of the alternatives.
//!
//! Used by the event bus (system and kind patterns), registry kind handlers
//! (`function.lua.**`) and the `disable` loader stage.
//!
//! ```
//! use wippy_rt::wildcard::Pattern;
//! assert!(Pattern::new("registry.*").matches("registry.create"));
//! assert!(!Pattern::new("registry.*").matches("registry.entry.create"));
//! assert!(Pattern::new("registry.**").matches("registry"));
//! assert!(Pattern::new("factory.(register|delete)").matches("factory.delete"));
//! ```

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Lit(Box<str>),
    One,
    Any,
    Alt(Box<[Box<str>]>),
}

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    source: Box<str>,
    /// `None` = no wildcard segment: exact string comparison.
    segs: Option<Box<[Seg]>>,
}

impl Pattern {
    /// Compile a pattern. Never fails: malformed alternations are treated as literals.
    pub fn new(pattern: &str) -> Pattern {
        let segs: Vec<Seg> = pattern.split('.').map(parse_seg).collect();
        let wild = segs.iter().any(|s| !matches!(s, Seg::Lit(_)));
        Pattern {
            source: pattern.into(),
            segs: wild.then(|| segs.into_boxed_slice()),
        }
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern contains no wildcard segment.
    pub fn is_exact(&self) -> bool {
        self.segs.is_none()
    }

    /// Does `subject` match?
    pub fn matches(&self, subject: &str) -> bool {
        match &self.segs {
            None => *self.source == *subject,
            Some(segs) => {
                if segs.len() == 1 && segs[0] == Seg::One {
                    return !subject.is_empty() && !subject.contains('.');
                }
                let parts: Vec<&str> = if subject.is_empty() {
                    Vec::new()
                } else {
                    subject.split('.').collect()
                };
                match_segs(segs, &parts)
            }
        }
    }
}

/// One-shot convenience: compile and match.
pub fn matches(pattern: &str, subject: &str) -> bool {
    Pattern::new(pattern).matches(subject)
}

fn parse_seg(s: &str) -> Seg {
    match s {
        "*" => Seg::One,
        "**" => Seg::Any,
        _ if s.len() >= 2 && s.starts_with('(') && s.ends_with(')') => {
            Seg::Alt(s[1..s.len() - 1].split('|').map(Into::into).collect())
        }
        _ => Seg::Lit(s.into()),
    }
}

fn match_segs(segs: &[Seg], parts: &[&str]) -> bool {
    let Some((first, rest)) = segs.split_first() else {
        return parts.is_empty();
    };
    match first {
        Seg::Any => (0..=parts.len()).any(|skip| match_segs(rest, &parts[skip..])),
        _ => {
            let Some((p, prest)) = parts.split_first() else {
                return false;
            };
            let ok = match first {
                Seg::Lit(l) => **l == **p,
                Seg::One => true,
                Seg::Alt(alts) => alts.iter().any(|a| **a == **p),
                Seg::Any => unreachable!(),
            };
            ok && match_segs(rest, prest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn table() {
        let cases: &[(&str, &str, bool)] = &[
            ("registry", "registry", true),
            ("registry", "registr", false),
            ("*", "abc", true),
            ("*", "a.b", false),
            ("*", "", false),
            ("registry.*", "registry.create", true),
            ("registry.*", "registry.entry.create", false),
            ("registry.*", "registry", false),
            ("registry.**", "registry", true),
            ("registry.**", "registry.create", true),
            ("registry.**", "registry.entry.create", true),
            ("registry.**", "other.create", false),
            ("**", "", true),
            ("**", "a.b.c", true),
            ("a.**.z", "a.z", true),
            ("a.**.z", "a.b.c.z", true),
            ("a.**.z", "a.b.c", false),
            ("factory.(register|delete)", "factory.register", true),
            ("factory.(register|delete)", "factory.delete", true),
            ("factory.(register|delete)", "factory.update", false),
            ("function.lua.**", "function.lua", true),
            ("function.lua.**", "function.lua.bc", true),
            ("http.*", "http.service", true),
            ("http.*", "http", false),
            ("(registry|supervisor)", "supervisor", true),
            ("(registry|supervisor)", "bus", false),
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a..c", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(matches(p, s), *want, "pattern {p:?} subject {s:?}");
        }
    }
}
