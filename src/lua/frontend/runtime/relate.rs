//! Relations between run-time types: head resolution, subtyping (`<`, `<=`), equality (`==`).
//!
//! [`head`] follows references (declarations, generic parameters, global/module type objects),
//! strips validators and evaluates computed types (`keyof`, `T[K]`, conditional types) until a
//! structural node remains. [`subtype`] is a conservative structural relation: `integer <:
//! number`, literals below their base type, `never` below and `any`/`unknown` above everything,
//! unions and optionals by members, records by width (every field the supertype requires exists
//! with a subtype), arrays/maps/tuples covariantly, functions contravariant in parameters.
//! Equality is subtyping both ways. All walks are depth-bounded.

use std::sync::Arc;

use mlua::{Lua, Table};

use super::super::ast::Lit;
use super::check::lookup_type;
use super::model::{Closure, Prim, RField, Ty, TyRef, prim};

/// Bound on reference steps / structural depth.
const MAX_STEPS: u32 = 64;

fn with(c: &Closure, ty: &TyRef) -> Closure {
    Closure {
        module: Arc::clone(&c.module),
        ty: Arc::clone(ty),
        env: c.env.clone(),
    }
}

/// Resolve `c` to a structural type; `None` when a name cannot be resolved.
pub(crate) fn head(lua: &Lua, genv: Option<&Table>, c: &Closure) -> Option<Closure> {
    let mut cur = c.clone();
    for _ in 0..MAX_STEPS {
        let next = match &*cur.ty {
            Ty::Decl(i, args) => {
                let d = cur.module.decls.get(*i)?;
                let env = if args.is_empty() {
                    None
                } else {
                    Some(
                        args.iter()
                            .map(|a| with(&cur, a))
                            .collect::<Arc<[Closure]>>(),
                    )
                };
                Closure {
                    module: Arc::clone(&cur.module),
                    ty: Arc::clone(&d.body),
                    env,
                }
            }
            Ty::Param(i, _) => match &cur.env {
                Some(e) if *i < e.len() => e[*i].clone(),
                _ => Closure {
                    module: Arc::clone(&cur.module),
                    ty: prim(Prim::Any),
                    env: None,
                },
            },
            Ty::Global(n) => lookup_type(lua, genv, None, n)?.0,
            Ty::Qualified(a, b) => lookup_type(lua, genv, Some(a), b)?.0,
            Ty::Annotated(inner, _) => with(&cur, inner),
            Ty::Opaque(_) => Closure {
                module: Arc::clone(&cur.module),
                ty: prim(Prim::Any),
                env: None,
            },
            Ty::KeyOf(inner) => {
                let h = head(lua, genv, &with(&cur, inner))?;
                let names = record_fields(lua, genv, &h, 0);
                let lits: Vec<TyRef> = names
                    .iter()
                    .map(|(n, _)| Arc::new(Ty::Lit(Lit::Str(n.as_bytes().to_vec()))))
                    .collect();
                let ty = match lits.len() {
                    0 => prim(Prim::Never),
                    1 => Arc::clone(&lits[0]),
                    _ => Arc::new(Ty::Union(lits)),
                };
                return Some(Closure {
                    module: Arc::clone(&cur.module),
                    ty,
                    env: None,
                });
            }
            Ty::Index(obj, key) => {
                let h = head(lua, genv, &with(&cur, obj))?;
                let k = head(lua, genv, &with(&cur, key))?;
                let Ty::Lit(Lit::Str(name)) = &*k.ty else {
                    return None;
                };
                let fields = record_fields(lua, genv, &h, 0);
                let (_, c) = fields
                    .into_iter()
                    .find(|(n, _)| n.as_bytes() == name.as_slice())?;
                c
            }
            Ty::Cond(parts) => {
                let [check, ext, then, els] = &**parts;
                let yes = subtype(lua, genv, &with(&cur, check), &with(&cur, ext), 0);
                with(&cur, if yes { then } else { els })
            }
            _ => return Some(cur),
        };
        cur = next;
    }
    None
}

/// Fields of a record (including those of `extends` parents), as closures.
pub(crate) fn record_fields(
    lua: &Lua,
    genv: Option<&Table>,
    h: &Closure,
    depth: u32,
) -> Vec<(String, Closure)> {
    let mut out = Vec::new();
    if depth > 8 {
        return out;
    }
    if let Ty::Record {
        fields, extends, ..
    } = &*h.ty
    {
        for e in extends {
            if let Some(p) = head(lua, genv, &with(h, e)) {
                for (n, c) in record_fields(lua, genv, &p, depth + 1) {
                    if !out.iter().any(|(m, _)| *m == n) {
                        out.push((n, c));
                    }
                }
            }
        }
        for RField { name, ty, .. } in fields {
            let c = with(h, ty);
            if let Some(slot) = out.iter_mut().find(|(m, _)| m == name) {
                slot.1 = c;
            } else {
                out.push((name.clone(), c));
            }
        }
    }
    out
}

fn field_optional(h: &Closure, name: &str) -> bool {
    match &*h.ty {
        Ty::Record { fields, .. } => fields.iter().any(|f| f.name == name && f.optional),
        _ => false,
    }
}

