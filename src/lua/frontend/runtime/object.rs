//! Type objects: the userdata Lua code sees as `T`.
//!
//! Surface (spec §4.4, go-lua `ltype.go`):
//! * `T:is(v)` → `v, nil` or `nil, message`; `T(v)` → `v` or raises the message (level 2, so the
//!   error points at the caller's line); `T(A, B)` with type arguments instantiates a generic.
//! * Reflection: `:kind()`, `:name()`, `:elem()`, `:key()`, `:val()`, `:inner()`, `:ret()`,
//!   `:fields()` (iterator of name, type), `:variants()`, `:params()`, `:tparams()` (iterator of
//!   name, constraint); `T.field` → the field's type; `tostring(T)`.
//! * `==` structural equality, `<`/`<=` (strict) subtyping; identity-stable per state for named
//!   and built-in types, so they work as table keys.
//!
//! Methods are shared functions that find the type in their first argument, so they must be
//! called with `:`. The translator turns `X.is(v)` on a known type name into `X:is(v)`; a dot
//! call on any other type object raises a message saying so.

use std::cell::Cell;
use std::fmt::Write;
use std::sync::Arc;

use mlua::{
    AnyUserData, Function, Lua, MetaMethod, MultiValue, Table, UserData, UserDataFields,
    UserDataMethods, UserDataRef, Value,
};

use super::super::ast::Lit;
use super::super::parser::TYPE_METHODS;
use super::check::{fmt_num, validate};
use super::model::{Check, Closure, Prim, Ty, TyRef, TypeModule};
use super::relate::{equal, head, record_fields, subtype};

/// A run-time type value.
#[derive(Clone, Debug)]
pub(crate) struct TypeObj {
    pub c: Closure,
    pub name: Option<Arc<str>>,
}

/// Lua source of the factory of the `__call` metamethod: given the Rust cast and `error`, returns
/// a function that calls the cast and raises its message from the caller's frame (level 2). A
/// Rust callback error would reach Lua as an mlua error object, not a string. The translator puts
/// this very text in every prelude ([`CALL_FACTORY`] is passed to `__wippy_types`), so it is
/// compiled with the chunk (or comes from its cached bytecode) instead of once more per state.
pub(crate) const CALL_FACTORY: &str =
    "function(c,e)return function(s,...)local o,r=c(s,...)if o then return r end e(r,2)end end";

/// Registry key where `__wippy_types` leaves the prelude's factory for the metatable registration.
pub(crate) const FACTORY_KEY: &str = "__wippy_type_call_factory";

impl TypeObj {
    fn unnamed(c: Closure) -> TypeObj {
        TypeObj { c, name: None }
    }

    fn sub(&self, h: &Closure, ty: &TyRef) -> TypeObj {
        TypeObj::unnamed(Closure {
            module: Arc::clone(&h.module),
            ty: Arc::clone(ty),
            env: h.env.clone(),
        })
    }

