//! Run-time type model: what a type object knows about its type.
//!
//! A chunk's top-level declarations are compiled once per process into a [`TypeModule`] (an
//! immutable, `Arc`-shared table of [`DeclTy`]); type trees are `Arc<Ty>` nodes. References are
//! resolved lazily, which is what makes declarations order-independent and recursive:
//!
//! * `Decl(i, args)` — another declaration of the same module (with generic arguments);
//! * `Param(i)` — a generic parameter, bound by the environment of the enclosing [`Closure`];
//! * `Global(name)` / `Qualified(mod, name)` — a type object found in a global (`Name`) or a module
//!   table (`lib.Name`) when the value is checked — how types exported from libraries are used.
//!
//! A [`Closure`] pairs a type with the module and the bindings of generic parameters it must be
//! read in; every type object is one closure plus an optional name.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::super::ast::{self, Lit, TypeExpr};

pub(crate) type TyRef = Arc<Ty>;

/// Primitive run-time types (the eight built-ins plus names the checker knows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prim {
    Nil,
    Boolean,
    Number,
    Integer,
    String,
    Any,
    Unknown,
    Never,
    Table,
    Userdata,
    Thread,
    /// `error`: any non-nil value (error objects are userdata, plain errors strings).
    Error,
}

impl Prim {
    pub(crate) fn from_name(n: &str) -> Option<Prim> {
        Some(match n {
            "nil" => Prim::Nil,
            "boolean" => Prim::Boolean,
            "number" => Prim::Number,
            "integer" => Prim::Integer,
            "string" => Prim::String,
            "any" => Prim::Any,
            "unknown" => Prim::Unknown,
            "never" => Prim::Never,
            "table" => Prim::Table,
            "userdata" => Prim::Userdata,
            "thread" => Prim::Thread,
            "error" => Prim::Error,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Prim::Nil => "nil",
            Prim::Boolean => "boolean",
            Prim::Number => "number",
            Prim::Integer => "integer",
            Prim::String => "string",
            Prim::Any => "any",
            Prim::Unknown => "unknown",
            Prim::Never => "never",
            Prim::Table => "table",
            Prim::Userdata => "userdata",
            Prim::Thread => "thread",
            Prim::Error => "error",
        }
    }

    /// The eight names go-lua resolves to built-in type objects.
    pub(crate) const BUILTINS: [Prim; 8] = [
        Prim::Nil,
        Prim::Boolean,
        Prim::Number,
        Prim::Integer,
        Prim::String,
        Prim::Any,
        Prim::Unknown,
        Prim::Never,
    ];
}

/// A compiled validator (`@min(0)` …). Unknown names and non-literal arguments are dropped at
/// compile time.
#[derive(Debug)]
pub(crate) enum Check {
    Min(f64),
    Max(f64),
    MinLen(f64),
    MaxLen(f64),
    Pattern(Pattern),
}

/// `@pattern(re)`: RE2-style regular expression (Go `regexp` semantics), compiled on first use.
#[derive(Debug)]
pub(crate) struct Pattern {
    pub source: String,
    compiled: OnceLock<Result<regex::bytes::Regex, String>>,
}

impl Pattern {
    pub(crate) fn regex(&self) -> Result<&regex::bytes::Regex, &str> {
        self.compiled
            .get_or_init(|| regex::bytes::Regex::new(&self.source).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(String::as_str)
    }
}

#[derive(Debug)]
pub(crate) struct RField {
    pub name: String,
    /// Index of `name` in [`TypeModule::keys`] (the fast checker's pre-interned key).
    pub key: u32,
    pub optional: bool,
    pub ty: TyRef,
    pub checks: Vec<Check>,
}

#[derive(Debug)]
pub(crate) struct TParam {
    pub name: String,
    pub constraint: Option<TyRef>,
}

#[derive(Debug)]
pub(crate) enum Ty {
    Prim(Prim),
    Lit(Lit),
    Optional(TyRef),
    Union(Vec<TyRef>),
    Intersection(Vec<TyRef>),
    Array(TyRef),
    Map(TyRef, TyRef),
    Record {
        fields: Vec<RField>,
        interface: bool,
        extends: Vec<TyRef>,
    },
    Func {
        params: Vec<TyRef>,
        variadic: Option<TyRef>,
        rets: Option<Vec<TyRef>>,
    },
    Tuple(Vec<TyRef>),
    Decl(usize, Vec<TyRef>),
    Global(String),
    Qualified(String, String),
    Param(usize, String),
    Annotated(TyRef, Vec<Check>),
    KeyOf(TyRef),
    Index(TyRef, TyRef),
    Cond(Box<[TyRef; 4]>),
    /// `typeof(expr)` / `asserts x`: no run-time structure; accepts every value.
    Opaque(&'static str),
}

/// One top-level declaration.
#[derive(Debug)]
pub(crate) struct DeclTy {
    pub name: String,
    pub params: Vec<TParam>,
    pub body: TyRef,
}

/// The declarations of one chunk.
#[derive(Debug, Default)]
pub(crate) struct TypeModule {
    pub decls: Vec<DeclTy>,
    pub by_name: HashMap<String, usize>,
    /// `Decl(i, [])` node per declaration (what a declared type object holds).
    pub refs: Vec<TyRef>,
    /// Declaration names as shared strings (type object names).
    pub names: Vec<Arc<str>>,
    /// Distinct record field names of the module (see [`RField::key`]).
    pub keys: Vec<String>,
    /// Process-unique id (keys per-state caches; never reused, unlike an address).
    pub id: u64,
    /// Some type refers to a name resolved at check time (`Global`/`Qualified`).
    pub uses_names: bool,
}

/// Generic parameter bindings: one closure per parameter of the declaration being read.
pub(crate) type Env = Option<Arc<[Closure]>>;

/// A type together with the module and bindings it is read in.
#[derive(Clone, Debug)]
pub(crate) struct Closure {
    pub module: Arc<TypeModule>,
    pub ty: TyRef,
    pub env: Env,
}

/// The module of types that do not belong to a chunk (built-ins, reflection results of them).
pub(crate) fn empty_module() -> Arc<TypeModule> {
    static EMPTY: OnceLock<Arc<TypeModule>> = OnceLock::new();
    Arc::clone(EMPTY.get_or_init(|| Arc::new(TypeModule::default())))
}

/// Shared node of a primitive type.
pub(crate) fn prim(p: Prim) -> TyRef {
    static NODES: OnceLock<Vec<TyRef>> = OnceLock::new();
    let all = NODES.get_or_init(|| {
        [
            Prim::Nil,
            Prim::Boolean,
            Prim::Number,
            Prim::Integer,
            Prim::String,
            Prim::Any,
            Prim::Unknown,
            Prim::Never,
            Prim::Table,
            Prim::Userdata,
            Prim::Thread,
            Prim::Error,
        ]
        .into_iter()
        .map(|p| Arc::new(Ty::Prim(p)))
        .collect()
    });
    Arc::clone(&all[p as usize])
}

// ===== compilation from the syntax tree =====

struct Compiler<'a> {
    src: &'a [u8],
    names: &'a HashMap<String, usize>,
    params: Vec<String>,
    keys: &'a mut Vec<String>,
    uses_names: &'a mut bool,
}

fn text(src: &[u8], s: ast::Span) -> String {
    String::from_utf8_lossy(s.text(src)).into_owned()
}

/// Compile parsed declarations (spans into `src`) into a module.
pub(crate) fn compile_module(src: &[u8], decls: &[ast::Decl]) -> TypeModule {
    let mut by_name = HashMap::new();
    for (i, d) in decls.iter().enumerate() {
        // Later declarations of the same name win, like re-assignment.
        by_name.insert(text(src, d.name()), i);
    }
    let mut out = Vec::with_capacity(decls.len());
    let mut keys = Vec::new();
    let mut uses_names = false;
    for d in decls {
        let mut c = Compiler {
            src,
            names: &by_name,
            params: Vec::new(),
            keys: &mut keys,
            uses_names: &mut uses_names,
        };
        out.push(match d {
            ast::Decl::Alias { name, params, ty } => {
                c.params = params.iter().map(|p| text(src, p.name)).collect();
                let params = params
                    .iter()
                    .map(|p| TParam {
                        name: text(src, p.name),
                        constraint: p.constraint.as_ref().map(|t| c.ty(t)),
                    })
                    .collect();
                DeclTy {
                    name: text(src, *name),
                    params,
                    body: c.ty(ty),
                }
            }
            ast::Decl::Interface {
                name,
                extends,
                members,
            } => {
                let fields = members
                    .iter()
                    .map(|m| RField {
                        name: text(src, m.name),
                        key: c.key(&text(src, m.name)),
                        optional: m.optional,
                        ty: c.ty(&m.ty),
                        checks: Vec::new(),
                    })
                    .collect();
                let extends = extends
                    .iter()
                    .map(|e| c.name_ref(&text(src, *e), Vec::new()))
                    .collect();
                DeclTy {
                    name: text(src, *name),
                    params: Vec::new(),
                    body: Arc::new(Ty::Record {
                        fields,
                        interface: true,
                        extends,
                    }),
                }
            }
        });
    }
    let refs = (0..out.len())
        .map(|i| Arc::new(Ty::Decl(i, Vec::new())))
        .collect();
    let names = out.iter().map(|d| Arc::from(d.name.as_str())).collect();
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    TypeModule {
        decls: out,
        by_name,
        refs,
        names,
        keys,
        id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        uses_names,
    }
}

impl Compiler<'_> {
    fn key(&mut self, name: &str) -> u32 {
        match self.keys.iter().position(|k| k == name) {
            Some(i) => i as u32,
            None => {
                self.keys.push(name.to_owned());
                (self.keys.len() - 1) as u32
            }
        }
    }

