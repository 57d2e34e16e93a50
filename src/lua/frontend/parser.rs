//! Recursive-descent parser for statements and value expressions; translation by edit list.
//!
//! The parser does not build a tree of the program. It validates the dialect grammar (spec §4.3)
//! and records byte-range [`Edit`]s against the source as it goes:
//!
//! * every annotation, generic parameter list, cast (`as T`, `:: T`), postfix `!` and every
//!   `type`/`interface` statement becomes a *blank* edit (bytes → spaces, line breaks kept), so the
//!   output has exactly the input's lines;
//! * a blanked statement starts with `;` so that erasing it can never join the statements on
//!   either side into one (`a = b` / `type X = Y` / `(f)()`), and a `;` is inserted before a `(`
//!   that starts a statement right after an erased cast/`!` for the same reason;
//! * quoted strings whose escapes differ between the dialect (5.1 set) and Lua 5.4 are replaced;
//! * call sites whose callee is a bare name that may be a run-time type (`string(v)`, `X:is(v)`,
//!   `X.kind(T)`) are collected with whether a local of that name is in scope; `translate`
//!   decides which of them become `__wippy_T.X` once all top-level declarations are known
//!   (declarations are hoisted, so a call may precede its `type`).
//!
//! Edits are recorded only while `emit` is set; it is cleared inside types and erased statements,
//! which are removed wholesale, so edits never overlap and stay sorted by position.
//!
//! Scoping: a stack of local names with block marks; function parameters, `local`, `local
//! function`, `for` variables and the implicit `self` are declared with Lua's visibility rules
//! (a `local` is visible after its initialisers, `local function f` inside its own body).

use super::ast::Decl;
use super::emit::Edit;
use super::error::{PResult, RawError, near};
use super::lexer::{Tk, Token, kind_text};

/// Maximum syntactic nesting (statements + expressions + types), as Lua's LUAI_MAXCCALLS; keeps
/// the recursive descent far from the native stack limit on hostile input.
const MAX_LEVELS: u32 = 200;

/// Is `n` one of the eight built-in run-time type names (`nil boolean number integer string any
/// unknown never`)? A `match`, not a loop: this runs for every name in primary position.
#[inline]
pub(crate) fn is_builtin_type_name(n: &[u8]) -> bool {
    matches!(
        n,
        b"nil" | b"boolean" | b"number" | b"integer" | b"string" | b"any" | b"unknown" | b"never"
    )
}

/// Method names whose call on a type name goes to the type object (go-lua `typeMethodNames`).
pub(crate) const TYPE_METHODS: [&str; 12] = [
    "is", "kind", "name", "elem", "key", "val", "inner", "ret", "fields", "variants", "params",
    "tparams",
];

/// What a suffixed expression turned out to be (for assignment/call-statement checks).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Ek {
    Call,
    Var,
    Other,
}

/// A call whose callee name may denote a run-time type.
#[derive(Clone, Debug)]
pub(crate) struct CallSite<'s> {
    /// Byte offset of the callee name (where `__wippy_T.` would be inserted).
    pub at: u32,
    pub name: &'s [u8],
    /// Set for the method shapes `X:m(...)`, `X.m(...)`, `X["m"](...)`.
    pub method: Option<MethodCall>,
}

/// Where to cut a type-method call so it becomes `__wippy_T[k](__wippy_T.X, args)`: a direct call
/// of the shared method function (no userdata `__index` dispatch), receiver first, which also
/// gives the dot forms go-lua's meaning (the method finds its type either way).
#[derive(Clone, Debug)]
pub(crate) struct MethodCall {
    /// 1-based index of the method in [`TYPE_METHODS`].
    pub index: usize,
    /// `[start, end)` holding the selector and, for parenthesised arguments, the `(`.
    pub cut_start: u32,
    pub cut_end: u32,
    /// What replaces the cut: `,` before arguments, nothing before an empty `()`.
    pub empty_args: bool,
    /// For a table or string argument: where to insert the closing `)`.
    pub close_at: Option<u32>,
}

