//! Allocation-free fast path of validation, on the raw Lua stack.
//!
//! The safe checker (`check.rs`) reads tables through mlua handles: every field read pushes a
//! Rust string, converts the result into a `Value` (a registry reference for strings and tables)
//! and drops it again — about 100–150 ns per field. This module answers the common question "is
//! this value valid?" directly with the Lua C API inside one [`Lua::exec_raw`] call, so a valid
//! record costs a handful of raw reads. It never builds messages: `Invalid` and `Unknown` both
//! send the caller to the safe checker, which produces the message (or decides the cases this
//! path does not handle: names resolved through globals or module tables, bindings from other
//! modules, computed types).
//!
//! Soundness rules of the raw code (see the `SAFETY` comments):
//! * it runs only inside `exec_raw`, which holds the state's lock, runs the closure in a protected
//!   call and restores the stack afterwards;
//! * it calls only API functions that cannot raise a Lua error: type queries, `lua_rawget*`,
//!   `lua_next` with keys it never modifies (`lua_tolstring` is used on strings only),
//!   `lua_rawlen`, `lua_checkstack` (returns 0 instead of raising), pushes of nil and pops — no
//!   function that allocates Lua objects. Field-name keys are pre-interned Lua strings read from a
//!   per-state table built beforehand with the safe API;
//! * it reserves stack space before pushing and keeps every index it uses absolute.

use std::os::raw::c_int;
use std::sync::Arc;

use mlua::{Lua, RegistryKey, Table, Value, ffi};

use super::super::ast::Lit;
use super::check::MAX_DEPTH;
use super::model::{Check, Closure, Env, Prim, Ty, TypeModule};

/// App data: registry reference of the per-state table `module id → {key strings}`.
struct KeyTables(RegistryKey);

/// Stack slots one level of the walk may push (map key + value, plus headroom).
const SLOTS_PER_LEVEL: c_int = 4;

/// Per-state table of the module's field names as Lua strings (index = `RField::key + 1`).
fn keys_table(lua: &Lua, m: &TypeModule) -> mlua::Result<Table> {
    let existing = lua
        .app_data_ref::<KeyTables>()
        .map(|k| lua.registry_value::<Table>(&k.0));
    let root = match existing {
        Some(t) => t?,
        None => {
            let t = lua.create_table()?;
            let key = lua.create_registry_value(&t)?;
            lua.set_app_data(KeyTables(key));
            t
        }
    };
    let id = m.id as i64;
    if let Value::Table(t) = root.raw_get::<Value>(id)? {
        return Ok(t);
    }
    let t = lua.create_table_with_capacity(m.keys.len(), 0)?;
    for (i, k) in m.keys.iter().enumerate() {
        t.raw_set(i + 1, k.as_str())?;
    }
    root.raw_set(id, &t)?;
    Ok(t)
}

/// Is the fast path worth its fixed cost (one protected call) for this type? Only for tables.
fn worth(m: &TypeModule, ty: &Ty, depth: u32) -> bool {
    if depth > 8 {
        return false;
    }
    match ty {
        Ty::Record { .. } | Ty::Array(_) | Ty::Map(..) | Ty::Tuple(_) => true,
        Ty::Union(ms) | Ty::Intersection(ms) => ms.iter().any(|t| worth(m, t, depth + 1)),
        Ty::Optional(i) | Ty::Annotated(i, _) => worth(m, i, depth + 1),
        Ty::Decl(i, _) => m
            .decls
            .get(*i)
            .is_some_and(|d| worth(m, &d.body, depth + 1)),
        _ => false,
    }
}

/// `Some(true)` when `v` certainly satisfies `c`; `None` when the safe checker must decide.
pub(crate) fn accepts(lua: &Lua, v: &Value, c: &Closure) -> Option<bool> {
    if !worth(&c.module, &c.ty, 0) {
        return None;
    }
    let keys = keys_table(lua, &c.module).ok()?;
    let mut result = None;
    // SAFETY: `exec_raw` locks the state, pushes `v` (index 1) and the key table (index 2), runs
    // the closure in a protected call and restores the stack; the walk below only uses
    // non-raising API functions (module docs) on indices it checked or reserved.
    let done = unsafe {
        lua.exec_raw::<()>((v, keys), |state| {
            let mut w = Walk {
                state,
                keys: 2,
                module: &c.module,
                depth: 0,
            };
            result = w.ty(1, &c.env, &c.ty);
        })
    };
    done.ok()?;
    result
}

