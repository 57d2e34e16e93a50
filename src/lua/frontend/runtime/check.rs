//! Validation of Lua values against run-time types (`T:is(v)`, `T(v)`).
//!
//! Algorithm: structural recursion over the type, reading the value with raw accesses only (no
//! metamethods run during a check). The current location is kept in one `path` buffer
//! (`user.tags[2]`), pushed and truncated around each step, so a successful check allocates
//! nothing for records and arrays. Messages have the form `path: expected T, got luatype` or
//! `path: <constraint message>`; the constraint messages contain the validator words callers
//! match on (`min`, `max`, `min_len`/`max_len` with `length`, `pattern`).
//!
//! Unions are tried quietly (no message formatting); when none matches, the one member whose
//! shape fits the value (same Lua type; for records, matching literal discriminant fields) is
//! re-checked loudly for a precise message, otherwise the union itself is reported.
//!
//! Semantics (deviations from go-lua are listed in `docs/decisions/0011-type-runtime.md`):
//! records check declared fields only (extra keys allowed), `name?: T` accepts nil; arrays check
//! `t[1..#t]`, skipping holes; maps check every key and value; intersections require every part;
//! unbound generic parameters, `typeof(...)` and unresolvable `T[K]` accept anything; an unknown
//! type name fails with `unknown type Name`. Depth is bounded ([`MAX_DEPTH`]) so cyclic values and
//! cyclic aliases end with an error, never a hang.

use std::fmt::Write;
use std::sync::Arc;

use mlua::{Lua, Table, Value};

use super::super::ast::Lit;
use super::model::{Check, Closure, Env, Prim, Ty, TyRef, TypeModule};
use super::object::{TypeObj, display};

/// Maximum nesting of values plus type references followed in one check.
pub(crate) const MAX_DEPTH: u32 = 200;

/// Longest value excerpt quoted in a message.
const QUOTE_MAX: usize = 60;

type Res = Result<(), String>;

pub(crate) struct Checker<'l> {
    lua: &'l Lua,
    /// Environment for names in the type being read (see [`lookup_type`]).
    genv: Option<Table>,
    depth: u32,
    path: String,
    quiet: bool,
}

/// Validate `v` against `c` (names resolved in `genv`); `Err` carries the message.
pub(crate) fn validate(lua: &Lua, genv: Option<Table>, v: &Value, c: &Closure) -> Res {
    if super::fast::accepts(lua, v, c) == Some(true) {
        return Ok(());
    }
    validate_safe(lua, genv, v, c)
}

/// [`validate`] without the raw fast path (also the reference the fast path is tested against).
pub(crate) fn validate_safe(lua: &Lua, genv: Option<Table>, v: &Value, c: &Closure) -> Res {
    let mut ch = Checker {
        lua,
        genv,
        depth: 0,
        path: String::new(),
        quiet: false,
    };
    ch.check(v, &c.module, &c.env, &c.ty)
}

/// Lua type name of a value as messages show it (`type` for type objects).
pub(crate) fn lua_type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        Value::UserData(ud) if ud.is::<TypeObj>() => "type",
        _ => "userdata",
    }
}

pub(crate) fn prim_accepts(p: Prim, v: &Value) -> bool {
    match p {
        Prim::Nil => v.is_nil(),
        Prim::Boolean => matches!(v, Value::Boolean(_)),
        Prim::Number => matches!(v, Value::Integer(_) | Value::Number(_)),
        Prim::Integer => match v {
            Value::Integer(_) => true,
            Value::Number(f) => f.is_finite() && f.fract() == 0.0,
            _ => false,
        },
        Prim::String => matches!(v, Value::String(_)),
        Prim::Any | Prim::Unknown => true,
        Prim::Never => false,
        Prim::Table => matches!(v, Value::Table(_)),
        Prim::Userdata => matches!(
            v,
            Value::UserData(_) | Value::LightUserData(_) | Value::Error(_)
        ),
        Prim::Thread => matches!(v, Value::Thread(_)),
        Prim::Error => !v.is_nil(),
    }
}

