//! Lexer for the Wippy Lua dialect.
//!
//! The whole chunk is tokenized up front into a `Vec<Token>` (offsets, line, column, flags); the
//! parser then works on the array with free look-ahead and never re-reads bytes except to compare
//! names. Comments and whitespace produce no tokens.
//!
//! Dialect rules implemented here (spec §4.1–4.2, go-lua `compiler/parse/lexer.go`):
//! * Keywords: Lua 5.1's 21 plus `goto` and the type words `fun interface as asserts readonly is
//!   typeof keyof extends`. `type` is an ordinary name.
//! * New tokens: `->`, `?`, `?:`, `!`, `@`, `::`; `::name::` (spaces/tabs allowed around the name,
//!   no newline) is a single label token, any other `::` is the cast operator.
//! * Numbers: decimal integers/floats with optional exponent and `0x` hex integers. Digits are
//!   read greedily the way Lua 5.4 does and anything that is not one of those forms (hex floats,
//!   `p` exponents, `3a`) is a `malformed number`.
//! * Short strings use the 5.1 escape set. `\x`, `\z`, `\u` and unknown escapes keep the character
//!   and drop the backslash; such strings are flagged [`NEEDS_REWRITE`] because Lua 5.4 would read
//!   them differently (or reject them), and the emitter rewrites them.
//! * [`NL_BEFORE`] reproduces go-lua's "newline before this token" flag used by the 5.1
//!   ambiguous-call rule: set when the whitespace directly before the token, after the last
//!   comment, contains a line break (a line comment's own terminating break does not count).
//!
//! Line counting follows Lua: `\n`, `\r`, `\r\n` and `\n\r` each end one line. Columns are 1-based
//! byte offsets within the line.

use super::error::{PResult, RawError, near};

/// Token kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tk {
    Eof,
    Name,
    Number,
    /// Quoted string (`"..."` / `'...'`).
    String,
    /// Long bracket string (`[[...]]`, `[==[...]==]`).
    LongString,
    // Lua keywords.
    And,
    Break,
    Do,
    Else,
    Elseif,
    End,
    False,
    For,
    Function,
    Goto,
    If,
    In,
    Local,
    Nil,
    Not,
    Or,
    Repeat,
    Return,
    Then,
    True,
    Until,
    While,
    // Dialect keywords.
    Fun,
    Interface,
    As,
    Asserts,
    Readonly,
    Is,
    Typeof,
    Keyof,
    Extends,
    // Symbols.
    Plus,
    Minus,
    Star,
    Slash,
    DSlash,
    Percent,
    Caret,
    Hash,
    Amp,
    Tilde,
    Pipe,
    Shl,
    Shr,
    Eq,
    Ne,
    Le,
    Ge,
    Lt,
    Gt,
    Assign,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Semi,
    Colon,
    Comma,
    Dot,
    Concat,
    Dots,
    Arrow,
    Question,
    QColon,
    Bang,
    At,
    DColon,
    /// `::name::` label (the whole text, colons included).
    Label,
}

/// Newline (after the last comment) between the previous token and this one; see module docs.
pub(crate) const NL_BEFORE: u8 = 1;
/// Short string whose escapes mean something else (or are invalid) in Lua 5.4.
pub(crate) const NEEDS_REWRITE: u8 = 2;

/// One token: kind, flags and where it is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub kind: Tk,
    pub flags: u8,
    pub start: u32,
    pub end: u32,
    pub line: u32,
    pub col: u32,
}

impl Token {
    pub(crate) fn text<'s>(&self, src: &'s [u8]) -> &'s [u8] {
        &src[self.start as usize..self.end as usize]
    }
}