struct Walk<'a> {
    state: *mut ffi::lua_State,
    /// Stack index of the key-string table.
    keys: c_int,
    module: &'a Arc<TypeModule>,
    depth: u32,
}

impl Walk<'_> {
    /// Check the value at absolute stack index `idx` against `ty` read with `env`.
    ///
    /// # Safety
    /// Called only from inside [`accepts`]'s `exec_raw` closure with `idx` a valid absolute index.
    unsafe fn ty(&mut self, idx: c_int, env: &Env, ty: &Ty) -> Option<bool> {
        self.depth += 1;
        let r = if self.depth > MAX_DEPTH {
            None
        } else {
            // SAFETY: same contract as this function.
            unsafe { self.ty_inner(idx, env, ty) }
        };
        self.depth -= 1;
        r
    }

    /// # Safety
    /// See [`Walk::ty`].
    unsafe fn ty_inner(&mut self, idx: c_int, env: &Env, ty: &Ty) -> Option<bool> {
        let l = self.state;
        // SAFETY: `idx` is a valid absolute index (caller contract); type queries never raise.
        let t = unsafe { ffi::lua_type(l, idx) };
        match ty {
            Ty::Prim(p) => Some(match p {
                Prim::Nil => t == ffi::LUA_TNIL,
                Prim::Boolean => t == ffi::LUA_TBOOLEAN,
                Prim::Number => t == ffi::LUA_TNUMBER,
                // SAFETY: number queries on a valid index; no conversion of non-numbers.
                Prim::Integer => t == ffi::LUA_TNUMBER && unsafe { is_integral(l, idx) },
                Prim::String => t == ffi::LUA_TSTRING,
                Prim::Any | Prim::Unknown => true,
                Prim::Never => false,
                Prim::Table => t == ffi::LUA_TTABLE,
                Prim::Userdata => t == ffi::LUA_TUSERDATA || t == ffi::LUA_TLIGHTUSERDATA,
                Prim::Thread => t == ffi::LUA_TTHREAD,
                Prim::Error => t != ffi::LUA_TNIL,
            }),
            // SAFETY: literal comparison only reads the value at `idx` (strings via tolstring on
            // a string, which neither allocates nor converts).
            Ty::Lit(lit) => Some(unsafe { lit_matches(l, idx, t, lit) }),
            Ty::Optional(inner) => {
                if t == ffi::LUA_TNIL {
                    Some(true)
                } else {
                    // SAFETY: same index, same contract.
                    unsafe { self.ty(idx, env, inner) }
                }
            }
            Ty::Union(members) => {
                let mut unknown = false;
                for m in members {
                    // SAFETY: same index, same contract.
                    match unsafe { self.ty(idx, env, m) } {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                if unknown { None } else { Some(false) }
            }
            Ty::Intersection(parts) => {
                for p in parts {
                    // SAFETY: same index, same contract.
                    if unsafe { self.ty(idx, env, p) } != Some(true) {
                        return None;
                    }
                }
                Some(true)
            }
            Ty::Array(elem) => {
                if t != ffi::LUA_TTABLE {
                    return Some(false);
                }
                // SAFETY: reserve before pushing; lua_checkstack reports failure instead of raising.
                if unsafe { ffi::lua_checkstack(l, SLOTS_PER_LEVEL) } == 0 {
                    return None;
                }
                // SAFETY: raw length of a table at a valid index.
                let n = unsafe { ffi::lua_rawlen(l, idx) } as ffi::lua_Integer;
                for i in 1..=n {
                    // SAFETY: raw read (no metamethods) pushes one value into reserved space; it
                    // is popped before the next iteration.
                    let r = unsafe {
                        if ffi::lua_rawgeti(l, idx, i) == ffi::LUA_TNIL {
                            ffi::lua_pop(l, 1);
                            continue;
                        }
                        let top = ffi::lua_gettop(l);
                        let r = self.ty(top, env, elem);
                        ffi::lua_pop(l, 1);
                        r
                    };
                    if r != Some(true) {
                        return r;
                    }
                }
                Some(true)
            }
            Ty::Map(kt, vt) => {
                if t != ffi::LUA_TTABLE {
                    return Some(false);
                }
                // SAFETY: as for arrays.
                if unsafe { ffi::lua_checkstack(l, SLOTS_PER_LEVEL) } == 0 {
                    return None;
                }
                // SAFETY: standard lua_next traversal of the table at `idx`: the key is left
                // untouched between calls (only type queries and tolstring on string keys),
                // values are popped after each step, and on early exit both are popped.
                unsafe {
                    ffi::lua_pushnil(l);
                    while ffi::lua_next(l, idx) != 0 {
                        let vtop = ffi::lua_gettop(l);
                        let ktop = vtop - 1;
                        let r = match self.ty(ktop, env, kt) {
                            Some(true) => self.ty(vtop, env, vt),
                            other => other,
                        };
                        if r != Some(true) {
                            ffi::lua_pop(l, 2);
                            return r;
                        }
                        ffi::lua_pop(l, 1);
                    }
                }
                Some(true)
            }
            Ty::Record {
                fields, extends, ..
            } => {
                if t != ffi::LUA_TTABLE {
                    return Some(false);
                }
                // SAFETY: as for arrays.
                if unsafe { ffi::lua_checkstack(l, SLOTS_PER_LEVEL) } == 0 {
                    return None;
                }
                for f in fields {
                    // SAFETY: push the pre-interned key (raw read from the key table), replace it
                    // by the raw field value; one slot, popped below.
                    let r = unsafe {
                        ffi::lua_rawgeti(l, self.keys, ffi::lua_Integer::from(f.key) + 1);
                        let ft = ffi::lua_rawget(l, idx);
                        let top = ffi::lua_gettop(l);
                        let r = if ft == ffi::LUA_TNIL && f.optional {
                            Some(true)
                        } else {
                            match self.ty(top, env, &f.ty) {
                                Some(true) if ft != ffi::LUA_TNIL => checks(l, top, &f.checks),
                                other => other,
                            }
                        };
                        ffi::lua_pop(l, 1);
                        r
                    };
                    if r != Some(true) {
                        return r;
                    }
                }
                for e in extends {
                    // SAFETY: same index, same contract.
                    let r = unsafe { self.ty(idx, env, e) };
                    if r != Some(true) {
                        return r;
                    }
                }
                Some(true)
            }
            Ty::Func { .. } => Some(t == ffi::LUA_TFUNCTION),
            Ty::Tuple(items) => {
                if t != ffi::LUA_TTABLE {
                    return Some(false);
                }
                // SAFETY: as for arrays.
                if unsafe { ffi::lua_checkstack(l, SLOTS_PER_LEVEL) } == 0 {
                    return None;
                }
                for (i, it) in items.iter().enumerate() {
                    // SAFETY: as for array elements.
                    let r = unsafe {
                        ffi::lua_rawgeti(l, idx, i as ffi::lua_Integer + 1);
                        let top = ffi::lua_gettop(l);
                        let r = self.ty(top, env, it);
                        ffi::lua_pop(l, 1);
                        r
                    };
                    if r != Some(true) {
                        return r;
                    }
                }
                Some(true)
            }
            Ty::Decl(i, args) => {
                let d = self.module.decls.get(*i)?;
                if args.is_empty() {
                    // SAFETY: same index, same contract.
                    unsafe { self.ty(idx, &None, &d.body) }
                } else {
                    let bound: Arc<[Closure]> = args
                        .iter()
                        .map(|a| Closure {
                            module: Arc::clone(self.module),
                            ty: Arc::clone(a),
                            env: env.clone(),
                        })
                        .collect();
                    // SAFETY: same index, same contract.
                    unsafe { self.ty(idx, &Some(bound), &d.body) }
                }
            }
            Ty::Param(i, _) => match env {
                Some(e) if *i < e.len() => {
                    let c = &e[*i];
                    if !Arc::ptr_eq(&c.module, self.module) {
                        return None; // keys of another module are not loaded
                    }
                    // SAFETY: same index, same contract.
                    unsafe { self.ty(idx, &c.env, &c.ty) }
                }
                _ => Some(true),
            },
            Ty::Annotated(inner, cs) => {
                // SAFETY: same index, same contract.
                match unsafe { self.ty(idx, env, inner) } {
                    // SAFETY: validators only read the value at `idx`.
                    Some(true) if t != ffi::LUA_TNIL => unsafe { checks(l, idx, cs) },
                    other => other,
                }
            }
            Ty::Opaque(_) => Some(true),
            Ty::Global(_) | Ty::Qualified(..) | Ty::KeyOf(_) | Ty::Index(..) | Ty::Cond(_) => None,
        }
    }
}

/// # Safety
/// `idx` must be a valid index holding a number.
unsafe fn is_integral(l: *mut ffi::lua_State, idx: c_int) -> bool {
    // SAFETY: caller contract; both calls only read the number.
    unsafe {
        if ffi::lua_isinteger(l, idx) != 0 {
            return true;
        }
        let f = ffi::lua_tonumberx(l, idx, std::ptr::null_mut());
        f.is_finite() && f.fract() == 0.0
    }
}

/// Bytes of the string at `idx`.
///
/// # Safety
/// `idx` must be a valid index holding a string (so `lua_tolstring` neither converts nor
/// allocates); the slice is valid while the string stays on the stack.
unsafe fn str_bytes<'x>(l: *mut ffi::lua_State, idx: c_int) -> &'x [u8] {
    let mut len = 0usize;
    // SAFETY: caller contract; Lua strings are immutable and anchored by the stack slot.
    unsafe {
        let p = ffi::lua_tolstring(l, idx, &mut len);
        if p.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }
    }
}