    fn label(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None => display(&self.c.module, &self.c.ty),
        }
    }

    /// Uninstantiated generic declaration: `(decl index)`.
    fn generic_decl(&self) -> Option<usize> {
        match &*self.c.ty {
            Ty::Decl(i, args) if args.is_empty() && !self.c.module.decls[*i].params.is_empty() => {
                Some(*i)
            }
            _ => None,
        }
    }

    fn kind(&self, lua: &Lua, genv: Option<&Table>) -> &'static str {
        if self.generic_decl().is_some() {
            return "generic";
        }
        let Some(h) = head(lua, genv, &self.c) else {
            return "unknown";
        };
        match &*h.ty {
            Ty::Prim(p) => p.name(),
            Ty::Lit(_) => "literal",
            Ty::Optional(_) => "optional",
            Ty::Union(_) => "union",
            Ty::Intersection(_) => "intersection",
            Ty::Array(_) => "array",
            Ty::Map(..) => "map",
            Ty::Record {
                interface: true, ..
            } => "interface",
            Ty::Record { .. } => "record",
            Ty::Func { .. } => "function",
            Ty::Tuple(_) => "tuple",
            _ => "unknown",
        }
    }

    /// `T(...)`: `(true, result)` or `(false, message)`.
    fn cast(
        &self,
        lua: &Lua,
        genv: Option<Table>,
        args: MultiValue,
    ) -> mlua::Result<(bool, Value)> {
        let n = args.len();
        if n == 0 {
            return Ok((
                false,
                Value::String(
                    lua.create_string(format!(
                        "type {} expects at least 1 argument",
                        self.label()
                    ))?,
                ),
            ));
        }
        let types: Vec<TypeObj> = args
            .iter()
            .filter_map(|v| match v {
                Value::UserData(ud) => ud.borrow::<TypeObj>().ok().map(|t| t.clone()),
                _ => None,
            })
            .collect();
        if types.len() == n {
            let msg = match self.generic_decl() {
                None => format!("type {} is not generic", self.label()),
                Some(i) => {
                    let d = &self.c.module.decls[i];
                    if d.params.len() != n {
                        format!(
                            "generic {} expects {} type arguments, got {n}",
                            self.label(),
                            d.params.len()
                        )
                    } else {
                        let env: Arc<[Closure]> = types.into_iter().map(|t| t.c).collect();
                        let inst = TypeObj {
                            c: Closure {
                                module: Arc::clone(&self.c.module),
                                ty: Arc::clone(&d.body),
                                env: Some(env),
                            },
                            name: self.name.clone(),
                        };
                        return Ok((true, ud(lua, inst, genv.as_ref())?));
                    }
                }
            };
            return Ok((false, Value::String(lua.create_string(msg)?)));
        }
        if !types.is_empty() {
            let msg = format!(
                "type {} does not accept mixed type/value arguments",
                self.label()
            );
            return Ok((false, Value::String(lua.create_string(msg)?)));
        }
        if n != 1 {
            let msg = format!("type {} validation expects 1 value, got {n}", self.label());
            return Ok((false, Value::String(lua.create_string(msg)?)));
        }
        let v = args.into_iter().next().unwrap_or(Value::Nil);
        match validate(lua, genv, &v, &self.c) {
            Ok(()) => Ok((true, v)),
            Err(msg) => Ok((false, Value::String(lua.create_string(msg)?))),
        }
    }
}

/// The receiver of a type method: the type and its userdata (whose user value is the
/// environment the type's chunk ran in, for names resolved at check time).
struct Recv {
    obj: UserDataRef<TypeObj>,
    ud: AnyUserData,
}

impl std::ops::Deref for Recv {
    type Target = TypeObj;
    fn deref(&self) -> &TypeObj {
        &self.obj
    }
}

impl Recv {
    /// The name environment, fetched only when the type can refer to names.
    fn env(&self) -> Option<Table> {
        if !self.obj.c.module.uses_names && self.obj.c.env.is_none() {
            return None;
        }
        self.ud.user_value::<Option<Table>>().ok().flatten()
    }
}

/// Borrow the receiver of a type method, with a clear message for `T.m()` misuse.
fn receiver(v: &Value, method: &str) -> mlua::Result<Recv> {
    if let Value::UserData(ud) = v
        && let Ok(obj) = ud.borrow::<TypeObj>()
    {
        return Ok(Recv {
            obj,
            ud: ud.clone(),
        });
    }
    Err(mlua::Error::RuntimeError(format!(
        "type method '{method}' must be called with ':' (T:{method}(...))"
    )))
}

fn iterator<T: Send + 'static>(
    lua: &Lua,
    items: Vec<T>,
    push: impl Fn(&Lua, &T) -> mlua::Result<MultiValue> + Send + 'static,
) -> mlua::Result<Function> {
    let idx = Cell::new(0usize);
    lua.create_function(move |lua, ()| {
        let i = idx.get();
        match items.get(i) {
            Some(item) => {
                idx.set(i + 1);
                push(lua, item)
            }
            None => Ok(MultiValue::from_iter([Value::Nil])),
        }
    })
}