/// UTF-8 byte order mark, accepted (as whitespace) at the start of a chunk.
pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Keyword lookup for a name.
fn keyword(s: &[u8]) -> Option<Tk> {
    Some(match s {
        b"and" => Tk::And,
        b"break" => Tk::Break,
        b"do" => Tk::Do,
        b"else" => Tk::Else,
        b"elseif" => Tk::Elseif,
        b"end" => Tk::End,
        b"false" => Tk::False,
        b"for" => Tk::For,
        b"function" => Tk::Function,
        b"goto" => Tk::Goto,
        b"if" => Tk::If,
        b"in" => Tk::In,
        b"local" => Tk::Local,
        b"nil" => Tk::Nil,
        b"not" => Tk::Not,
        b"or" => Tk::Or,
        b"repeat" => Tk::Repeat,
        b"return" => Tk::Return,
        b"then" => Tk::Then,
        b"true" => Tk::True,
        b"until" => Tk::Until,
        b"while" => Tk::While,
        b"fun" => Tk::Fun,
        b"interface" => Tk::Interface,
        b"as" => Tk::As,
        b"asserts" => Tk::Asserts,
        b"readonly" => Tk::Readonly,
        b"is" => Tk::Is,
        b"typeof" => Tk::Typeof,
        b"keyof" => Tk::Keyof,
        b"extends" => Tk::Extends,
        _ => return None,
    })
}

/// Text of a keyword kind (for messages such as `'end' expected`).
pub(crate) fn kind_text(k: Tk) -> &'static str {
    match k {
        Tk::Eof => "<eof>",
        Tk::Name => "<name>",
        Tk::Number => "<number>",
        Tk::String | Tk::LongString => "<string>",
        Tk::And => "and",
        Tk::Break => "break",
        Tk::Do => "do",
        Tk::Else => "else",
        Tk::Elseif => "elseif",
        Tk::End => "end",
        Tk::False => "false",
        Tk::For => "for",
        Tk::Function => "function",
        Tk::Goto => "goto",
        Tk::If => "if",
        Tk::In => "in",
        Tk::Local => "local",
        Tk::Nil => "nil",
        Tk::Not => "not",
        Tk::Or => "or",
        Tk::Repeat => "repeat",
        Tk::Return => "return",
        Tk::Then => "then",
        Tk::True => "true",
        Tk::Until => "until",
        Tk::While => "while",
        Tk::Fun => "fun",
        Tk::Interface => "interface",
        Tk::As => "as",
        Tk::Asserts => "asserts",
        Tk::Readonly => "readonly",
        Tk::Is => "is",
        Tk::Typeof => "typeof",
        Tk::Keyof => "keyof",
        Tk::Extends => "extends",
        Tk::Plus => "+",
        Tk::Minus => "-",
        Tk::Star => "*",
        Tk::Slash => "/",
        Tk::DSlash => "//",
        Tk::Percent => "%",
        Tk::Caret => "^",
        Tk::Hash => "#",
        Tk::Amp => "&",
        Tk::Tilde => "~",
        Tk::Pipe => "|",
        Tk::Shl => "<<",
        Tk::Shr => ">>",
        Tk::Eq => "==",
        Tk::Ne => "~=",
        Tk::Le => "<=",
        Tk::Ge => ">=",
        Tk::Lt => "<",
        Tk::Gt => ">",
        Tk::Assign => "=",
        Tk::LParen => "(",
        Tk::RParen => ")",
        Tk::LBrace => "{",
        Tk::RBrace => "}",
        Tk::LBracket => "[",
        Tk::RBracket => "]",
        Tk::Semi => ";",
        Tk::Colon => ":",
        Tk::Comma => ",",
        Tk::Dot => ".",
        Tk::Concat => "..",
        Tk::Dots => "...",
        Tk::Arrow => "->",
        Tk::Question => "?",
        Tk::QColon => "?:",
        Tk::Bang => "!",
        Tk::At => "@",
        Tk::DColon => "::",
        Tk::Label => "<label>",
    }
}

#[inline]
fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

#[inline]
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

struct Lexer<'a> {
    src: &'a [u8],
    i: usize,
    line: u32,
    line_start: usize,
    toks: Vec<Token>,
}

/// Tokenize a whole chunk. The last token is always [`Tk::Eof`].
pub(crate) fn tokenize(src: &[u8]) -> PResult<Vec<Token>> {
    if src.len() >= u32::MAX as usize {
        return Err(RawError::new(1, 1, "chunk too large".to_owned()));
    }
    let mut lx = Lexer {
        src,
        i: 0,
        line: 1,
        line_start: 0,
        // Typed code runs at about one token per 3–4 bytes; reserving that avoids regrowing
        // (and re-faulting) the largest allocation of a translation.
        toks: Vec::with_capacity(src.len() / 3 + 8),
    };
    lx.run()?;
    Ok(lx.toks)
}

