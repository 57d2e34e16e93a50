//! Syntax errors of the dialect front end.
//!
//! A [`SyntaxError`] always names the chunk, the 1-based line and the 1-based byte column of the
//! offending token, and displays as `chunk:line:col: message`. The message follows the wording of
//! Lua's own parser (`'end' expected (to close 'function' at line 3) near 'x'`,
//! `unexpected symbol near '$'`, `unfinished string near '"abc'`) so that users see the messages
//! they already know, plus a column.

use std::fmt;

/// A rejected chunk: where and why.
///
/// Displays as `chunk:line:col: message`, e.g.
/// `app.api:handler:12:9: '=' expected near 'y'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Chunk name passed to [`translate`](super::translate) (usually the entry ID or file path).
    pub chunk: String,
    /// 1-based line of the offending token (Lua line counting: `\n`, `\r`, `\r\n`, `\n\r`).
    pub line: u32,
    /// 1-based byte column of the offending token within its line.
    pub column: u32,
    /// Lua-style message, usually ending in `near '<token>'`.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.chunk, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for SyntaxError {}

/// Position-only error produced inside the lexer/parser; the chunk name is attached once, at the
/// API boundary, so the hot paths never copy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl RawError {
    #[cold]
    pub(crate) fn new(line: u32, column: u32, message: String) -> Self {
        RawError {
            line,
            column,
            message,
        }
    }

    pub(crate) fn with_chunk(self, chunk: &str) -> SyntaxError {
        SyntaxError {
            chunk: chunk.to_owned(),
            line: self.line,
            column: self.column,
            message: self.message,
        }
    }
}

pub(crate) type PResult<T> = Result<T, RawError>;

/// Render a token for a `near '...'` suffix the way Lua does: the token text (truncated), or
/// `<eof>`; control bytes are shown as `<\N>`.
pub(crate) fn near(text: &[u8]) -> String {
    const MAX: usize = 40;
    if text.is_empty() {
        return "near <eof>".to_owned();
    }
    let mut s = String::with_capacity(text.len().min(MAX) + 8);
    s.push_str("near '");
    let cut = text.len() > MAX;
    let shown = if cut { &text[..MAX] } else { text };
    let mut i = 0;
    while i < shown.len() {
        let b = shown[i];
        if b < 0x20 || b == 0x7f {
            s.push_str(&format!("<\\{b}>"));
            i += 1;
        } else if b < 0x80 {
            s.push(b as char);
            i += 1;
        } else {
            // Copy a whole UTF-8 sequence when valid, else the replacement char.
            let end = (i + 4).min(shown.len());
            let mut done = false;
            for j in (i + 1..=end).rev() {
                if let Ok(chunk) = std::str::from_utf8(&shown[i..j])
                    && chunk.chars().count() == 1
                {
                    s.push_str(chunk);
                    i = j;
                    done = true;
                    break;
                }
            }
            if !done {
                s.push('\u{fffd}');
                i += 1;
            }
        }
    }
    if cut {
        s.push_str("...");
    }
    s.push('\'');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_format() {
        let e = SyntaxError {
            chunk: "a.lua".into(),
            line: 3,
            column: 7,
            message: "x".into(),
        };
        assert_eq!(e.to_string(), "a.lua:3:7: x");
    }

    #[test]
    fn near_rendering() {
        assert_eq!(near(b""), "near <eof>");
        assert_eq!(near(b"end"), "near 'end'");
        assert_eq!(near(b"\x01"), "near '<\\1>'");
        assert_eq!(near("é".as_bytes()), "near 'é'");
        assert_eq!(near(&[0xff]), "near '\u{fffd}'");
        assert!(near(&[b'a'; 100]).ends_with("...'"));
    }
}