/// A new type object carrying the name environment `genv`.
fn ud(lua: &Lua, t: TypeObj, genv: Option<&Table>) -> mlua::Result<Value> {
    let u = lua.create_userdata(t)?;
    if let Some(e) = genv {
        u.set_user_value(e)?;
    }
    Ok(Value::UserData(u))
}

/// Registry key of the per-state table caching method functions (created on first use).
const METHODS_KEY: &str = "__wippy_type_methods";

fn component(
    lua: &Lua,
    this: &Value,
    method: &str,
    pick: fn(&Ty) -> Option<&TyRef>,
) -> mlua::Result<Value> {
    let t = receiver(this, method)?;
    let env = t.env();
    match head(lua, env.as_ref(), &t.c) {
        Some(h) => match pick(&h.ty) {
            Some(sub) => ud(lua, t.sub(&h, sub), env.as_ref()),
            None => Ok(Value::Nil),
        },
        None => Ok(Value::Nil),
    }
}

fn type_iter(lua: &Lua, items: Vec<TypeObj>, env: Option<Table>) -> mlua::Result<Value> {
    let f = iterator(lua, items, move |lua, t| {
        Ok(MultiValue::from_iter([ud(lua, t.clone(), env.as_ref())?]))
    })?;
    Ok(Value::Function(f))
}

/// The shared function implementing type method `name` (None for other names).
fn make_method(lua: &Lua, name: &str) -> mlua::Result<Option<Function>> {
    let f = match name {
        "is" => lua.create_function(|lua, (this, v): (Value, Value)| {
            let t = receiver(&this, "is")?;
            match validate(lua, t.env(), &v, &t.c) {
                Ok(()) => Ok((v, Value::Nil)),
                Err(msg) => Ok((Value::Nil, Value::String(lua.create_string(msg)?))),
            }
        })?,
        "kind" => lua.create_function(|lua, this: Value| {
            let t = receiver(&this, "kind")?;
            Ok(t.kind(lua, t.env().as_ref()))
        })?,
        "name" => lua.create_function(|_, this: Value| {
            Ok(receiver(&this, "name")?
                .name
                .as_ref()
                .map(|n| n.to_string()))
        })?,
        "elem" => lua.create_function(|lua, this: Value| {
            component(lua, &this, "elem", |t| {
                if let Ty::Array(e) = t { Some(e) } else { None }
            })
        })?,
        "key" => lua.create_function(|lua, this: Value| {
            component(lua, &this, "key", |t| {
                if let Ty::Map(k, _) = t { Some(k) } else { None }
            })
        })?,
        "val" => lua.create_function(|lua, this: Value| {
            component(lua, &this, "val", |t| {
                if let Ty::Map(_, v) = t { Some(v) } else { None }
            })
        })?,
        "inner" => lua.create_function(|lua, this: Value| {
            component(lua, &this, "inner", |t| {
                if let Ty::Optional(i) = t {
                    Some(i)
                } else {
                    None
                }
            })
        })?,
        "ret" => lua.create_function(|lua, this: Value| {
            let t = receiver(&this, "ret")?;
            let env = t.env();
            let Some(h) = head(lua, env.as_ref(), &t.c) else {
                return Ok(Value::Nil);
            };
            match &*h.ty {
                Ty::Func { rets: Some(r), .. } if r.len() == 1 => {
                    ud(lua, t.sub(&h, &r[0]), env.as_ref())
                }
                Ty::Func { rets: Some(r), .. } if r.len() > 1 => ud(
                    lua,
                    t.sub(&h, &Arc::new(Ty::Tuple(r.clone()))),
                    env.as_ref(),
                ),
                _ => Ok(Value::Nil),
            }
        })?,
        "fields" => lua.create_function(|lua, this: Value| {
            let t = receiver(&this, "fields")?;
            let env = t.env();
            let Some(h) = head(lua, env.as_ref(), &t.c) else {
                return Ok(Value::Nil);
            };
            if !matches!(&*h.ty, Ty::Record { .. }) {
                return Ok(Value::Nil);
            }
            let items = record_fields(lua, env.as_ref(), &h, 0);
            let f = iterator(lua, items, move |lua, (name, c)| {
                Ok(MultiValue::from_iter([
                    Value::String(lua.create_string(name)?),
                    ud(lua, TypeObj::unnamed(c.clone()), env.as_ref())?,
                ]))
            })?;
            Ok(Value::Function(f))
        })?,
        "variants" => lua.create_function(|lua, this: Value| {
            let t = receiver(&this, "variants")?;
            let env = t.env();
            let Some(h) = head(lua, env.as_ref(), &t.c) else {
                return Ok(Value::Nil);
            };
            let Ty::Union(ms) = &*h.ty else {
                return Ok(Value::Nil);
            };
            type_iter(lua, ms.iter().map(|m| t.sub(&h, m)).collect(), env)
        })?,
        "params" => lua.create_function(|lua, this: Value| {
            let t = receiver(&this, "params")?;
            let env = t.env();
            let Some(h) = head(lua, env.as_ref(), &t.c) else {
                return Ok(Value::Nil);
            };
            let Ty::Func { params, .. } = &*h.ty else {
                return Ok(Value::Nil);
            };
            type_iter(lua, params.iter().map(|m| t.sub(&h, m)).collect(), env)
        })?,
        "tparams" => lua.create_function(|lua, this: Value| {
            let t = receiver(&this, "tparams")?;
            let env = t.env();
            let Some(i) = t.generic_decl() else {
                return Ok(Value::Nil);
            };
            let items: Vec<(String, Option<TypeObj>)> = t.c.module.decls[i]
                .params
                .iter()
                .map(|p| {
                    let c = p.constraint.as_ref().map(|ty| {
                        TypeObj::unnamed(Closure {
                            module: Arc::clone(&t.c.module),
                            ty: Arc::clone(ty),
                            env: None,
                        })
                    });
                    (p.name.clone(), c)
                })
                .collect();
            let f = iterator(lua, items, move |lua, (name, c)| {
                let cv = match c {
                    Some(c) => ud(lua, c.clone(), env.as_ref())?,
                    None => Value::Nil,
                };
                Ok(MultiValue::from_iter([
                    Value::String(lua.create_string(name)?),
                    cv,
                ]))
            })?;
            Ok(Value::Function(f))
        })?,
        _ => return Ok(None),
    };
    Ok(Some(f))
}

