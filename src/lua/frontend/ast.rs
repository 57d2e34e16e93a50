//! Syntax tree of type expressions (spec §4.3 "Type expressions").
//!
//! Only types get a tree: statements and value expressions are translated on the fly (see
//! `parser.rs`), but the type runtime needs the structure of `type`/`interface` declarations.
//! Names and literals are byte spans into the source the tree was parsed from (no copies on the
//! translation hot path); [`Span::text`] and the `decode_*` helpers of the lexer recover values.

/// Byte range `[start, end)` in the parsed source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub(crate) fn text<'s>(&self, src: &'s [u8]) -> &'s [u8] {
        &src[self.start as usize..self.end as usize]
    }
}

/// A literal value in a type or validator argument.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lit {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
}

/// `@name(args)` validator. Arguments that are not literals are kept as `None` (the runtime
/// ignores validators whose arguments it cannot evaluate).
#[derive(Clone, Debug)]
pub(crate) struct Validator {
    pub name: Span,
    pub args: Vec<Option<Lit>>,
}

/// Record (or structural interface) field.
#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub name: Span,
    pub optional: bool,
    pub ty: TypeExpr,
    pub validators: Vec<Validator>,
}

/// Function type parameter: optional name and its type.
#[derive(Clone, Debug)]
pub(crate) struct Param {
    pub name: Option<Span>,
    pub ty: TypeExpr,
}

/// Type expression.
#[derive(Clone, Debug)]
pub(crate) enum TypeExpr {
    /// Identifier: built-in, alias, type parameter or unknown (resolved by the consumer).
    Name(Span),
    /// `mod.Type`.
    Qualified(Span, Span),
    /// `Name<A, B>`.
    Generic(Span, Vec<TypeExpr>),
    Lit(Lit),
    /// `{T}`, `T[]`, `readonly {T}`.
    Array(Box<TypeExpr>),
    /// `{[K]: V}`.
    Map(Box<TypeExpr>, Box<TypeExpr>),
    /// `{a: T, b?: U}`; `interface` marks the `interface { ... }` literal.
    Record {
        fields: Vec<Field>,
        interface: bool,
    },
    /// `(a: A, B, ...C) -> R`, `fun(...)`; `rets: None` = no return annotation (`fun()`).
    Func {
        params: Vec<Param>,
        variadic: Option<Box<TypeExpr>>,
        rets: Option<Vec<TypeExpr>>,
    },
    Optional(Box<TypeExpr>),
    Union(Vec<TypeExpr>),
    Intersection(Vec<TypeExpr>),
    /// Primary type with validators kept (names and arrays only, as in go-lua).
    Annotated(Box<TypeExpr>, Vec<Validator>),
    /// `typeof(expr)`: the static type of a value; no run-time structure.
    TypeOf,
    KeyOf(Box<TypeExpr>),
    /// `T[K]`.
    Index(Box<TypeExpr>, Box<TypeExpr>),
    /// `C extends E ? T : F`.
    Conditional(Box<[TypeExpr; 4]>),
    /// `asserts x [is T]` (return position only; a static-checker fact).
    Asserts,
}

/// Generic parameter `T` or `T: Constraint`.
#[derive(Clone, Debug)]
pub(crate) struct TypeParam {
    pub name: Span,
    pub constraint: Option<TypeExpr>,
}

/// Method signature or field of an `interface` declaration.
#[derive(Clone, Debug)]
pub(crate) struct InterfaceMember {
    pub name: Span,
    pub optional: bool,
    /// `Func` for methods, any type for fields.
    pub ty: TypeExpr,
}

/// A `type`/`interface` statement.
#[derive(Clone, Debug)]
pub(crate) enum Decl {
    Alias {
        name: Span,
        params: Vec<TypeParam>,
        ty: TypeExpr,
    },
    Interface {
        name: Span,
        extends: Vec<Span>,
        members: Vec<InterfaceMember>,
    },
}

impl Decl {
    pub(crate) fn name(&self) -> Span {
        match self {
            Decl::Alias { name, .. } | Decl::Interface { name, .. } => *name,
        }
    }
}
