//! Type-expression grammar (spec §4.3), as more methods of [`Parser`].
//!
//! ```text
//! Type    := Simple { ('|' | '&') Simple }            left-assoc, unions/intersections flattened
//!          | Simple 'extends' Simple '?' Type ':' Type
//! Simple  := Primary [Validators] { '?' }
//! Primary := Atom { '[' ']' | '[' Type ']' }
//! Atom    := nil | true | false | String | Number | Name | Name '.' Name | Name '<' Types '>'
//!          | '{' Type '}' | '{' '[' Type ']' ':' Type '}' | '{' Fields '}' | '{' '}'
//!          | '(' Params ')' '->' Ret | '(' Type ')' | fun '(' Params ')' [':' Ret]
//!          | interface '{' Fields '}' | readonly '{' ... '}' | typeof '(' Expr ')'
//!          | keyof '(' Type ')' | asserts Name [is Type]
//! ```
//!
//! Precedence decisions copied from go-lua's yacc grammar: `T?` binds tighter than `|`/`&`;
//! after a cast (`e as T`, `e :: T`) only a `Simple` (plus an optional conditional) is read, so
//! `x as A | B` is the bitwise or of `x as A` and `B`; a `>>` (or `>=`) closing generic arguments
//! is split. Superset choices (never reject what go-lua accepts): `(T)` grouping, `...` without a
//! type, an optional leading `|`, `name: T` fields inside `interface ... end`.

use super::ast::{Decl, Field, InterfaceMember, Lit, Param, Span, TypeExpr, TypeParam, Validator};
use super::error::PResult;
use super::lexer::{Tk, decode_long_string, decode_short_string};
use super::parser::Parser;

/// Result of a parenthesised group in type position.
enum Paren {
    /// A complete type (function type or grouping).
    Type(TypeExpr),
    /// A list of types `()` / `(A, B)` — only meaningful as multiple returns.
    List(Vec<TypeExpr>),
}

fn span(t: super::lexer::Token) -> Span {
    Span {
        start: t.start,
        end: t.end,
    }
}

/// Tokens accepted as record field names inside a type (go-lua `typefieldname`).
fn is_type_field_name(k: Tk) -> bool {
    matches!(
        k,
        Tk::Name
            | Tk::Interface
            | Tk::Readonly
            | Tk::As
            | Tk::Asserts
            | Tk::Is
            | Tk::Keyof
            | Tk::Extends
            | Tk::Typeof
    )
}

impl<'s> Parser<'s> {
    /// Full type expression.
    pub(crate) fn parse_type(&mut self) -> PResult<TypeExpr> {
        self.enter_level()?;
        if self.kind() == Tk::Pipe {
            self.advance();
        }
        let first = self.parse_simple(false)?;
        let r = self.type_from(first);
        self.leave_level();
        r
    }

    /// Continue a type after its first `Simple`.
    fn type_from(&mut self, first: TypeExpr) -> PResult<TypeExpr> {
        if self.kind() == Tk::Extends {
            return self.conditional(first);
        }
        let mut acc = first;
        loop {
            match self.kind() {
                Tk::Pipe => {
                    self.advance();
                    let rhs = self.parse_simple(false)?;
                    acc = match acc {
                        TypeExpr::Union(mut v) => {
                            v.push(rhs);
                            TypeExpr::Union(v)
                        }
                        other => TypeExpr::Union(vec![other, rhs]),
                    };
                }
                Tk::Amp => {
                    self.advance();
                    let rhs = self.parse_simple(false)?;
                    acc = match acc {
                        TypeExpr::Intersection(mut v) => {
                            v.push(rhs);
                            TypeExpr::Intersection(v)
                        }
                        other => TypeExpr::Intersection(vec![other, rhs]),
                    };
                }
                _ => return Ok(acc),
            }
        }
    }

    fn conditional(&mut self, check: TypeExpr) -> PResult<TypeExpr> {
        self.advance(); // extends
        let ext = self.parse_simple(true)?;
        self.expect(Tk::Question)?;
        let then = self.parse_type()?;
        self.expect(Tk::Colon)?;
        let els = self.parse_type()?;
        Ok(TypeExpr::Conditional(Box::new([check, ext, then, els])))
    }