/// Method function number `index` (1-based, [`TYPE_METHODS`] order), created on first use and
/// cached per state. Translated chunks call it directly as `__wippy_T[index](T, ...)`.
pub(crate) fn method_by_index(lua: &Lua, index: usize) -> mlua::Result<Option<Function>> {
    let Some(name) = index.checked_sub(1).and_then(|i| TYPE_METHODS.get(i)) else {
        return Ok(None);
    };
    let cache = match lua.named_registry_value::<Value>(METHODS_KEY)? {
        Value::Table(t) => t,
        _ => {
            let t = lua.create_table_with_capacity(TYPE_METHODS.len(), 0)?;
            lua.set_named_registry_value(METHODS_KEY, &t)?;
            t
        }
    };
    if let Value::Function(f) = cache.raw_get::<Value>(index)? {
        return Ok(Some(f));
    }
    let f = make_method(lua, name)?;
    if let Some(f) = &f {
        cache.raw_set(index, f)?;
    }
    Ok(f)
}

/// Method function for `name` (see [`method_by_index`]).
fn method(lua: &Lua, name: &[u8]) -> mlua::Result<Option<Function>> {
    match TYPE_METHODS.iter().position(|m| m.as_bytes() == name) {
        Some(i) => method_by_index(lua, i + 1),
        None => Ok(None),
    }
}