/// A top-level `type`/`interface` declaration.
#[derive(Clone, Debug)]
pub(crate) struct TopDecl {
    /// Source range of the whole statement.
    pub start: u32,
    pub end: u32,
    pub decl: Decl,
}

pub(crate) struct Parser<'s> {
    pub(crate) src: &'s [u8],
    pub(crate) toks: Vec<Token>,
    pub(crate) p: usize,
    pub(crate) emit: bool,
    pub(crate) edits: Vec<Edit>,
    pub(crate) call_sites: Vec<CallSite<'s>>,
    pub(crate) decls: Vec<TopDecl>,
    /// Names that appear after `type` or `interface` anywhere (superset of declared types).
    pub(crate) type_names: Vec<&'s [u8]>,
    locals: Vec<&'s [u8]>,
    scope_marks: Vec<usize>,
    /// Open loops per function being parsed (for `break` checks).
    loops: Vec<u32>,
    level: u32,
    /// End offset of the last erased range (for the `;` insertion rule).
    last_erase_end: u32,
}

impl<'s> Parser<'s> {
    pub(crate) fn new(src: &'s [u8], toks: Vec<Token>) -> Self {
        let mut type_names = Vec::new();
        for w in toks.windows(2) {
            let starts_decl = match w[0].kind {
                Tk::Interface => true,
                Tk::Name => w[0].text(src) == b"type",
                _ => false,
            };
            if starts_decl && w[1].kind == Tk::Name {
                let n = w[1].text(src);
                if !type_names.contains(&n) {
                    type_names.push(n);
                }
            }
        }
        Parser {
            src,
            toks,
            p: 0,
            emit: true,
            edits: Vec::new(),
            call_sites: Vec::new(),
            decls: Vec::new(),
            type_names,
            locals: Vec::new(),
            scope_marks: Vec::new(),
            loops: vec![0],
            level: 0,
            last_erase_end: u32::MAX,
        }
    }

    // ===== token helpers =====

    #[inline]
    pub(crate) fn kind(&self) -> Tk {
        self.toks[self.p].kind
    }

    #[inline]
    pub(crate) fn peek(&self, n: usize) -> Tk {
        self.toks.get(self.p + n).map_or(Tk::Eof, |t| t.kind)
    }

    #[inline]
    pub(crate) fn tok(&self) -> Token {
        self.toks[self.p]
    }