    /// Type after `as` / `::`: a `Simple`, or a conditional type.
    pub(crate) fn cast_type(&mut self) -> PResult<TypeExpr> {
        self.enter_level()?;
        let t = self.parse_simple(false)?;
        let r = if self.kind() == Tk::Extends {
            self.conditional(t)
        } else {
            Ok(t)
        };
        self.leave_level();
        r
    }

    /// `Primary [Validators] {'?'}`; with `before_cond`, a `?` that starts the branches of a
    /// conditional type is left alone.
    fn parse_simple(&mut self, before_cond: bool) -> PResult<TypeExpr> {
        let p = self.parse_primary()?;
        self.simple_from(p, before_cond)
    }

    fn simple_from(&mut self, mut t: TypeExpr, before_cond: bool) -> PResult<TypeExpr> {
        if self.kind() == Tk::At {
            let vs = self.validators()?;
            if matches!(t, TypeExpr::Name(_) | TypeExpr::Array(_)) {
                t = TypeExpr::Annotated(Box::new(t), vs);
            }
        }
        while self.kind() == Tk::Question && (!before_cond || self.peek(1) == Tk::Question) {
            self.advance();
            t = TypeExpr::Optional(Box::new(t));
        }
        Ok(t)
    }

    fn parse_primary(&mut self) -> PResult<TypeExpr> {
        let a = self.parse_atom()?;
        self.postfix_from(a)
    }

    fn postfix_from(&mut self, mut t: TypeExpr) -> PResult<TypeExpr> {
        while self.kind() == Tk::LBracket {
            self.advance();
            if self.accept(Tk::RBracket) {
                t = TypeExpr::Array(Box::new(t));
            } else {
                let k = self.parse_type()?;
                self.expect(Tk::RBracket)?;
                t = TypeExpr::Index(Box::new(t), Box::new(k));
            }
        }
        Ok(t)
    }

    /// Continue a full type from an already parsed atom.
    fn type_from_atom(&mut self, atom: TypeExpr) -> PResult<TypeExpr> {
        let p = self.postfix_from(atom)?;
        let s = self.simple_from(p, false)?;
        self.type_from(s)
    }

    fn parse_atom(&mut self) -> PResult<TypeExpr> {
        let t = self.tok();
        match t.kind {
            Tk::Nil => {
                self.advance();
                Ok(TypeExpr::Lit(Lit::Nil))
            }
            Tk::True | Tk::False => {
                self.advance();
                Ok(TypeExpr::Lit(Lit::Bool(t.kind == Tk::True)))
            }
            Tk::String => {
                self.advance();
                Ok(TypeExpr::Lit(Lit::Str(decode_short_string(
                    t.text(self.src),
                ))))
            }
            Tk::LongString => {
                self.advance();
                Ok(TypeExpr::Lit(Lit::Str(decode_long_string(
                    t.text(self.src),
                ))))
            }
            Tk::Number => {
                self.advance();
                Ok(TypeExpr::Lit(number_lit(t.text(self.src))))
            }
            Tk::Name => {
                self.advance();
                if self.kind() == Tk::Dot && self.peek(1) == Tk::Name {
                    self.advance();
                    let member = span(self.tok());
                    self.advance();
                    return Ok(TypeExpr::Qualified(span(t), member));
                }
                if self.kind() == Tk::Lt {
                    self.advance();
                    let mut args = vec![self.parse_type()?];
                    while self.accept(Tk::Comma) {
                        args.push(self.parse_type()?);
                    }
                    self.close_angle()?;
                    return Ok(TypeExpr::Generic(span(t), args));
                }
                Ok(TypeExpr::Name(span(t)))
            }
            Tk::LBrace => self.brace_type(),
            Tk::LParen => match self.paren_group()? {
                Paren::Type(t) => Ok(t),
                Paren::List(_) => Err(self.error_here("'->' expected")),
            },
            Tk::Fun => self.fun_type(),
            Tk::Interface => {
                self.advance();
                if self.kind() != Tk::LBrace {
                    return Err(self.error_here("'{' expected"));
                }
                match self.brace_type()? {
                    TypeExpr::Record { fields, .. } => Ok(TypeExpr::Record {
                        fields,
                        interface: true,
                    }),
                    _ => Err(self.error_here("interface fields expected")),
                }
            }
            Tk::Readonly => {
                self.advance();
                if self.kind() != Tk::LBrace {
                    return Err(self.error_here("'{' expected"));
                }
                self.brace_type()
            }
            Tk::Typeof => {
                self.advance();
                let line = self.tok().line;
                self.expect(Tk::LParen)?;
                self.silent(|p| p.expr())?;
                self.check_match(Tk::RParen, Tk::LParen, line)?;
                Ok(TypeExpr::TypeOf)
            }
            Tk::Keyof => {
                self.advance();
                let line = self.tok().line;
                self.expect(Tk::LParen)?;
                let inner = self.parse_type()?;
                self.check_match(Tk::RParen, Tk::LParen, line)?;
                Ok(TypeExpr::KeyOf(Box::new(inner)))
            }
            Tk::Asserts => {
                self.advance();
                self.check_name()?;
                if self.accept(Tk::Is) {
                    self.parse_type()?;
                }
                Ok(TypeExpr::Asserts)
            }
            _ => Err(self.error_here("type expected")),
        }
    }