fn lit_base(l: &Lit) -> Prim {
    match l {
        Lit::Nil => Prim::Nil,
        Lit::Bool(_) => Prim::Boolean,
        Lit::Int(_) => Prim::Integer,
        Lit::Float(f) if f.fract() == 0.0 => Prim::Integer,
        Lit::Float(_) => Prim::Number,
        Lit::Str(_) => Prim::String,
    }
}

fn prim_sub(p: Prim, q: Prim) -> bool {
    p == q
        || matches!(q, Prim::Any | Prim::Unknown)
        || p == Prim::Never
        || (p == Prim::Integer && q == Prim::Number)
        || (q == Prim::Error && p != Prim::Nil)
}

fn lit_eq(a: &Lit, b: &Lit) -> bool {
    match (a, b) {
        (Lit::Int(x), Lit::Float(y)) | (Lit::Float(y), Lit::Int(x)) => *x as f64 == *y,
        _ => a == b,
    }
}

/// `a <: b`.
pub(crate) fn subtype(
    lua: &Lua,
    genv: Option<&Table>,
    a: &Closure,
    b: &Closure,
    depth: u32,
) -> bool {
    if depth > MAX_STEPS {
        return false;
    }
    let (Some(a), Some(b)) = (head(lua, genv, a), head(lua, genv, b)) else {
        return false;
    };
    let d = depth + 1;
    match (&*a.ty, &*b.ty) {
        (_, Ty::Prim(Prim::Any | Prim::Unknown)) => true,
        (Ty::Prim(Prim::Never), _) => true,
        (Ty::Union(ms), _) => ms.iter().all(|m| subtype(lua, genv, &with(&a, m), &b, d)),
        (_, Ty::Union(ms)) => ms.iter().any(|m| subtype(lua, genv, &a, &with(&b, m), d)),
        (Ty::Optional(i), _) => {
            let nil = Closure {
                module: Arc::clone(&a.module),
                ty: prim(Prim::Nil),
                env: None,
            };
            subtype(lua, genv, &nil, &b, d) && subtype(lua, genv, &with(&a, i), &b, d)
        }
        (_, Ty::Optional(i)) => {
            matches!(&*a.ty, Ty::Prim(Prim::Nil) | Ty::Lit(Lit::Nil))
                || subtype(lua, genv, &a, &with(&b, i), d)
        }
        (Ty::Intersection(ms), _) => ms.iter().any(|m| subtype(lua, genv, &with(&a, m), &b, d)),
        (_, Ty::Intersection(ms)) => ms.iter().all(|m| subtype(lua, genv, &a, &with(&b, m), d)),
        (Ty::Prim(p), Ty::Prim(q)) => prim_sub(*p, *q),
        (Ty::Lit(l), Ty::Prim(q)) => prim_sub(lit_base(l), *q),
        (Ty::Lit(x), Ty::Lit(y)) => lit_eq(x, y),
        (Ty::Array(_) | Ty::Map(..) | Ty::Record { .. } | Ty::Tuple(_), Ty::Prim(Prim::Table)) => {
            true
        }
        (Ty::Array(x), Ty::Array(y)) => subtype(lua, genv, &with(&a, x), &with(&b, y), d),
        (Ty::Map(k1, v1), Ty::Map(k2, v2)) => {
            subtype(lua, genv, &with(&a, k1), &with(&b, k2), d)
                && subtype(lua, genv, &with(&a, v1), &with(&b, v2), d)
        }
        (Ty::Tuple(x), Ty::Tuple(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| subtype(lua, genv, &with(&a, p), &with(&b, q), d))
        }
        (Ty::Record { .. }, Ty::Record { .. }) => {
            let have = record_fields(lua, genv, &a, 0);
            record_fields(lua, genv, &b, 0).iter().all(|(name, want)| {
                match have.iter().find(|(n, _)| n == name) {
                    None => field_optional(&b, name),
                    Some((_, got)) => {
                        if field_optional(&a, name) && !field_optional(&b, name) {
                            return false;
                        }
                        subtype(lua, genv, got, want, d)
                    }
                }
            })
        }
        (
            Ty::Func {
                params: p1,
                rets: r1,
                ..
            },
            Ty::Func {
                params: p2,
                rets: r2,
                ..
            },
        ) => {
            let params_ok = p1
                .iter()
                .zip(p2)
                .all(|(x, y)| subtype(lua, genv, &with(&b, y), &with(&a, x), d));
            let rets_ok = match (r1, r2) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(x), Some(y)) => {
                    x.len() >= y.len()
                        && x.iter()
                            .zip(y)
                            .all(|(p, q)| subtype(lua, genv, &with(&a, p), &with(&b, q), d))
                }
            };
            params_ok && rets_ok
        }
        _ => false,
    }
}

/// Structural equality: each a subtype of the other.
pub(crate) fn equal(lua: &Lua, genv: Option<&Table>, a: &Closure, b: &Closure) -> bool {
    subtype(lua, genv, a, b, 0) && subtype(lua, genv, b, a, 0)
}
