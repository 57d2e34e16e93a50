//! Lazily populated library tables.
//!
//! Every live Lua process owns a state, so a library table built eagerly in every state is
//! paid per idle process: a 17-function table (`string`, the `process` module) costs ~1.5 KB
//! of nodes and interned names. A *lazy table* starts empty; its metatable's `__index` (a C
//! closure over a static [`Spec`]) finds the field by name, builds it, stores it with a raw
//! set and returns it, so a field costs memory only once it was read, and reads after the
//! first are plain table hits (no metamethod).
//!
//! Behaviour seen from Lua is that of the eager table: reads, method calls, `pairs` (the
//! `__pairs` metamethod fills every field first, then iterates with `next`), read-only-ness
//! (a read-only table stays read-only: the loader clears the flag only around its own raw
//! set). Differences, accepted: `rawget`/`next` on a field never read return nil, and
//! `getmetatable(t)` returns the (read-only) metatable instead of nil.
//!
//! Invariants: a lazy table holds only fields of its spec (plus what Rust set on it before
//! it was frozen); a field is built at most once per table; the spec outlives every state
//! (`&'static`), so the light-userdata upvalue never dangles.

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

use mlua::ffi;

use super::readonly::{lua_isreadonly, lua_setreadonly};

/// How one field's value is made.
pub enum Field {
    /// A light C function.
    Fn(ffi::lua_CFunction),
    /// An integer constant.
    Int(i64),
    /// A string constant.
    Str(&'static str),
    /// The first result of calling this C function with no arguments (it may raise like any
    /// Lua function); a table it returns is made read-only.
    Call(ffi::lua_CFunction),
}

/// The fields of a lazy table, by name.
pub struct Spec {
    /// What the table is (for diagnostics).
    pub name: &'static str,
    /// Name → how to make the value.
    pub fields: &'static [(&'static str, Field)],
    /// Fields added once by another component at install time ([`Spec::extend`]); they win
    /// over `fields` of the same name.
    more: OnceLock<&'static [(&'static str, Field)]>,
}

impl Spec {
    /// A spec with `fields` (usable in a `static`).
    pub const fn new(name: &'static str, fields: &'static [(&'static str, Field)]) -> Spec {
        Spec {
            name,
            fields,
            more: OnceLock::new(),
        }
    }

    /// Add `more` fields (once per program; false if already extended). Tables built before
    /// see the new fields too (lookups read the spec).
    pub fn extend(&self, more: &'static [(&'static str, Field)]) -> bool {
        self.more.set(more).is_ok()
    }

    fn all(&self) -> impl Iterator<Item = &(&'static str, Field)> {
        self.more
            .get()
            .into_iter()
            .flat_map(|m| m.iter())
            .chain(self.fields.iter())
    }

    fn find(&self, key: &[u8]) -> Option<&Field> {
        self.all()
            .find(|(n, _)| n.as_bytes() == key)
            .map(|(_, f)| f)
    }
}

/// Push a new, empty lazy table for `spec` (its metatable — `__index` a C closure over the
/// spec, `__pairs` a light C function — is built once per state and kept in the registry
/// under the spec's address).
///
/// # Safety
/// `l` must be a live Lua thread with room for 4 stack slots; may raise a memory error.
pub unsafe fn push(l: *mut ffi::lua_State, spec: &'static Spec) {
    // SAFETY: plain Lua API calls on a live thread; the registry key is the spec's address,
    // unique per spec for the life of the program.
    unsafe {
        ffi::lua_createtable(l, 0, 0);
        let key = spec as *const Spec as *const c_void;
        if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key) != ffi::LUA_TTABLE {
            ffi::lua_pop(l, 1);
            ffi::lua_createtable(l, 0, 2);
            ffi::lua_pushlightuserdata(l, key as *mut c_void);
            ffi::lua_pushcclosure(l, lazy_index, 1);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_pushcfunction(l, lazy_pairs);
            ffi::lua_setfield(l, -2, c"__pairs".as_ptr());
            lua_setreadonly(l, -1, 1);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key);
        }
        ffi::lua_setmetatable(l, -2);
    }
}

/// Push the value of `f`.
unsafe fn push_field(l: *mut ffi::lua_State, f: &Field) {
    // SAFETY: live thread (callers' contract); `Call` functions are C functions.
    unsafe {
        match f {
            Field::Fn(c) => ffi::lua_pushcfunction(l, *c),
            Field::Int(i) => ffi::lua_pushinteger(l, *i as ffi::lua_Integer),
            Field::Str(s) => {
                ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
            }
            Field::Call(c) => {
                ffi::lua_pushcfunction(l, *c);
                ffi::lua_call(l, 0, 1);
                if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
                    lua_setreadonly(l, -1, 1);
                }
            }
        }
    }
}