    /// Closing `>` of a generic list; splits `>>` and `>=`.
    fn close_angle(&mut self) -> PResult<()> {
        let p = self.p;
        match self.kind() {
            Tk::Gt => {
                self.advance();
                Ok(())
            }
            Tk::Shr | Tk::Ge => {
                let t = &mut self.toks[p];
                t.kind = if t.kind == Tk::Shr {
                    Tk::Gt
                } else {
                    Tk::Assign
                };
                t.start += 1;
                t.col += 1;
                Ok(())
            }
            _ => Err(self.error_here("'>' expected")),
        }
    }

    /// `{...}` after an optional `readonly`/`interface`: array, map or record.
    fn brace_type(&mut self) -> PResult<TypeExpr> {
        let line = self.tok().line;
        self.advance(); // {
        if self.accept(Tk::RBrace) {
            return Ok(TypeExpr::Record {
                fields: Vec::new(),
                interface: false,
            });
        }
        if self.accept(Tk::LBracket) {
            let k = self.parse_type()?;
            self.expect(Tk::RBracket)?;
            self.expect(Tk::Colon)?;
            let v = self.parse_type()?;
            self.check_match(Tk::RBrace, Tk::LBrace, line)?;
            return Ok(TypeExpr::Map(Box::new(k), Box::new(v)));
        }
        if is_type_field_name(self.kind()) && matches!(self.peek(1), Tk::Colon | Tk::QColon) {
            let mut fields = Vec::new();
            loop {
                if !is_type_field_name(self.kind()) {
                    return Err(self.error_here("<name> expected"));
                }
                let name = span(self.tok());
                self.advance();
                let optional = match self.kind() {
                    Tk::Colon => false,
                    Tk::QColon => true,
                    _ => return Err(self.error_here("':' expected")),
                };
                self.advance();
                let ty = self.parse_type()?;
                let validators = if self.kind() == Tk::At {
                    self.validators()?
                } else {
                    Vec::new()
                };
                fields.push(Field {
                    name,
                    optional,
                    ty,
                    validators,
                });
                if !self.accept(Tk::Comma) || self.kind() == Tk::RBrace {
                    break;
                }
            }
            self.check_match(Tk::RBrace, Tk::LBrace, line)?;
            return Ok(TypeExpr::Record {
                fields,
                interface: false,
            });
        }
        let elem = self.parse_type()?;
        self.check_match(Tk::RBrace, Tk::LBrace, line)?;
        Ok(TypeExpr::Array(Box::new(elem)))
    }

    /// `( ... )` in type position: parameters of a function type, a grouping, or a type list.
    fn paren_group(&mut self) -> PResult<Paren> {
        let line = self.tok().line;
        self.advance(); // (
        let (params, variadic) = self.fn_params()?;
        self.check_match(Tk::RParen, Tk::LParen, line)?;
        if self.accept(Tk::Arrow) {
            let rets = self.ret_type()?;
            return Ok(Paren::Type(TypeExpr::Func {
                params,
                variadic,
                rets: Some(rets),
            }));
        }
        if variadic.is_some() || params.iter().any(|p| p.name.is_some()) {
            return Err(self.error_here("'->' expected"));
        }
        let mut types: Vec<TypeExpr> = params.into_iter().map(|p| p.ty).collect();
        if types.len() == 1 {
            return Ok(Paren::Type(types.pop().expect("one element")));
        }
        Ok(Paren::List(types))
    }

