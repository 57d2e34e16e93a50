//! Value expressions: Lua 5.3 operators and precedence, postfix casts (`as`, `::`, `!`), calls,
//! table constructors, and the detection of calls on type names (spec §4.4 `LOADTYPE` shapes).
//!
//! Precedence (Lua 5.4 `lparser.c` priorities): `or` < `and` < comparisons < `|` < `~` < `&` <
//! shifts < `..` (right) < `+ -` < `* / // %` < unary < `^` (right). The casts bind tighter than
//! everything, so they are applied to the operand right after it is parsed and erased in place.

use super::emit::Edit;
use super::error::PResult;
use super::lexer::{NEEDS_REWRITE, NL_BEFORE, Tk};
use super::parser::{CallSite, Ek, MethodCall, Parser, TYPE_METHODS, is_builtin_type_name};

impl<'s> Parser<'s> {
    // ===== expressions =====

    pub(crate) fn exprlist(&mut self) -> PResult<()> {
        self.expr()?;
        while self.accept(Tk::Comma) {
            self.expr()?;
        }
        Ok(())
    }

    pub(crate) fn expr(&mut self) -> PResult<()> {
        self.subexpr(0)
    }

    fn subexpr(&mut self, limit: u8) -> PResult<()> {
        self.enter_level()?;
        match self.kind() {
            Tk::Not | Tk::Minus | Tk::Hash | Tk::Tilde => {
                self.advance();
                self.subexpr(UNARY_PRIORITY)?;
            }
            _ => {
                self.simpleexp()?;
                self.postfix_casts()?;
            }
        }
        while let Some((left, right)) = binary_priority(self.kind()) {
            if left <= limit {
                break;
            }
            self.advance();
            self.subexpr(right)?;
        }
        self.leave_level();
        Ok(())
    }

    /// `e as T`, `e :: T`, `e!` — bind tighter than every operator; erased to `e`.
    fn postfix_casts(&mut self) -> PResult<()> {
        loop {
            match self.kind() {
                Tk::As | Tk::DColon => {
                    let start = self.tok().start;
                    self.advance();
                    self.silent(|p| p.cast_type().map(drop))?;
                    let end = self.prev_end();
                    self.erase(start, end, false);
                }
                Tk::Bang => {
                    let t = self.tok();
                    self.advance();
                    self.erase(t.start, t.end, false);
                }
                _ => return Ok(()),
            }
        }
    }

    fn simpleexp(&mut self) -> PResult<()> {
        match self.kind() {
            Tk::Number | Tk::Nil | Tk::True | Tk::False | Tk::Dots => self.advance(),
            Tk::String | Tk::LongString => self.string_token(),
            Tk::LBrace => self.table()?,
            Tk::Function => {
                let line = self.tok().line;
                self.advance();
                self.funcbody(false, line)?;
            }
            _ => {
                self.suffixedexp()?;
            }
        }
        Ok(())
    }

    /// A string literal in value position: rewritten if its escapes need it.
    fn string_token(&mut self) {
        let t = self.tok();
        if self.emit && t.kind == Tk::String && t.flags & NEEDS_REWRITE != 0 {
            let mut text = Vec::with_capacity((t.end - t.start) as usize);
            super::lexer::rewrite_short_string(t.text(self.src), &mut text);
            self.edits.push(Edit::Replace {
                start: t.start,
                end: t.end,
                text,
            });
        }
        self.advance();
    }

    fn primaryexp(&mut self) -> PResult<Ek> {
        match self.kind() {
            Tk::Name => {
                if self.emit {
                    self.note_type_call();
                }
                self.advance();
                Ok(Ek::Var)
            }
            Tk::LParen => {
                let line = self.tok().line;
                self.advance();
                self.expr()?;
                self.check_match(Tk::RParen, Tk::LParen, line)?;
                Ok(Ek::Other)
            }
            _ => Err(self.unexpected()),
        }
    }