    fn name_ref(&mut self, n: &str, args: Vec<TyRef>) -> TyRef {
        if n.is_empty() {
            return prim(Prim::Any);
        }
        if let Some(i) = self.params.iter().position(|p| p == n) {
            return Arc::new(Ty::Param(i, n.to_owned()));
        }
        if let Some(p) = Prim::from_name(n) {
            return prim(p);
        }
        if let Some(&i) = self.names.get(n) {
            return Arc::new(Ty::Decl(i, args));
        }
        *self.uses_names = true;
        Arc::new(Ty::Global(n.to_owned()))
    }

    fn ty(&mut self, t: &TypeExpr) -> TyRef {
        Arc::new(match t {
            TypeExpr::Name(s) => return self.name_ref(&text(self.src, *s), Vec::new()),
            TypeExpr::Qualified(a, b) => {
                *self.uses_names = true;
                Ty::Qualified(text(self.src, *a), text(self.src, *b))
            }
            TypeExpr::Generic(n, args) => {
                let args = args.iter().map(|a| self.ty(a)).collect();
                return self.name_ref(&text(self.src, *n), args);
            }
            TypeExpr::Lit(l) => Ty::Lit(l.clone()),
            TypeExpr::Array(e) => Ty::Array(self.ty(e)),
            TypeExpr::Map(k, v) => Ty::Map(self.ty(k), self.ty(v)),
            TypeExpr::Record { fields, interface } => Ty::Record {
                fields: fields
                    .iter()
                    .map(|f| RField {
                        name: text(self.src, f.name),
                        key: self.key(&text(self.src, f.name)),
                        optional: f.optional,
                        ty: self.ty(&f.ty),
                        checks: self.checks(&f.validators),
                    })
                    .collect(),
                interface: *interface,
                extends: Vec::new(),
            },
            TypeExpr::Func {
                params,
                variadic,
                rets,
            } => Ty::Func {
                params: params.iter().map(|p| self.ty(&p.ty)).collect(),
                variadic: variadic.as_ref().map(|v| self.ty(v)),
                rets: rets
                    .as_ref()
                    .map(|r| r.iter().map(|t| self.ty(t)).collect()),
            },
            TypeExpr::Optional(i) => Ty::Optional(self.ty(i)),
            TypeExpr::Union(v) => Ty::Union(v.iter().map(|t| self.ty(t)).collect()),
            TypeExpr::Intersection(v) => Ty::Intersection(v.iter().map(|t| self.ty(t)).collect()),
            TypeExpr::Annotated(i, vs) => {
                let inner = self.ty(i);
                let checks = self.checks(vs);
                if checks.is_empty() {
                    return inner;
                }
                Ty::Annotated(inner, checks)
            }
            TypeExpr::TypeOf => Ty::Opaque("typeof"),
            TypeExpr::KeyOf(i) => Ty::KeyOf(self.ty(i)),
            TypeExpr::Index(o, k) => Ty::Index(self.ty(o), self.ty(k)),
            TypeExpr::Conditional(parts) => {
                let [a, b, c, d] = &**parts;
                Ty::Cond(Box::new([self.ty(a), self.ty(b), self.ty(c), self.ty(d)]))
            }
            TypeExpr::Asserts => Ty::Opaque("asserts"),
        })
    }