    /// Parameters of a function type up to (not including) `)`.
    fn fn_params(&mut self) -> PResult<(Vec<Param>, Option<Box<TypeExpr>>)> {
        let mut params = Vec::new();
        let mut variadic = None;
        if self.kind() == Tk::RParen {
            return Ok((params, variadic));
        }
        loop {
            if self.accept(Tk::Dots) {
                self.accept(Tk::Colon);
                let ty = if matches!(self.kind(), Tk::RParen | Tk::Comma) {
                    TypeExpr::Name(Span { start: 0, end: 0 })
                } else {
                    self.parse_type()?
                };
                variadic = Some(Box::new(ty));
                break;
            }
            if self.kind() == Tk::Name && self.peek(1) == Tk::Colon {
                let name = span(self.tok());
                self.advance();
                self.advance();
                let ty = self.parse_type()?;
                params.push(Param {
                    name: Some(name),
                    ty,
                });
            } else {
                let ty = self.parse_type()?;
                params.push(Param { name: None, ty });
            }
            if !self.accept(Tk::Comma) {
                break;
            }
        }
        Ok((params, variadic))
    }

    /// Return side of `->` or `fun(...):` — one type or a parenthesised list.
    fn ret_type(&mut self) -> PResult<Vec<TypeExpr>> {
        if self.kind() == Tk::LParen {
            return match self.paren_group()? {
                Paren::List(v) => Ok(v),
                Paren::Type(t) => Ok(vec![self.type_from_atom(t)?]),
            };
        }
        Ok(vec![self.parse_type()?])
    }

    fn fun_type(&mut self) -> PResult<TypeExpr> {
        self.advance(); // fun
        let line = self.tok().line;
        self.expect(Tk::LParen)?;
        let (params, variadic) = self.fn_params()?;
        self.check_match(Tk::RParen, Tk::LParen, line)?;
        let rets = if self.accept(Tk::Colon) {
            Some(self.ret_type()?)
        } else {
            None
        };
        Ok(TypeExpr::Func {
            params,
            variadic,
            rets,
        })
    }

    /// Return annotation of a function body or interface method, at the `:`.
    pub(crate) fn ret_annotation(&mut self) -> PResult<Vec<TypeExpr>> {
        self.advance(); // :
        let mut out = if self.kind() == Tk::LParen {
            match self.paren_group()? {
                Paren::List(v) => return Ok(v),
                Paren::Type(t) => vec![self.type_from_atom(t)?],
            }
        } else {
            vec![self.parse_type()?]
        };
        while self.accept(Tk::Comma) {
            out.push(self.parse_type()?);
        }
        Ok(out)
    }

    /// `@name[(args)]` repeated. Arguments are expressions; literal ones are kept.
    fn validators(&mut self) -> PResult<Vec<Validator>> {
        let mut out = Vec::new();
        while self.accept(Tk::At) {
            let name = span(self.tok());
            self.check_name()?;
            let mut args = Vec::new();
            if self.kind() == Tk::LParen {
                let line = self.tok().line;
                self.advance();
                if self.kind() != Tk::RParen {
                    loop {
                        let first = self.p;
                        self.silent(|p| p.expr())?;
                        args.push(self.literal_between(first, self.p));
                        if !self.accept(Tk::Comma) {
                            break;
                        }
                    }
                }
                self.check_match(Tk::RParen, Tk::LParen, line)?;
            }
            out.push(Validator { name, args });
        }
        Ok(out)
    }