impl<'a> Lexer<'a> {
    #[inline]
    fn peek(&self, off: usize) -> u8 {
        self.src.get(self.i + off).copied().unwrap_or(0)
    }

    #[inline]
    fn at_end(&self, off: usize) -> bool {
        self.i + off >= self.src.len()
    }

    /// Consume one line break at `self.i` (which must be `\n` or `\r`), Lua style.
    #[inline]
    fn newline(&mut self) {
        let b = self.src[self.i];
        self.i += 1;
        if self.i < self.src.len() {
            let c = self.src[self.i];
            if (c == b'\n' || c == b'\r') && c != b {
                self.i += 1;
            }
        }
        self.line += 1;
        self.line_start = self.i;
    }

    #[cold]
    fn err_at(&self, line: u32, start: usize, line_start: usize, msg: String) -> RawError {
        RawError::new(line, (start - line_start + 1) as u32, msg)
    }

    fn push(&mut self, kind: Tk, flags: u8, start: usize, line: u32, line_start: usize) {
        self.toks.push(Token {
            kind,
            flags,
            start: start as u32,
            end: self.i as u32,
            line,
            col: (start - line_start + 1) as u32,
        });
    }

    fn run(&mut self) -> PResult<()> {
        let mut nl = false;
        if self.src.starts_with(UTF8_BOM) {
            // Editors add it; Lua's loadfile skips it. The emitter blanks it in the output.
            self.i = UTF8_BOM.len();
        }
        loop {
            // Whitespace and comments.
            while self.i < self.src.len() {
                match self.src[self.i] {
                    b' ' | b'\t' | 0x0b | 0x0c => self.i += 1,
                    b'\n' | b'\r' => {
                        self.newline();
                        nl = true;
                    }
                    b'-' if self.peek(1) == b'-' => {
                        nl = false;
                        self.comment()?;
                    }
                    _ => break,
                }
            }
            let flags = if nl { NL_BEFORE } else { 0 };
            nl = false;
            let start = self.i;
            let line = self.line;
            let ls = self.line_start;
            if self.i >= self.src.len() {
                self.push(Tk::Eof, flags, start, line, ls);
                return Ok(());
            }
            let b = self.src[self.i];
            if is_name_start(b) {
                self.i += 1;
                while self.i < self.src.len() && is_name_char(self.src[self.i]) {
                    self.i += 1;
                }
                let kind = keyword(&self.src[start..self.i]).unwrap_or(Tk::Name);
                self.push(kind, flags, start, line, ls);
                continue;
            }
            if b.is_ascii_digit() || (b == b'.' && self.peek(1).is_ascii_digit()) {
                self.number(start, line, ls)?;
                self.push(Tk::Number, flags, start, line, ls);
                continue;
            }
            let kind = match b {
                b'"' | b'\'' => {
                    let rewrite = self.short_string(b, start, line, ls)?;
                    self.push(
                        Tk::String,
                        flags | if rewrite { NEEDS_REWRITE } else { 0 },
                        start,
                        line,
                        ls,
                    );
                    continue;
                }
                b'[' => {
                    if let Some(level) = self.long_bracket_level(start, line, ls)? {
                        self.long_string(level, start, line, ls, "string")?;
                        self.push(Tk::LongString, flags, start, line, ls);
                        continue;
                    }
                    self.i += 1;
                    Tk::LBracket
                }
                b'-' => {
                    if self.peek(1) == b'>' {
                        self.i += 2;
                        Tk::Arrow
                    } else {
                        self.i += 1;
                        Tk::Minus
                    }
                }
                b'=' => self.two(b'=', Tk::Eq, Tk::Assign),
                b'~' => self.two(b'=', Tk::Ne, Tk::Tilde),
                b'<' => match self.peek(1) {
                    b'=' => {
                        self.i += 2;
                        Tk::Le
                    }
                    b'<' => {
                        self.i += 2;
                        Tk::Shl
                    }
                    _ => {
                        self.i += 1;
                        Tk::Lt
                    }
                },
                b'>' => match self.peek(1) {
                    b'=' => {
                        self.i += 2;
                        Tk::Ge
                    }
                    b'>' => {
                        self.i += 2;
                        Tk::Shr
                    }
                    _ => {
                        self.i += 1;
                        Tk::Gt
                    }
                },
                b'/' => self.two(b'/', Tk::DSlash, Tk::Slash),
                b'.' => {
                    if self.peek(1) == b'.' {
                        if self.peek(2) == b'.' {
                            self.i += 3;
                            Tk::Dots
                        } else {
                            self.i += 2;
                            Tk::Concat
                        }
                    } else {
                        self.i += 1;
                        Tk::Dot
                    }
                }
                b':' => {
                    if self.peek(1) == b':' {
                        self.i += 2;
                        if self.label_tail() {
                            Tk::Label
                        } else {
                            Tk::DColon
                        }
                    } else {
                        self.i += 1;
                        Tk::Colon
                    }
                }
                b'?' => self.two(b':', Tk::QColon, Tk::Question),
                b'!' => self.one(Tk::Bang),
                b'@' => self.one(Tk::At),
                b'+' => self.one(Tk::Plus),
                b'*' => self.one(Tk::Star),
                b'%' => self.one(Tk::Percent),
                b'^' => self.one(Tk::Caret),
                b'#' => self.one(Tk::Hash),
                b'&' => self.one(Tk::Amp),
                b'|' => self.one(Tk::Pipe),
                b'(' => self.one(Tk::LParen),
                b')' => self.one(Tk::RParen),
                b'{' => self.one(Tk::LBrace),
                b'}' => self.one(Tk::RBrace),
                b']' => self.one(Tk::RBracket),
                b';' => self.one(Tk::Semi),
                b',' => self.one(Tk::Comma),
                _ => {
                    let end = utf8_char_end(self.src, start);
                    return Err(self.err_at(
                        line,
                        start,
                        ls,
                        format!("unexpected symbol {}", near(&self.src[start..end])),
                    ));
                }
            };
            self.push(kind, flags, start, line, ls);
        }
    }