    /// At a name in primary position: record it if it is a call shape go-lua compiles to
    /// `LOADTYPE` (see module docs) and no local of that name is visible.
    fn note_type_call(&mut self) {
        let name = self.text();
        let candidate = is_builtin_type_name(name) || self.type_names.contains(&name);
        if !candidate {
            return;
        }
        let is_args = |k: Tk| matches!(k, Tk::LParen | Tk::String | Tk::LongString | Tk::LBrace);
        let method_index = |bytes: &[u8]| TYPE_METHODS.iter().position(|m| m.as_bytes() == bytes);
        let i = self.p;
        // (method index, index of the first argument token) for the method shapes.
        let shape: Option<Option<(usize, usize)>> = match self.peek(1) {
            k if is_args(k) => Some(None),
            Tk::Colon | Tk::Dot
                if matches!(self.peek(2), Tk::Name | Tk::Is) && is_args(self.peek(3)) =>
            {
                method_index(self.toks[i + 2].text(self.src)).map(|m| Some((m, i + 3)))
            }
            Tk::LBracket
                if self.peek(2) == Tk::String
                    && self.peek(3) == Tk::RBracket
                    && is_args(self.peek(4)) =>
            {
                let v = super::lexer::decode_short_string(self.toks[i + 2].text(self.src));
                method_index(&v).map(|m| Some((m, i + 4)))
            }
            _ => None,
        };
        let Some(shape) = shape else { return };
        if self.is_local(name) {
            return;
        }
        let method = shape.map(|(m, arg)| {
            let cut_start = self.toks[i + 1].start;
            let a = self.toks[arg];
            match a.kind {
                Tk::LParen => MethodCall {
                    index: m + 1,
                    cut_start,
                    cut_end: a.end,
                    empty_args: self.toks.get(arg + 1).is_some_and(|t| t.kind == Tk::RParen),
                    close_at: None,
                },
                Tk::LBrace => {
                    let mut depth = 0usize;
                    let mut j = arg;
                    while j < self.toks.len() {
                        match self.toks[j].kind {
                            Tk::LBrace => depth += 1,
                            Tk::RBrace => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            Tk::Eof => break,
                            _ => {}
                        }
                        j += 1;
                    }
                    let close = self.toks[j.min(self.toks.len() - 1)].end;
                    MethodCall {
                        index: m + 1,
                        cut_start,
                        cut_end: a.start,
                        empty_args: false,
                        close_at: Some(close),
                    }
                }
                _ => MethodCall {
                    index: m + 1,
                    cut_start,
                    cut_end: a.start,
                    empty_args: false,
                    close_at: Some(a.end),
                },
            }
        });
        self.call_sites.push(CallSite {
            at: self.toks[i].start,
            name,
            method,
        });
    }

    pub(crate) fn suffixedexp(&mut self) -> PResult<Ek> {
        let mut ek = self.primaryexp()?;
        loop {
            match self.kind() {
                Tk::Dot => {
                    self.advance();
                    self.method_name()?;
                    ek = Ek::Var;
                }
                Tk::LBracket => {
                    self.advance();
                    self.expr()?;
                    self.expect(Tk::RBracket)?;
                    ek = Ek::Var;
                }
                Tk::Colon => {
                    self.advance();
                    self.method_name()?;
                    self.funcargs()?;
                    ek = Ek::Call;
                }
                Tk::LParen | Tk::String | Tk::LongString | Tk::LBrace => {
                    self.funcargs()?;
                    ek = Ek::Call;
                }
                _ => return Ok(ek),
            }
        }
    }

    fn funcargs(&mut self) -> PResult<()> {
        match self.kind() {
            Tk::LParen => {
                let t = self.tok();
                if t.flags & NL_BEFORE != 0
                    && self.p > 0
                    && self.toks[self.p - 1].kind == Tk::RParen
                {
                    return Err(self.error_here("ambiguous syntax (function call x new statement)"));
                }
                self.advance();
                if self.kind() != Tk::RParen {
                    self.exprlist()?;
                }
                self.check_match(Tk::RParen, Tk::LParen, t.line)
            }
            Tk::LBrace => self.table(),
            Tk::String | Tk::LongString => {
                self.string_token();
                Ok(())
            }
            _ => Err(self.error_here("function arguments expected")),
        }
    }

    fn table(&mut self) -> PResult<()> {
        let line = self.tok().line;
        self.advance(); // {
        while self.kind() != Tk::RBrace {
            match self.kind() {
                Tk::LBracket => {
                    self.advance();
                    self.expr()?;
                    self.expect(Tk::RBracket)?;
                    self.expect(Tk::Assign)?;
                    self.expr()?;
                }
                Tk::Name
                | Tk::Interface
                | Tk::Readonly
                | Tk::As
                | Tk::Asserts
                | Tk::Is
                | Tk::Keyof
                | Tk::Extends
                    if self.peek(1) == Tk::Assign =>
                {
                    self.advance();
                    self.advance();
                    self.expr()?;
                }
                _ => self.expr()?,
            }
            if !(self.accept(Tk::Comma) || self.accept(Tk::Semi)) {
                break;
            }
        }
        self.check_match(Tk::RBrace, Tk::LBrace, line)
    }
}

const UNARY_PRIORITY: u8 = 12;

/// Lua 5.3/5.4 binary operator priorities `(left, right)`.
fn binary_priority(k: Tk) -> Option<(u8, u8)> {
    Some(match k {
        Tk::Or => (1, 1),
        Tk::And => (2, 2),
        Tk::Lt | Tk::Gt | Tk::Le | Tk::Ge | Tk::Ne | Tk::Eq => (3, 3),
        Tk::Pipe => (4, 4),
        Tk::Tilde => (5, 5),
        Tk::Amp => (6, 6),
        Tk::Shl | Tk::Shr => (7, 7),
        Tk::Concat => (9, 8),
        Tk::Plus | Tk::Minus => (10, 10),
        Tk::Star | Tk::Slash | Tk::DSlash | Tk::Percent => (11, 11),
        Tk::Caret => (14, 13),
        _ => return None,
    })
}