    /// The literal value of the expression made of tokens `[first, end)`, if it is one.
    fn literal_between(&self, first: usize, end: usize) -> Option<Lit> {
        let t = self.toks[first];
        match (end - first, t.kind) {
            (1, Tk::Nil) => Some(Lit::Nil),
            (1, Tk::True) => Some(Lit::Bool(true)),
            (1, Tk::False) => Some(Lit::Bool(false)),
            (1, Tk::Number) => Some(number_lit(t.text(self.src))),
            (1, Tk::String) => Some(Lit::Str(decode_short_string(t.text(self.src)))),
            (1, Tk::LongString) => Some(Lit::Str(decode_long_string(t.text(self.src)))),
            (2, Tk::Minus) if self.toks[first + 1].kind == Tk::Number => {
                match number_lit(self.toks[first + 1].text(self.src)) {
                    Lit::Int(i) => Some(Lit::Int(i.wrapping_neg())),
                    Lit::Float(f) => Some(Lit::Float(-f)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `<T, U: C>` generic parameter list.
    pub(crate) fn type_params(&mut self) -> PResult<Vec<TypeParam>> {
        self.advance(); // <
        let mut out = Vec::new();
        loop {
            let name = span(self.tok());
            self.check_name()?;
            let constraint = if self.accept(Tk::Colon) {
                Some(self.parse_type()?)
            } else {
                None
            };
            out.push(TypeParam { name, constraint });
            if !self.accept(Tk::Comma) {
                break;
            }
        }
        self.close_angle()?;
        Ok(out)
    }

    /// `type Name [<params>] = Type`, at `type`.
    pub(crate) fn type_decl(&mut self) -> PResult<Decl> {
        self.advance(); // type
        let name = span(self.tok());
        self.check_name()?;
        let params = if self.kind() == Tk::Lt {
            self.type_params()?
        } else {
            Vec::new()
        };
        self.expect(Tk::Assign)?;
        let ty = self.parse_type()?;
        Ok(Decl::Alias { name, params, ty })
    }

    /// `interface Name [: A, B] {members} end`, at `interface`.
    pub(crate) fn interface_decl(&mut self, line: u32) -> PResult<Decl> {
        self.advance(); // interface
        let name = span(self.tok());
        self.check_name()?;
        let mut extends = Vec::new();
        if self.accept(Tk::Colon) {
            loop {
                extends.push(span(self.tok()));
                self.check_name()?;
                if !self.accept(Tk::Comma) {
                    break;
                }
            }
        }
        let mut members = Vec::new();
        loop {
            match self.kind() {
                Tk::Function => {
                    self.advance();
                    let mname = span(self.tok());
                    self.check_name()?;
                    let pline = self.tok().line;
                    self.expect(Tk::LParen)?;
                    let mut params = Vec::new();
                    let mut variadic = None;
                    if self.kind() != Tk::RParen {
                        loop {
                            if self.accept(Tk::Dots) {
                                let ty = if self.accept(Tk::Colon) {
                                    self.parse_type()?
                                } else {
                                    TypeExpr::Name(Span { start: 0, end: 0 })
                                };
                                variadic = Some(Box::new(ty));
                                break;
                            }
                            let pname = span(self.tok());
                            self.check_name()?;
                            let ty = if self.accept(Tk::Colon) {
                                self.parse_type()?
                            } else {
                                TypeExpr::Name(Span { start: 0, end: 0 })
                            };
                            params.push(Param {
                                name: Some(pname),
                                ty,
                            });
                            if !self.accept(Tk::Comma) {
                                break;
                            }
                        }
                    }
                    self.check_match(Tk::RParen, Tk::LParen, pline)?;
                    let rets = if self.kind() == Tk::Colon {
                        self.ret_annotation()?
                    } else {
                        Vec::new()
                    };
                    members.push(InterfaceMember {
                        name: mname,
                        optional: false,
                        ty: TypeExpr::Func {
                            params,
                            variadic,
                            rets: Some(rets),
                        },
                    });
                }
                k if is_type_field_name(k) && matches!(self.peek(1), Tk::Colon | Tk::QColon) => {
                    let fname = span(self.tok());
                    self.advance();
                    let optional = self.kind() == Tk::QColon;
                    self.advance();
                    let ty = self.parse_type()?;
                    members.push(InterfaceMember {
                        name: fname,
                        optional,
                        ty,
                    });
                    if !self.accept(Tk::Comma) {
                        self.accept(Tk::Semi);
                    }
                }
                _ => break,
            }
        }
        self.check_match(Tk::End, Tk::Interface, line)?;
        Ok(Decl::Interface {
            name,
            extends,
            members,
        })
    }
}

/// Value of a number token (already validated by the lexer).
pub(crate) fn number_lit(t: &[u8]) -> Lit {
    // The lexer only lets ASCII through here.
    let s = std::str::from_utf8(t).unwrap_or("0");
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        let mut v: u64 = 0;
        for c in hex.bytes() {
            v = v
                .wrapping_mul(16)
                .wrapping_add(u64::from((c as char).to_digit(16).unwrap_or(0)));
        }
        return Lit::Int(v as i64);
    }
    if !s.contains(['.', 'e', 'E'])
        && let Ok(i) = s.parse::<i64>()
    {
        return Lit::Int(i);
    }
    Lit::Float(s.parse::<f64>().unwrap_or(f64::NAN))
}
