//! Output assembly: source + sorted edits (+ type-call insertions + prelude) → plain Lua.
//!
//! Invariant: the output has exactly the line breaks of the input, in the same places relative
//! to the surrounding code, so every token keeps its line number. Blank edits keep `\n`/`\r`
//! bytes and turn every other byte into a space; replacements and insertions never contain a line
//! break (a rewritten quoted string cannot span lines except through `\`-newline escapes, which
//! the rewrite copies verbatim); the prelude is prepended to line 1 without a line break.

/// One change to the source.
#[derive(Clone, Debug)]
pub(crate) enum Edit {
    /// Spaces over `[start, end)`, keeping line breaks; with `semi`, the first byte becomes `;`.
    Blank { start: u32, end: u32, semi: bool },
    /// Replace `[start, end)` with `text`.
    Replace { start: u32, end: u32, text: Vec<u8> },
    /// Insert `text` before byte `at`.
    Insert { at: u32, text: &'static str },
}

impl Edit {
    fn start(&self) -> u32 {
        match self {
            Edit::Blank { start, .. } | Edit::Replace { start, .. } => *start,
            Edit::Insert { at, .. } => *at,
        }
    }
}

/// Reference inserted before a callee that resolves to a run-time type.
pub(crate) const TYPE_TABLE_PREFIX: &str = "__wippy_T.";

/// Apply `edits` (sorted by start, non-overlapping) after `prelude`.
pub(crate) fn assemble(src: &[u8], prelude: &[u8], edits: &[Edit]) -> Vec<u8> {
    // Slack for rewritten method calls (`X:is(v)` grows by ~20 bytes).
    let mut out = Vec::with_capacity(src.len() + src.len() / 32 + prelude.len() + 16);
    out.extend_from_slice(prelude);
    let mut pos = 0usize;
    for e in edits {
        let start = e.start() as usize;
        debug_assert!(start >= pos, "edits must be sorted and disjoint");
        out.extend_from_slice(&src[pos..start]);
        match e {
            Edit::Blank { start, end, semi } => {
                let (s, e) = (*start as usize, *end as usize);
                let first = out.len();
                out.extend(
                    src[s..e]
                        .iter()
                        .map(|&b| if b == b'\n' || b == b'\r' { b } else { b' ' }),
                );
                if *semi
                    && let Some(b) = out.get_mut(first)
                    && *b == b' '
                {
                    *b = b';';
                }
                pos = e;
            }
            Edit::Replace { start, end, text } => {
                out.extend_from_slice(text);
                pos = (*end as usize).max(*start as usize);
            }
            Edit::Insert { text, .. } => {
                out.extend_from_slice(text.as_bytes());
                pos = start;
            }
        }
    }
    out.extend_from_slice(&src[pos..]);
    out
}

/// Sort key of an edit (stable sort keeps insertions before a replacement at the same offset).
pub(crate) fn edit_start(e: &Edit) -> u32 {
    e.start()
}

/// Quote bytes as a single-line Lua string literal (`"..."`, control bytes as `\ddd`).
pub(crate) fn lua_quote(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f | 0x7f => {
                // Three digits when a digit follows, so `\1` + `2` never reads as `\12`.
                let next_digit = s.get(i + 1).is_some_and(u8::is_ascii_digit);
                if next_digit {
                    out.extend_from_slice(format!("\\{b:03}").as_bytes());
                } else {
                    out.extend_from_slice(format!("\\{b}").as_bytes());
                }
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_keeps_line_breaks() {
        let src = b"local x: {\n a: number\r\n} = 1";
        let out = assemble(
            src,
            b"",
            &[Edit::Blank {
                start: 7,
                end: 24,
                semi: false,
            }],
        );
        assert_eq!(out, b"local x   \n          \r\n  = 1");
    }

    #[test]
    fn inserts_and_replacements_in_order() {
        let src = b"a = string(x) .. \"\\d\"";
        let edits = [
            Edit::Insert {
                at: 4,
                text: TYPE_TABLE_PREFIX,
            },
            Edit::Replace {
                start: 17,
                end: 21,
                text: b"\"d\"".to_vec(),
            },
        ];
        let out = assemble(src, b"P;", &edits);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "P;a = __wippy_T.string(x) .. \"d\""
        );
    }

    #[test]
    fn semi_blank() {
        let out = assemble(
            b"type X = Y\nz()",
            b"",
            &[Edit::Blank {
                start: 0,
                end: 10,
                semi: true,
            }],
        );
        assert_eq!(out, b";         \nz()");
    }

    #[test]
    fn quoting() {
        let mut out = Vec::new();
        lua_quote(b"a\"b\\c\nd\x01e\x012", &mut out);
        assert_eq!(out, b"\"a\\\"b\\\\c\\nd\\1e\\0012\"");
    }
}