    #[inline]
    fn one(&mut self, k: Tk) -> Tk {
        self.i += 1;
        k
    }

    #[inline]
    fn two(&mut self, second: u8, double: Tk, single: Tk) -> Tk {
        if self.peek(1) == second {
            self.i += 2;
            double
        } else {
            self.i += 1;
            single
        }
    }

    /// After `::`: if `[ \t]* name [ \t]* ::` follows, consume it and return true.
    fn label_tail(&mut self) -> bool {
        let mut j = self.i;
        let s = self.src;
        while j < s.len() && (s[j] == b' ' || s[j] == b'\t') {
            j += 1;
        }
        if j >= s.len() || !is_name_start(s[j]) {
            return false;
        }
        while j < s.len() && is_name_char(s[j]) {
            j += 1;
        }
        while j < s.len() && (s[j] == b' ' || s[j] == b'\t') {
            j += 1;
        }
        if j + 1 < s.len() && s[j] == b':' && s[j + 1] == b':' {
            self.i = j + 2;
            true
        } else {
            false
        }
    }

    /// `--` comment at `self.i`.
    fn comment(&mut self) -> PResult<()> {
        let start = self.i;
        let line = self.line;
        let ls = self.line_start;
        self.i += 2;
        if self.peek(0) == b'[' {
            let save = self.i;
            let mut j = self.i + 1;
            while j < self.src.len() && self.src[j] == b'=' {
                j += 1;
            }
            if j < self.src.len() && self.src[j] == b'[' {
                let level = j - save - 1;
                self.i = j + 1;
                return self.long_body(level, start, line, ls, "comment");
            }
            self.i = save;
        }
        // Line comment: up to and including the line break (go-lua consumes it, which matters for
        // NL_BEFORE).
        while self.i < self.src.len() {
            let b = self.src[self.i];
            if b == b'\n' || b == b'\r' {
                self.newline();
                break;
            }
            self.i += 1;
        }
        Ok(())
    }

    /// At `[`: `Some(level)` for a long bracket opener `[=*[` (consumed), `None` for a plain `[`.
    fn long_bracket_level(&mut self, start: usize, line: u32, ls: usize) -> PResult<Option<usize>> {
        let mut j = self.i + 1;
        while j < self.src.len() && self.src[j] == b'=' {
            j += 1;
        }
        let level = j - self.i - 1;
        if j < self.src.len() && self.src[j] == b'[' {
            self.i = j + 1;
            return Ok(Some(level));
        }
        if level > 0 {
            return Err(self.err_at(
                line,
                start,
                ls,
                format!(
                    "invalid long string delimiter {}",
                    near(&self.src[start..j])
                ),
            ));
        }
        Ok(None)
    }