    #[inline]
    pub(crate) fn text(&self) -> &'s [u8] {
        self.toks[self.p].text(self.src)
    }

    #[inline]
    pub(crate) fn advance(&mut self) {
        if self.toks[self.p].kind != Tk::Eof {
            self.p += 1;
        }
    }

    #[inline]
    pub(crate) fn accept(&mut self, k: Tk) -> bool {
        if self.kind() == k {
            self.advance();
            true
        } else {
            false
        }
    }

    /// End offset of the previous token.
    #[inline]
    pub(crate) fn prev_end(&self) -> u32 {
        if self.p == 0 {
            0
        } else {
            self.toks[self.p - 1].end
        }
    }

    #[cold]
    pub(crate) fn error_here(&self, msg: &str) -> RawError {
        let t = self.tok();
        let text = if t.kind == Tk::Eof {
            &[][..]
        } else {
            t.text(self.src)
        };
        RawError::new(t.line, t.col, format!("{msg} {}", near(text)))
    }

    #[cold]
    pub(crate) fn unexpected(&self) -> RawError {
        self.error_here("unexpected symbol")
    }

    pub(crate) fn expect(&mut self, k: Tk) -> PResult<()> {
        if self.accept(k) {
            Ok(())
        } else {
            Err(self.error_here(&format!("'{}' expected", kind_text(k))))
        }
    }

    /// Lua's `check_match`: closing token for an opener at `line`.
    pub(crate) fn check_match(&mut self, what: Tk, who: Tk, line: u32) -> PResult<()> {
        if self.accept(what) {
            return Ok(());
        }
        if line == self.tok().line {
            Err(self.error_here(&format!("'{}' expected", kind_text(what))))
        } else {
            Err(self.error_here(&format!(
                "'{}' expected (to close '{}' at line {line})",
                kind_text(what),
                kind_text(who)
            )))
        }
    }

    pub(crate) fn check_name(&mut self) -> PResult<&'s [u8]> {
        if self.kind() == Tk::Name {
            let t = self.text();
            self.advance();
            Ok(t)
        } else {
            Err(self.error_here("<name> expected"))
        }
    }

    pub(crate) fn enter_level(&mut self) -> PResult<()> {
        self.level += 1;
        if self.level > MAX_LEVELS {
            return Err(self.error_here("chunk has too many syntax levels"));
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn leave_level(&mut self) {
        self.level -= 1;
    }

    /// Run `f` with edit recording off (types, erased statements).
    pub(crate) fn silent<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        let saved = self.emit;
        self.emit = false;
        let r = f(self);
        self.emit = saved;
        r
    }

    /// Blank `[start, end)`; with `semi`, its first byte becomes `;`.
    pub(crate) fn erase(&mut self, start: u32, end: u32, semi: bool) {
        if self.emit && start < end {
            self.edits.push(Edit::Blank { start, end, semi });
            self.last_erase_end = end;
        }
    }

    // ===== scopes =====

    fn open_scope(&mut self) {
        self.scope_marks.push(self.locals.len());
    }

    fn close_scope(&mut self) {
        let m = self.scope_marks.pop().expect("scope stack underflow");
        self.locals.truncate(m);
    }

    #[inline]
    fn declare(&mut self, name: &'s [u8]) {
        self.locals.push(name);
    }

    pub(crate) fn is_local(&self, name: &[u8]) -> bool {
        self.locals.iter().rev().any(|&n| n == name)
    }

    fn at_top_level(&self) -> bool {
        self.scope_marks.is_empty()
    }

    // ===== chunk and blocks =====

    /// Whole chunk: block then end of input.
    pub(crate) fn chunk(&mut self) -> PResult<()> {
        self.block()?;
        if self.kind() != Tk::Eof {
            return Err(self.error_here("'<eof>' expected"));
        }
        Ok(())
    }

    fn block_follow(&self) -> bool {
        matches!(
            self.kind(),
            Tk::Eof | Tk::End | Tk::Else | Tk::Elseif | Tk::Until
        )
    }

    fn block(&mut self) -> PResult<()> {
        loop {
            if self.block_follow() {
                return Ok(());
            }
            if self.kind() == Tk::Return {
                return self.retstat();
            }
            self.statement()?;
            // A statement that ended in an erased cast/`!`/annotation followed by `(`: Lua 5.4
            // would read the `(` as a call on the previous expression; go-lua cannot.
            if self.emit && self.kind() == Tk::LParen && self.prev_end() == self.last_erase_end {
                let at = self.tok().start;
                self.edits.push(Edit::Insert { at, text: ";" });
            }
        }
    }

    fn scoped_block(&mut self) -> PResult<()> {
        self.open_scope();
        let r = self.block();
        self.close_scope();
        r
    }

    fn retstat(&mut self) -> PResult<()> {
        self.advance(); // return
        if !self.block_follow() && self.kind() != Tk::Semi {
            self.exprlist()?;
        }
        self.accept(Tk::Semi);
        Ok(())
    }

    fn statement(&mut self) -> PResult<()> {
        self.enter_level()?;
        let line = self.tok().line;
        match self.kind() {
            Tk::Semi => self.advance(),
            Tk::If => self.ifstat(line)?,
            Tk::While => {
                self.advance();
                self.expr()?;
                self.expect(Tk::Do)?;
                self.loop_body()?;
                self.check_match(Tk::End, Tk::While, line)?;
            }
            Tk::Do => {
                self.advance();
                self.scoped_block()?;
                self.check_match(Tk::End, Tk::Do, line)?;
            }
            Tk::For => self.forstat(line)?,
            Tk::Repeat => {
                self.advance();
                self.open_scope();
                *self.loops.last_mut().expect("loop stack") += 1;
                let r = self.block();
                *self.loops.last_mut().expect("loop stack") -= 1;
                r?;
                self.check_match(Tk::Until, Tk::Repeat, line)?;
                self.expr()?; // sees the body's locals
                self.close_scope();
            }
            Tk::Function => self.funcstat(line)?,
            Tk::Local => {
                self.advance();
                if self.accept(Tk::Function) {
                    let name = self.check_name()?;
                    self.declare(name);
                    self.funcbody(false, line)?;
                } else {
                    self.localstat()?;
                }
            }
            Tk::Label => self.advance(),
            Tk::Break => {
                if *self.loops.last().expect("loop stack") == 0 {
                    return Err(self.error_here(&format!("break outside a loop at line {line}")));
                }
                self.advance();
            }
            Tk::Goto => {
                self.advance();
                self.check_name()?;
            }
            Tk::Interface => self.interface_stat(line)?,
            Tk::Name if self.peek(1) == Tk::Name && self.text() == b"type" => self.type_stat()?,
            _ => self.exprstat()?,
        }
        self.leave_level();
        Ok(())
    }

    fn loop_body(&mut self) -> PResult<()> {
        *self.loops.last_mut().expect("loop stack") += 1;
        let r = self.scoped_block();
        *self.loops.last_mut().expect("loop stack") -= 1;
        r
    }

    fn ifstat(&mut self, line: u32) -> PResult<()> {
        self.advance(); // if
        self.expr()?;
        self.expect(Tk::Then)?;
        self.scoped_block()?;
        loop {
            match self.kind() {
                Tk::Elseif => {
                    self.advance();
                    self.expr()?;
                    self.expect(Tk::Then)?;
                    self.scoped_block()?;
                }
                Tk::Else => {
                    self.advance();
                    self.scoped_block()?;
                    return self.check_match(Tk::End, Tk::If, line);
                }
                _ => return self.check_match(Tk::End, Tk::If, line),
            }
        }
    }

    fn forstat(&mut self, line: u32) -> PResult<()> {
        self.advance(); // for
        let first = self.check_name()?;
        match self.kind() {
            Tk::Assign => {
                self.advance();
                self.expr()?;
                self.expect(Tk::Comma)?;
                self.expr()?;
                if self.accept(Tk::Comma) {
                    self.expr()?;
                }
                self.expect(Tk::Do)?;
                self.open_scope();
                self.declare(first);
                let r = self.loop_body();
                self.close_scope();
                r?;
            }
            Tk::Comma | Tk::In => {
                let mut names = vec![first];
                while self.accept(Tk::Comma) {
                    names.push(self.check_name()?);
                }
                self.expect(Tk::In)?;
                self.exprlist()?;
                self.expect(Tk::Do)?;
                self.open_scope();
                for n in names {
                    self.declare(n);
                }
                let r = self.loop_body();
                self.close_scope();
                r?;
            }
            _ => return Err(self.error_here("'=' or 'in' expected")),
        }
        self.check_match(Tk::End, Tk::For, line)
    }

    fn funcstat(&mut self, line: u32) -> PResult<()> {
        self.advance(); // function
        self.check_name()?;
        let mut method = false;
        loop {
            match self.kind() {
                Tk::Dot => {
                    self.advance();
                    self.check_name()?;
                }
                Tk::Colon => {
                    self.advance();
                    self.method_name()?;
                    method = true;
                    break;
                }
                _ => break,
            }
        }
        self.funcbody(method, line)
    }

    /// Name after `:` (method call or definition) or after `.` in an expression: a name or one of
    /// the five type words go-lua accepts there.
    pub(crate) fn method_name(&mut self) -> PResult<&'s [u8]> {
        match self.kind() {
            Tk::Name | Tk::Interface | Tk::Readonly | Tk::As | Tk::Asserts | Tk::Is => {
                let t = self.text();
                self.advance();
                Ok(t)
            }
            _ => Err(self.error_here("<name> expected")),
        }
    }

    fn localstat(&mut self) -> PResult<()> {
        let mut names: Vec<&'s [u8]> = Vec::new();
        loop {
            names.push(self.check_name()?);
            if self.kind() == Tk::Colon {
                self.annotation()?;
            }
            if !self.accept(Tk::Comma) {
                break;
            }
        }
        if self.accept(Tk::Assign) {
            self.exprlist()?;
        }
        for n in names {
            self.declare(n);
        }
        Ok(())
    }

    /// `: Type` after a name: parsed and erased.
    fn annotation(&mut self) -> PResult<()> {
        let start = self.tok().start;
        self.advance(); // ':'
        self.silent(|p| p.parse_type().map(drop))?;
        let end = self.prev_end();
        self.erase(start, end, false);
        Ok(())
    }

    /// `[<T>] ( params ) [: returns] block end`.
    pub(crate) fn funcbody(&mut self, method: bool, line: u32) -> PResult<()> {
        if self.kind() == Tk::Lt {
            let start = self.tok().start;
            self.silent(|p| p.type_params().map(drop))?;
            let end = self.prev_end();
            self.erase(start, end, false);
        }
        self.expect(Tk::LParen)?;
        self.loops.push(0);
        self.open_scope();
        if method {
            self.declare(b"self");
        }
        if self.kind() != Tk::RParen {
            loop {
                match self.kind() {
                    Tk::Name => {
                        let n = self.text();
                        self.advance();
                        self.declare(n);
                        if self.kind() == Tk::Colon {
                            self.annotation()?;
                        }
                    }
                    Tk::Dots => {
                        self.advance();
                        if self.kind() == Tk::Colon {
                            self.annotation()?;
                        }
                        break;
                    }
                    _ => return Err(self.error_here("<name> expected")),
                }
                if !self.accept(Tk::Comma) {
                    break;
                }
            }
        }
        self.expect(Tk::RParen)?;
        if self.kind() == Tk::Colon {
            let start = self.tok().start;
            self.silent(|p| p.ret_annotation().map(drop))?;
            let end = self.prev_end();
            self.erase(start, end, false);
        }
        self.block()?;
        self.check_match(Tk::End, Tk::Function, line)?;
        self.close_scope();
        self.loops.pop();
        Ok(())
    }

    fn exprstat(&mut self) -> PResult<()> {
        let ek = self.suffixedexp()?;
        if matches!(self.kind(), Tk::Assign | Tk::Comma) {
            if ek != Ek::Var {
                return Err(self.error_here("syntax error"));
            }
            while self.accept(Tk::Comma) {
                if self.suffixedexp()? != Ek::Var {
                    return Err(self.error_here("syntax error"));
                }
            }
            self.expect(Tk::Assign)?;
            self.exprlist()
        } else if ek == Ek::Call {
            Ok(())
        } else {
            Err(self.error_here("syntax error"))
        }
    }

    // ===== declarations (erased; top-level ones become run-time types) =====

    fn type_stat(&mut self) -> PResult<()> {
        let start = self.tok().start;
        let decl = self.silent(|p| p.type_decl())?;
        let end = self.prev_end();
        self.erase(start, end, true);
        if self.at_top_level() {
            self.decls.push(TopDecl { start, end, decl });
        }
        Ok(())
    }

    fn interface_stat(&mut self, line: u32) -> PResult<()> {
        let start = self.tok().start;
        let decl = self.silent(|p| p.interface_decl(line))?;
        let end = self.prev_end();
        self.erase(start, end, true);
        if self.at_top_level() {
            self.decls.push(TopDecl { start, end, decl });
        }
        Ok(())
    }

    /// Descriptor mode (type runtime): a sequence of `type`/`interface` statements only.
    pub(crate) fn decl_list(&mut self) -> PResult<Vec<Decl>> {
        self.emit = false;
        let mut out = Vec::new();
        loop {
            match self.kind() {
                Tk::Eof => return Ok(out),
                Tk::Semi => self.advance(),
                Tk::Interface => {
                    let line = self.tok().line;
                    out.push(self.interface_decl(line)?);
                }
                Tk::Name if self.text() == b"type" && self.peek(1) == Tk::Name => {
                    out.push(self.type_decl()?)
                }
                _ => return Err(self.error_here("type declaration expected")),
            }
        }
    }
}