/// # Safety
/// `idx` must be a valid index and `t` its type.
unsafe fn lit_matches(l: *mut ffi::lua_State, idx: c_int, t: c_int, lit: &Lit) -> bool {
    // SAFETY: caller contract; reads only, tolstring on strings only.
    unsafe {
        match lit {
            Lit::Nil => t == ffi::LUA_TNIL,
            Lit::Bool(b) => t == ffi::LUA_TBOOLEAN && (ffi::lua_toboolean(l, idx) != 0) == *b,
            Lit::Int(i) => {
                t == ffi::LUA_TNUMBER
                    && if ffi::lua_isinteger(l, idx) != 0 {
                        ffi::lua_tointegerx(l, idx, std::ptr::null_mut()) == *i
                    } else {
                        ffi::lua_tonumberx(l, idx, std::ptr::null_mut()) == *i as f64
                    }
            }
            Lit::Float(f) => {
                t == ffi::LUA_TNUMBER && ffi::lua_tonumberx(l, idx, std::ptr::null_mut()) == *f
            }
            Lit::Str(s) => t == ffi::LUA_TSTRING && str_bytes(l, idx) == s.as_slice(),
        }
    }
}

/// Validators on the (non-nil) value at `idx`; `Some(false)` sends the caller to the safe path
/// (which also reports an invalid pattern).
///
/// # Safety
/// `idx` must be a valid index.
unsafe fn checks(l: *mut ffi::lua_State, idx: c_int, cs: &[Check]) -> Option<bool> {
    // SAFETY: caller contract; reads only (numbers, raw lengths, string bytes of strings).
    unsafe {
        let t = ffi::lua_type(l, idx);
        let num =
            || (t == ffi::LUA_TNUMBER).then(|| ffi::lua_tonumberx(l, idx, std::ptr::null_mut()));
        let len = || {
            (t == ffi::LUA_TSTRING || t == ffi::LUA_TTABLE).then(|| ffi::lua_rawlen(l, idx) as f64)
        };
        for c in cs {
            let ok = match c {
                Check::Min(n) => num().is_none_or(|x| x >= *n),
                Check::Max(n) => num().is_none_or(|x| x <= *n),
                Check::MinLen(n) => len().is_none_or(|x| x >= *n),
                Check::MaxLen(n) => len().is_none_or(|x| x <= *n),
                Check::Pattern(p) => {
                    t != ffi::LUA_TSTRING
                        || p.regex().is_ok_and(|re| re.is_match(str_bytes(l, idx)))
                }
            };
            if !ok {
                return Some(false);
            }
        }
        Some(true)
    }
}