    fn long_string(
        &mut self,
        level: usize,
        start: usize,
        line: u32,
        ls: usize,
        what: &str,
    ) -> PResult<()> {
        self.long_body(level, start, line, ls, what)
    }

    /// Body of a long string/comment after its opener; consumes through the closer.
    fn long_body(
        &mut self,
        level: usize,
        start: usize,
        line: u32,
        ls: usize,
        what: &str,
    ) -> PResult<()> {
        let _ = (start, ls);
        let s = self.src;
        while self.i < s.len() {
            match s[self.i] {
                b']' => {
                    let mut j = self.i + 1;
                    while j < s.len() && s[j] == b'=' {
                        j += 1;
                    }
                    if j < s.len() && s[j] == b']' && j - self.i - 1 == level {
                        self.i = j + 1;
                        return Ok(());
                    }
                    self.i += 1;
                }
                b'\n' | b'\r' => self.newline(),
                _ => self.i += 1,
            }
        }
        Err(RawError::new(
            self.line,
            (self.i - self.line_start + 1) as u32,
            format!("unfinished long {what} (starting at line {line}) near <eof>"),
        ))
    }

    /// Quoted string starting at `self.i`; returns whether it needs rewriting for Lua 5.4.
    fn short_string(&mut self, quote: u8, start: usize, line: u32, ls: usize) -> PResult<bool> {
        let s = self.src;
        self.i += 1;
        let mut rewrite = false;
        loop {
            if self.i >= s.len() {
                return Err(self.err_at(
                    line,
                    start,
                    ls,
                    format!("unfinished string {}", near(&s[start..self.i])),
                ));
            }
            let b = s[self.i];
            if b == quote {
                self.i += 1;
                return Ok(rewrite);
            }
            match b {
                b'\n' | b'\r' => {
                    return Err(self.err_at(
                        line,
                        start,
                        ls,
                        format!("unfinished string {}", near(&s[start..self.i])),
                    ));
                }
                b'\\' => {
                    let esc_start = self.i;
                    self.i += 1;
                    if self.i >= s.len() {
                        return Err(self.err_at(
                            line,
                            start,
                            ls,
                            format!("unfinished string {}", near(&s[start..self.i])),
                        ));
                    }
                    match s[self.i] {
                        b'a' | b'b' | b'f' | b'n' | b'r' | b't' | b'v' | b'\\' | b'"' | b'\'' => {
                            self.i += 1
                        }
                        b'\n' | b'\r' => self.newline(),
                        d if d.is_ascii_digit() => {
                            let mut v: u32 = 0;
                            let mut n = 0;
                            while n < 3 && self.i < s.len() && s[self.i].is_ascii_digit() {
                                v = v * 10 + u32::from(s[self.i] - b'0');
                                self.i += 1;
                                n += 1;
                            }
                            if v > 255 {
                                return Err(self.err_at(
                                    self.line,
                                    esc_start,
                                    self.line_start,
                                    format!(
                                        "decimal escape too large {}",
                                        near(&s[esc_start..self.i])
                                    ),
                                ));
                            }
                        }
                        _ => {
                            // 5.1 semantics: keep the character, drop the backslash.
                            rewrite = true;
                            self.i = utf8_char_end(s, self.i);
                        }
                    }
                }
                _ => self.i += 1,
            }
        }
    }

    /// Number at `self.i` (already known to start with a digit or `.digit`).
    fn number(&mut self, start: usize, line: u32, ls: usize) -> PResult<()> {
        let s = self.src;
        let mut expo: [u8; 2] = [b'e', b'E'];
        if s[self.i] == b'0' && matches!(self.peek(1), b'x' | b'X') {
            self.i += 2;
            expo = [b'p', b'P'];
        }
        // Greedy read like Lua 5.4's read_numeral, so `3a`/`0x1p4` fail as one malformed token.
        while let Some(&c) = s.get(self.i) {
            if c == expo[0] || c == expo[1] {
                self.i += 1;
                if matches!(s.get(self.i), Some(b'+') | Some(b'-')) {
                    self.i += 1;
                }
            } else if c.is_ascii_hexdigit() || c == b'.' {
                self.i += 1;
            } else {
                break;
            }
        }
        if !self.at_end(0) && is_name_char(self.peek(0)) {
            self.i += 1;
        }
        let text = &s[start..self.i];
        if valid_number(text) {
            Ok(())
        } else {
            Err(self.err_at(line, start, ls, format!("malformed number {}", near(text))))
        }
    }
}