/// Only metamethods are registered with mlua (no regular methods): mlua then builds no method
/// dispatcher of its own, which keeps the first type object of a state cheap (measured: about
/// 10 µs for a typed chunk in a fresh state instead of 26 µs). `__index` resolves method names to
/// the shared method functions and any other key to a record field's type. Method calls the
/// translator can see (`X:is(v)` on a type name) skip `__index` altogether.
impl UserData for TypeObj {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        // `type(T)` → "type" (the sandbox's `type` looks for this mark).
        let mark = crate::lua::vm::sandbox::TYPE_OBJECT_MARK;
        fields.add_meta_field(mark.to_str().expect("ASCII mark"), true);
        fields.add_meta_field_with("__call", |lua| {
            let cast = lua.create_function(|lua, (this, args): (Value, MultiValue)| {
                let t = receiver(&this, "__call")?;
                t.cast(lua, t.env(), args)
            })?;
            let error: Value = lua.globals().raw_get("error")?;
            let factory = match lua.named_registry_value::<Value>(FACTORY_KEY)? {
                Value::Function(f) => f,
                // Type objects created before any prelude ran (embedders): compile it here.
                _ => lua
                    .load(format!("return {CALL_FACTORY}"))
                    .set_name("=[wippy type]")
                    .eval()?,
            };
            let wrapper: Function = factory.call((cast, error))?;
            Ok(wrapper)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_function(MetaMethod::Index, |lua, (this, key): (Value, Value)| {
            let Value::String(k) = key else {
                return Ok(Value::Nil);
            };
            let k = k.as_bytes();
            if let Some(f) = method(lua, &k)? {
                return Ok(Value::Function(f));
            }
            let t = receiver(&this, "__index")?;
            let env = t.env();
            let Some(h) = head(lua, env.as_ref(), &t.c) else {
                return Ok(Value::Nil);
            };
            for (name, c) in record_fields(lua, env.as_ref(), &h, 0) {
                if name.as_bytes() == &*k {
                    return ud(lua, TypeObj::unnamed(c), env.as_ref());
                }
            }
            Ok(Value::Nil)
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.label()));
        // Relations resolve names in the left operand's environment.
        methods.add_meta_function(MetaMethod::Eq, |lua, (a, b): (Value, Value)| {
            let (Ok(a), Ok(b)) = (receiver(&a, "__eq"), receiver(&b, "__eq")) else {
                return Ok(false);
            };
            Ok(equal(lua, a.env().as_ref(), &a.c, &b.c))
        });
        methods.add_meta_function(MetaMethod::Le, |lua, (a, b): (Value, Value)| {
            let (a, b) = (receiver(&a, "__le")?, receiver(&b, "__le")?);
            Ok(subtype(lua, a.env().as_ref(), &a.c, &b.c, 0))
        });
        methods.add_meta_function(MetaMethod::Lt, |lua, (a, b): (Value, Value)| {
            let (a, b) = (receiver(&a, "__lt")?, receiver(&b, "__lt")?);
            let env = a.env();
            Ok(subtype(lua, env.as_ref(), &a.c, &b.c, 0)
                && !subtype(lua, env.as_ref(), &b.c, &a.c, 0))
        });
    }
}

// ===== display =====

/// Human-readable type text (`{name: string, age?: number}`, `"on" | "off"`).
pub(crate) fn display(m: &TypeModule, ty: &Ty) -> String {
    let mut out = String::new();
    write_ty(m, ty, &mut out, 0);
    out
}

fn write_lit(l: &Lit, out: &mut String) {
    match l {
        Lit::Nil => out.push_str("nil"),
        Lit::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Lit::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Lit::Float(f) => out.push_str(&fmt_num(*f)),
        Lit::Str(s) => {
            out.push('"');
            for ch in String::from_utf8_lossy(s).chars() {
                match ch {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
    }
}

fn write_list(m: &TypeModule, items: &[TyRef], sep: &str, out: &mut String, depth: u32) {
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        write_ty(m, t, out, depth + 1);
    }
}

fn write_ty(m: &TypeModule, ty: &Ty, out: &mut String, depth: u32) {
    if depth > 12 {
        out.push_str("...");
        return;
    }
    match ty {
        Ty::Prim(p) => out.push_str(p.name()),
        Ty::Lit(l) => write_lit(l, out),
        Ty::Optional(i) => {
            let paren = matches!(&**i, Ty::Union(_) | Ty::Intersection(_) | Ty::Func { .. });
            if paren {
                out.push('(');
            }
            write_ty(m, i, out, depth + 1);
            if paren {
                out.push(')');
            }
            out.push('?');
        }
        Ty::Union(ms) => write_list(m, ms, " | ", out, depth),
        Ty::Intersection(ms) => write_list(m, ms, " & ", out, depth),
        Ty::Array(e) => {
            out.push('{');
            write_ty(m, e, out, depth + 1);
            out.push('}');
        }
        Ty::Map(k, v) => {
            out.push_str("{[");
            write_ty(m, k, out, depth + 1);
            out.push_str("]: ");
            write_ty(m, v, out, depth + 1);
            out.push('}');
        }
        Ty::Record {
            fields, interface, ..
        } => {
            if *interface {
                out.push_str("interface ");
            }
            out.push('{');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&f.name);
                out.push_str(if f.optional { "?: " } else { ": " });
                write_ty(m, &f.ty, out, depth + 1);
                write_checks(&f.checks, out);
            }
            out.push('}');
        }
        Ty::Func {
            params,
            variadic,
            rets,
        } => {
            out.push('(');
            write_list(m, params, ", ", out, depth);
            if let Some(v) = variadic {
                if !params.is_empty() {
                    out.push_str(", ");
                }
                out.push_str("...");
                write_ty(m, v, out, depth + 1);
            }
            out.push_str(") -> ");
            match rets.as_deref() {
                None | Some([]) => out.push_str("()"),
                Some([one]) => write_ty(m, one, out, depth + 1),
                Some(many) => {
                    out.push('(');
                    write_list(m, many, ", ", out, depth);
                    out.push(')');
                }
            }
        }
        Ty::Tuple(items) => {
            out.push('(');
            write_list(m, items, ", ", out, depth);
            out.push(')');
        }
        Ty::Decl(i, args) => {
            out.push_str(m.decls.get(*i).map_or("?", |d| d.name.as_str()));
            if !args.is_empty() {
                out.push('<');
                write_list(m, args, ", ", out, depth);
                out.push('>');
            }
        }
        Ty::Global(n) | Ty::Param(_, n) => out.push_str(n),
        Ty::Qualified(a, b) => {
            let _ = write!(out, "{a}.{b}");
        }
        Ty::Annotated(i, checks) => {
            write_ty(m, i, out, depth + 1);
            write_checks(checks, out);
        }
        Ty::KeyOf(i) => {
            out.push_str("keyof(");
            write_ty(m, i, out, depth + 1);
            out.push(')');
        }
        Ty::Index(o, k) => {
            write_ty(m, o, out, depth + 1);
            out.push('[');
            write_ty(m, k, out, depth + 1);
            out.push(']');
        }
        Ty::Cond(parts) => {
            let [a, b, c, d] = &**parts;
            write_ty(m, a, out, depth + 1);
            out.push_str(" extends ");
            write_ty(m, b, out, depth + 1);
            out.push_str(" ? ");
            write_ty(m, c, out, depth + 1);
            out.push_str(" : ");
            write_ty(m, d, out, depth + 1);
        }
        Ty::Opaque(s) => out.push_str(s),
    }
}

fn write_checks(checks: &[Check], out: &mut String) {
    for c in checks {
        let _ = match c {
            Check::Min(n) => write!(out, " @min({})", fmt_num(*n)),
            Check::Max(n) => write!(out, " @max({})", fmt_num(*n)),
            Check::MinLen(n) => write!(out, " @min_len({})", fmt_num(*n)),
            Check::MaxLen(n) => write!(out, " @max_len({})", fmt_num(*n)),
            Check::Pattern(p) => write!(out, " @pattern({:?})", p.source),
        };
    }
}

/// Type object of a built-in primitive.
pub(crate) fn builtin(p: Prim) -> TypeObj {
    TypeObj {
        c: Closure {
            module: super::model::empty_module(),
            ty: super::model::prim(p),
            env: None,
        },
        name: Some(Arc::from(p.name())),
    }
}