pub(crate) fn lit_accepts(l: &Lit, v: &Value) -> bool {
    match (l, v) {
        (Lit::Nil, Value::Nil) => true,
        (Lit::Bool(a), Value::Boolean(b)) => a == b,
        (Lit::Int(a), Value::Integer(b)) => a == b,
        (Lit::Int(a), Value::Number(b)) => *a as f64 == *b,
        (Lit::Float(a), Value::Number(b)) => a == b,
        (Lit::Float(a), Value::Integer(b)) => *a == *b as f64,
        (Lit::Str(a), Value::String(b)) => *a == *b.as_bytes(),
        _ => false,
    }
}

/// Number formatting for messages: integral values without a fraction.
pub(crate) fn fmt_num(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn quote(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(s.len().min(QUOTE_MAX) + 2);
    out.push('"');
    for (i, ch) in s.chars().enumerate() {
        if i == QUOTE_MAX {
            out.push_str("...");
            break;
        }
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\{}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Resolve a type object found in a global (`Name`) or module table (`mod.Name`) of `genv` (the
/// environment the referring type's chunk ran in; the state's globals when unknown). Returns the
/// object's closure and its own environment (for names inside it).
pub(crate) fn lookup_type(
    lua: &Lua,
    genv: Option<&Table>,
    module: Option<&str>,
    name: &str,
) -> Option<(Closure, Option<Table>)> {
    let global = |n: &str| -> Option<Value> {
        match genv {
            // Environments reach shared globals through `__index`: a normal read.
            Some(e) => e.get(n).ok(),
            None => lua.globals().get(n).ok(),
        }
    };
    let v: Value = match module {
        None => global(name)?,
        Some(m) => match global(m)? {
            Value::Table(t) => t.raw_get(name).ok()?,
            _ => return None,
        },
    };
    match v {
        Value::UserData(ud) => {
            let c = ud.borrow::<TypeObj>().ok()?.c.clone();
            let env = ud.user_value::<Option<Table>>().ok().flatten();
            Some((c, env))
        }
        _ => None,
    }
}

impl Checker<'_> {
    #[cold]
    fn fail(&self, msg: impl FnOnce() -> String) -> String {
        if self.quiet {
            return String::new();
        }
        let m = msg();
        if self.path.is_empty() {
            m
        } else {
            format!("{}: {m}", self.path)
        }
    }

    #[cold]
    fn mismatch(&self, m: &TypeModule, ty: &Ty, v: &Value) -> String {
        self.fail(|| format!("expected {}, got {}", display(m, ty), lua_type_name(v)))
    }

    #[cold]
    fn not_table(&self, v: &Value) -> String {
        self.fail(|| format!("expected table, got {}", lua_type_name(v)))
    }

    fn check(&mut self, v: &Value, m: &Arc<TypeModule>, env: &Env, ty: &TyRef) -> Res {
        self.depth += 1;
        let r = if self.depth > MAX_DEPTH {
            Err(self.fail(|| "value or type nesting too deep".to_owned()))
        } else {
            self.check_ty(v, m, env, ty)
        };
        self.depth -= 1;
        r
    }

    fn push_field(&mut self, name: &str) -> usize {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(name);
        len
    }

    fn push_index(&mut self, i: i64) -> usize {
        let len = self.path.len();
        let _ = write!(self.path, "[{i}]");
        len
    }

    fn push_key(&mut self, k: &Value) -> usize {
        match k {
            Value::String(s) => {
                let s = s.to_string_lossy();
                self.push_field(&s)
            }
            Value::Integer(i) => self.push_index(*i),
            other => {
                let len = self.path.len();
                let text = match other {
                    Value::Number(f) => fmt_num(*f),
                    Value::Boolean(b) => b.to_string(),
                    v => lua_type_name(v).to_owned(),
                };
                let _ = write!(self.path, "[{text}]");
                len
            }
        }
    }

    fn check_ty(&mut self, v: &Value, m: &Arc<TypeModule>, env: &Env, ty: &TyRef) -> Res {
        match &**ty {
            Ty::Prim(p) => {
                if prim_accepts(*p, v) {
                    Ok(())
                } else {
                    Err(self.fail(|| format!("expected {}, got {}", p.name(), lua_type_name(v))))
                }
            }
            Ty::Lit(l) => {
                if lit_accepts(l, v) {
                    Ok(())
                } else {
                    Err(self.mismatch(m, ty, v))
                }
            }
            Ty::Optional(inner) => {
                if v.is_nil() {
                    Ok(())
                } else {
                    self.check(v, m, env, inner)
                }
            }
            Ty::Union(members) => self.union(v, m, env, ty, members),
            Ty::Intersection(parts) => {
                for p in parts {
                    self.check(v, m, env, p)?;
                }
                Ok(())
            }
            Ty::Array(elem) => {
                let Value::Table(t) = v else {
                    return Err(self.not_table(v));
                };
                let n = t.raw_len() as i64;
                for i in 1..=n {
                    let x: Value = t.raw_get(i).map_err(|e| self.fail(|| e.to_string()))?;
                    if x.is_nil() {
                        continue;
                    }
                    let mark = self.push_index(i);
                    let r = self.check(&x, m, env, elem);
                    self.path.truncate(mark);
                    r?;
                }
                Ok(())
            }
            Ty::Map(kt, vt) => {
                let Value::Table(t) = v else {
                    return Err(self.not_table(v));
                };
                let mut failure: Option<String> = None;
                let walk = t.for_each(|k: Value, x: Value| {
                    let r = self.map_entry(&k, &x, m, env, kt, vt);
                    match r {
                        Ok(()) => Ok(()),
                        Err(e) => {
                            failure = Some(e);
                            Err(mlua::Error::RuntimeError(String::new()))
                        }
                    }
                });
                match (failure, walk) {
                    (Some(e), _) => Err(e),
                    (None, Err(e)) => Err(self.fail(|| e.to_string())),
                    (None, Ok(())) => Ok(()),
                }
            }
            Ty::Record {
                fields, extends, ..
            } => {
                let Value::Table(t) = v else {
                    return Err(self.not_table(v));
                };
                for f in fields {
                    let x: Value = t
                        .raw_get(f.name.as_str())
                        .map_err(|e| self.fail(|| e.to_string()))?;
                    if x.is_nil() && f.optional {
                        continue;
                    }
                    let mark = self.push_field(&f.name);
                    let mut r = self.check(&x, m, env, &f.ty);
                    if r.is_ok() && !x.is_nil() {
                        r = self.apply_checks(&x, &f.checks);
                    }
                    self.path.truncate(mark);
                    r?;
                }
                for e in extends {
                    self.check(v, m, env, e)?;
                }
                Ok(())
            }
            Ty::Func { .. } => {
                if matches!(v, Value::Function(_)) {
                    Ok(())
                } else {
                    Err(self.fail(|| format!("expected function, got {}", lua_type_name(v))))
                }
            }
            Ty::Tuple(items) => {
                let Value::Table(t) = v else {
                    return Err(self.not_table(v));
                };
                for (i, it) in items.iter().enumerate() {
                    let idx = i as i64 + 1;
                    let x: Value = t.raw_get(idx).map_err(|e| self.fail(|| e.to_string()))?;
                    let mark = self.push_index(idx);
                    let r = self.check(&x, m, env, it);
                    self.path.truncate(mark);
                    r?;
                }
                Ok(())
            }
            Ty::Decl(i, args) => {
                let d = &m.decls[*i];
                if args.is_empty() {
                    self.check(v, m, &None, &d.body)
                } else {
                    let bound: Arc<[Closure]> = args
                        .iter()
                        .map(|a| Closure {
                            module: Arc::clone(m),
                            ty: Arc::clone(a),
                            env: env.clone(),
                        })
                        .collect();
                    self.check(v, m, &Some(bound), &d.body)
                }
            }
            Ty::Param(i, _) => match env {
                Some(e) if *i < e.len() => {
                    let c = &e[*i];
                    self.check(v, &c.module, &c.env, &c.ty)
                }
                _ => Ok(()),
            },
            Ty::Global(name) => match lookup_type(self.lua, self.genv.as_ref(), None, name) {
                Some((c, env)) => self.foreign(v, &c, env),
                None => Err(self.fail(|| format!("unknown type {name}"))),
            },
            Ty::Qualified(module, name) => {
                match lookup_type(self.lua, self.genv.as_ref(), Some(module), name) {
                    Some((c, env)) => self.foreign(v, &c, env),
                    None => Err(self.fail(|| format!("unknown type {module}.{name}"))),
                }
            }
            Ty::Annotated(inner, checks) => {
                self.check(v, m, env, inner)?;
                if v.is_nil() {
                    Ok(())
                } else {
                    self.apply_checks(v, checks)
                }
            }
            Ty::KeyOf(_) | Ty::Index(..) | Ty::Cond(_) => {
                let c = Closure {
                    module: Arc::clone(m),
                    ty: Arc::clone(ty),
                    env: env.clone(),
                };
                match super::relate::head(self.lua, self.genv.as_ref(), &c) {
                    Some(h) if !matches!(&*h.ty, Ty::KeyOf(_) | Ty::Index(..) | Ty::Cond(_)) => {
                        self.check(v, &h.module, &h.env, &h.ty)
                    }
                    _ => Ok(()),
                }
            }
            Ty::Opaque(_) => Ok(()),
        }
    }

    /// Check against a type object found by name, reading its names in its own environment.
    fn foreign(&mut self, v: &Value, c: &Closure, env: Option<Table>) -> Res {
        let next = env.or_else(|| self.genv.clone());
        let saved = std::mem::replace(&mut self.genv, next);
        let r = self.check(v, &c.module, &c.env, &c.ty);
        self.genv = saved;
        r
    }

    fn map_entry(
        &mut self,
        k: &Value,
        x: &Value,
        m: &Arc<TypeModule>,
        env: &Env,
        kt: &TyRef,
        vt: &TyRef,
    ) -> Res {
        let quiet = self.quiet;
        self.quiet = true;
        let key_ok = self.check(k, m, env, kt).is_ok();
        self.quiet = quiet;
        if !key_ok {
            let len = self.path.len();
            self.path.push_str("[key]");
            let e = self.fail(|| format!("expected {}, got {}", display(m, kt), lua_type_name(k)));
            self.path.truncate(len);
            return Err(e);
        }
        let mark = self.push_key(k);
        let r = self.check(x, m, env, vt);
        self.path.truncate(mark);
        r
    }

    fn union(
        &mut self,
        v: &Value,
        m: &Arc<TypeModule>,
        env: &Env,
        ty: &Ty,
        members: &[TyRef],
    ) -> Res {
        let quiet = self.quiet;
        self.quiet = true;
        let matched = members.iter().any(|t| self.check(v, m, env, t).is_ok());
        self.quiet = quiet;
        if matched {
            return Ok(());
        }
        if quiet {
            return Err(String::new());
        }
        let mut plausible = members.iter().filter(|t| self.plausible(v, m, env, t, 0));
        if let (Some(only), None) = (plausible.next(), plausible.next()) {
            return self.check(v, m, env, only);
        }
        Err(self.mismatch(m, ty, v))
    }

    /// Shallow "this member is what the value was meant to be" test for union messages.
    fn plausible(&self, v: &Value, m: &Arc<TypeModule>, env: &Env, ty: &Ty, depth: u32) -> bool {
        if depth > 8 {
            return true;
        }
        match ty {
            Ty::Prim(p) => match p {
                Prim::Integer | Prim::Number => matches!(v, Value::Integer(_) | Value::Number(_)),
                other => prim_accepts(*other, v),
            },
            Ty::Lit(l) => {
                let lt = match l {
                    Lit::Nil => "nil",
                    Lit::Bool(_) => "boolean",
                    Lit::Int(_) | Lit::Float(_) => "number",
                    Lit::Str(_) => "string",
                };
                lt == lua_type_name(v)
            }
            Ty::Optional(i) => v.is_nil() || self.plausible(v, m, env, i, depth + 1),
            Ty::Union(ms) => ms.iter().any(|t| self.plausible(v, m, env, t, depth + 1)),
            Ty::Intersection(ms) => ms.iter().all(|t| self.plausible(v, m, env, t, depth + 1)),
            Ty::Array(_) | Ty::Map(..) | Ty::Tuple(_) => matches!(v, Value::Table(_)),
            Ty::Record { fields, .. } => {
                let Value::Table(t) = v else { return false };
                fields.iter().all(|f| match &*f.ty {
                    Ty::Lit(l) => t
                        .raw_get::<Value>(f.name.as_str())
                        .is_ok_and(|x| lit_accepts(l, &x)),
                    _ => true,
                })
            }
            Ty::Func { .. } => matches!(v, Value::Function(_)),
            Ty::Annotated(i, _) => self.plausible(v, m, env, i, depth + 1),
            Ty::Decl(i, _) => self.plausible(v, m, &None, &m.decls[*i].body, depth + 1),
            Ty::Param(i, _) => match env {
                Some(e) if *i < e.len() => {
                    self.plausible(v, &e[*i].module, &e[*i].env, &e[*i].ty, depth + 1)
                }
                _ => true,
            },
            Ty::Global(name) => lookup_type(self.lua, self.genv.as_ref(), None, name)
                .is_none_or(|(c, _)| self.plausible(v, &c.module, &c.env, &c.ty, depth + 1)),
            Ty::Qualified(a, b) => lookup_type(self.lua, self.genv.as_ref(), Some(a), b)
                .is_none_or(|(c, _)| self.plausible(v, &c.module, &c.env, &c.ty, depth + 1)),
            _ => true,
        }
    }

    fn apply_checks(&self, v: &Value, checks: &[Check]) -> Res {
        for c in checks {
            match c {
                Check::Min(n) => {
                    if let Some(x) = as_f64(v)
                        && x < *n
                    {
                        return Err(self.fail(|| {
                            format!("value {} is less than min {}", show_num(v), fmt_num(*n))
                        }));
                    }
                }
                Check::Max(n) => {
                    if let Some(x) = as_f64(v)
                        && x > *n
                    {
                        return Err(self.fail(|| {
                            format!("value {} is greater than max {}", show_num(v), fmt_num(*n))
                        }));
                    }
                }
                Check::MinLen(n) => {
                    if let Some(len) = length(v)
                        && (len as f64) < *n
                    {
                        return Err(self.fail(|| {
                            format!("length {len} is less than min_len {}", fmt_num(*n))
                        }));
                    }
                }
                Check::MaxLen(n) => {
                    if let Some(len) = length(v)
                        && (len as f64) > *n
                    {
                        return Err(self.fail(|| {
                            format!("length {len} is greater than max_len {}", fmt_num(*n))
                        }));
                    }
                }
                Check::Pattern(p) => {
                    if let Value::String(s) = v {
                        match p.regex() {
                            Ok(re) => {
                                let bytes = s.as_bytes();
                                if !re.is_match(&bytes) {
                                    return Err(self.fail(|| {
                                        format!(
                                            "value {} does not match pattern {}",
                                            quote(&bytes),
                                            quote(p.source.as_bytes())
                                        )
                                    }));
                                }
                            }
                            Err(e) => {
                                return Err(self.fail(|| {
                                    format!("invalid pattern {}: {e}", quote(p.source.as_bytes()))
                                }));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(f) => Some(*f),
        _ => None,
    }
}

fn show_num(v: &Value) -> String {
    match v {
        Value::Integer(i) => i.to_string(),
        Value::Number(f) => fmt_num(*f),
        _ => String::new(),
    }
}

/// Byte length of a string or border of a table (`#`, raw).
fn length(v: &Value) -> Option<usize> {
    match v {
        Value::String(s) => Some(s.as_bytes().len()),
        Value::Table(t) => Some(t.raw_len()),
        _ => None,
    }
}