/// Accepted number forms: `0x` hex integers, decimal `d+[.d*][e[+-]d+]` and `.d+[e[+-]d+]`.
fn valid_number(t: &[u8]) -> bool {
    if t.len() > 2 && t[0] == b'0' && (t[1] == b'x' || t[1] == b'X') {
        return t[2..].iter().all(u8::is_ascii_hexdigit);
    }
    let mut i = 0;
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < t.len() && t[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - s
    };
    let int_digits = digits(&mut i);
    let mut frac_digits = 0;
    if i < t.len() && t[i] == b'.' {
        i += 1;
        frac_digits = digits(&mut i);
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if i < t.len() && (t[i] == b'e' || t[i] == b'E') {
        i += 1;
        if i < t.len() && (t[i] == b'+' || t[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == t.len()
}

/// End of the (possibly multi-byte) character starting at `i`; invalid bytes count as one.
fn utf8_char_end(s: &[u8], i: usize) -> usize {
    let b = s[i];
    let len = if b < 0x80 {
        1
    } else if b >> 5 == 0b110 {
        2
    } else if b >> 4 == 0b1110 {
        3
    } else if b >> 3 == 0b11110 {
        4
    } else {
        1
    };
    let end = (i + len).min(s.len());
    if s[i + 1..end].iter().all(|&c| c >> 6 == 0b10) {
        end
    } else {
        i + 1
    }
}

/// Value of a quoted string token (5.1 escape semantics), quotes included in `text`.
pub(crate) fn decode_short_string(text: &[u8]) -> Vec<u8> {
    let body = &text[1..text.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        i += 1;
        let c = body[i];
        match c {
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'\n' | b'\r' => {
                out.push(b'\n');
                if i + 1 < body.len()
                    && (body[i + 1] == b'\n' || body[i + 1] == b'\r')
                    && body[i + 1] != c
                {
                    i += 1;
                }
            }
            d if d.is_ascii_digit() => {
                let mut v: u32 = 0;
                let mut n = 0;
                while n < 3 && i < body.len() && body[i].is_ascii_digit() {
                    v = v * 10 + u32::from(body[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
                continue;
            }
            other => out.push(other),
        }
        i += 1;
    }
    out
}

/// Value of a long bracket string token (`[==[...]==]`), first line break skipped as in Lua.
pub(crate) fn decode_long_string(text: &[u8]) -> Vec<u8> {
    let level = text[1..].iter().take_while(|&&b| b == b'=').count();
    let open = level + 2;
    let mut body = &text[open..text.len() - open];
    if let Some(&b) = body.first()
        && (b == b'\n' || b == b'\r')
    {
        let skip = if body.len() > 1 && (body[1] == b'\n' || body[1] == b'\r') && body[1] != b {
            2
        } else {
            1
        };
        body = &body[skip..];
    }
    body.to_vec()
}

/// Rewrite a quoted string token so that Lua 5.4 reads the value the dialect means: every escape
/// outside the common 5.1/5.4 set loses its backslash (`"\d+"` → `"d+"`, `"\x41"` → `"x41"`).
pub(crate) fn rewrite_short_string(text: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b == b'\\' && i + 1 < text.len() {
            let c = text[i + 1];
            let standard = matches!(
                c,
                b'a' | b'b'
                    | b'f'
                    | b'n'
                    | b'r'
                    | b't'
                    | b'v'
                    | b'\\'
                    | b'"'
                    | b'\''
                    | b'\n'
                    | b'\r'
            ) || c.is_ascii_digit();
            if standard {
                out.push(b);
                out.push(c);
                i += 2;
            } else {
                // Drop the backslash; the character itself is copied on the next iteration.
                i += 1;
            }
            continue;
        }
        out.push(b);
        i += 1;
    }
}

#[cfg(test)]
#[path = "lexer_tests.rs"]
mod tests;