    fn checks(&self, vs: &[ast::Validator]) -> Vec<Check> {
        let mut out = Vec::new();
        for v in vs {
            let num = match v.args.first() {
                Some(Some(Lit::Int(i))) => Some(*i as f64),
                Some(Some(Lit::Float(f))) => Some(*f),
                _ => None,
            };
            let c = match (v.name.text(self.src), num) {
                (b"min", Some(n)) => Check::Min(n),
                (b"max", Some(n)) => Check::Max(n),
                (b"min_len", Some(n)) => Check::MinLen(n),
                (b"max_len", Some(n)) => Check::MaxLen(n),
                (b"pattern", _) => match v.args.first() {
                    Some(Some(Lit::Str(s))) => Check::Pattern(Pattern {
                        source: String::from_utf8_lossy(s).into_owned(),
                        compiled: OnceLock::new(),
                    }),
                    _ => continue,
                },
                _ => continue,
            };
            out.push(c);
        }
        out
    }
}

/// Parse a type descriptor (the `type`/`interface` statements the translator passed to the
/// prelude) and compile it. Errors are reported as `line:col: message` of the descriptor.
pub(crate) fn module_from_descriptor(desc: &[u8]) -> Result<TypeModule, String> {
    let toks = super::super::lexer::tokenize(desc)
        .map_err(|e| format!("{}:{}: {}", e.line, e.column, e.message))?;
    let mut p = super::super::parser::Parser::new(desc, toks);
    let decls = p
        .decl_list()
        .map_err(|e| format!("{}:{}: {}", e.line, e.column, e.message))?;
    Ok(compile_module(desc, &decls))
}