/// `t[k] = v` with a raw set on the table at `t` (absolute index), keeping its read-only
/// flag; `k` and `v` are the two values on top of the stack and are popped.
unsafe fn raw_store(l: *mut ffi::lua_State, t: c_int) {
    // SAFETY: `t` is a table (callers check); the flag is restored right after the set (a
    // memory error in between leaves a writable table in a state that is being torn down).
    unsafe {
        let ro = lua_isreadonly(l, t);
        if ro != 0 {
            lua_setreadonly(l, t, 0);
        }
        ffi::lua_rawset(l, t);
        if ro != 0 {
            lua_setreadonly(l, t, 1);
        }
    }
}

unsafe fn spec_of(l: *mut ffi::lua_State) -> &'static Spec {
    // SAFETY: the upvalue was set by `push` to the address of a `&'static Spec`.
    unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Spec) }
}

/// The spec of the lazy table at index 1, if it is one: its metatable's `__index` has a
/// light-userdata first upvalue `p` and the registry maps `p` to that same metatable (only
/// [`push`] stores such entries, so `p` is a `&'static Spec`).
unsafe fn spec_of_table(l: *mut ffi::lua_State) -> Option<&'static Spec> {
    // SAFETY: API reads on a live frame; the stack is restored before returning.
    unsafe {
        let top = ffi::lua_gettop(l);
        let mut spec = None;
        if ffi::lua_getmetatable(l, 1) != 0
            && ffi::lua_getfield(l, -1, c"__index".as_ptr()) == ffi::LUA_TFUNCTION
            && !ffi::lua_getupvalue(l, -1, 1).is_null()
            && ffi::lua_type(l, -1) == ffi::LUA_TLIGHTUSERDATA
        {
            let p = ffi::lua_touserdata(l, -1);
            ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, p);
            if ffi::lua_rawequal(l, -1, top + 1) != 0 {
                spec = Some(&*(p as *const Spec));
            }
        }
        ffi::lua_settop(l, top);
        spec
    }
}

/// `__index(t, k)`: build, store and return field `k`, or nil.
unsafe extern "C-unwind" fn lazy_index(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua as a metamethod with (t, k); only API calls on that frame.
    unsafe {
        if ffi::lua_type(l, 1) != ffi::LUA_TTABLE || ffi::lua_type(l, 2) != ffi::LUA_TSTRING {
            ffi::lua_pushnil(l);
            return 1;
        }
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, 2, &mut len);
        let key = std::slice::from_raw_parts(p as *const u8, len);
        let Some(f) = spec_of(l).find(key) else {
            ffi::lua_pushnil(l);
            return 1;
        };
        ffi::lua_settop(l, 2);
        push_field(l, f); // 3 = v
        ffi::lua_pushvalue(l, 2);
        ffi::lua_pushvalue(l, 3);
        raw_store(l, 1);
        1
    }
}

/// `next` for `__pairs`.
unsafe extern "C-unwind" fn lazy_next(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: (t, k) arguments from the generic for; `lua_next` raises on a bad key.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        ffi::lua_settop(l, 2);
        if ffi::lua_next(l, 1) != 0 {
            2
        } else {
            ffi::lua_pushnil(l);
            1
        }
    }
}

/// `__pairs(t)`: build every missing field, then iterate with `next`.
unsafe extern "C-unwind" fn lazy_pairs(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `pairs` with the table at 1; stack use is bounded (4 slots).
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        ffi::lua_settop(l, 1);
        let fields = spec_of_table(l).into_iter().flat_map(|s| s.all());
        for (name, f) in fields {
            ffi::lua_pushlstring(l, name.as_ptr() as *const _, name.len());
            if ffi::lua_rawget(l, 1) == ffi::LUA_TNIL {
                ffi::lua_pop(l, 1);
                ffi::lua_pushlstring(l, name.as_ptr() as *const _, name.len());
                push_field(l, f);
                raw_store(l, 1);
            } else {
                ffi::lua_pop(l, 1);
            }
        }
        ffi::lua_pushcfunction(l, lazy_next);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_pushnil(l);
        3
    }
}

/// The (string key, C function value) pairs of the table at `t`.
///
/// # Safety
/// `l` is a live state and `t` an absolute index of a table.
pub unsafe fn c_functions(l: *mut ffi::lua_State, t: c_int) -> Vec<(String, ffi::lua_CFunction)> {
    let mut out = Vec::new();
    // SAFETY: a plain `lua_next` walk; keys are only read with `lua_tolstring` when they are
    // strings (no conversion that would confuse `lua_next`).
    unsafe {
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            if ffi::lua_type(l, -2) == ffi::LUA_TSTRING {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, -2, &mut len);
                let name = String::from_utf8_lossy(std::slice::from_raw_parts(p as *const u8, len));
                if let Some(f) = ffi::lua_tocfunction(l, -1) {
                    out.push((name.into_owned(), f));
                }
            }
            ffi::lua_pop(l, 1);
        }
    }
    out
}
