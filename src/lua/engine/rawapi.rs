//! Raw Lua C API helpers for the engine's hot paths (`process.send`, channel operations).
//!
//! mlua's callback machinery costs a few thousand instructions per call (argument values are
//! turned into registry references, results collected into a `MultiValue`); functions called
//! for every message are therefore plain `lua_CFunction`s. These helpers convert stack values
//! to [`wippy_rt::Value`] directly for scalars (nil, booleans, numbers, strings) and fall back
//! to [`crate::lua::convert`] through mlua for tables and userdata, and build `nil, err`
//! results through mlua (cold path).
//!
//! Discipline: a raw function may raise (longjmp) only while no Rust value with a destructor
//! is live in its frame; the helpers here never raise.

use std::ffi::{CStr, c_int, c_void};

use mlua::{Lua, ffi};
use wippy_rt::{Bytes, Error, Value};

use super::core::with_core;
use crate::lua::convert;
use crate::lua::modules::errors;

/// Size of a userdata header without user values (`Udata0`, `lobject.h`, 64-bit): the Lua
/// allocation of a [`new_block`] is this plus the block.
const UDATA0_HEADER: usize = 32;

/// Allocations up to this size are rounded up to a power of two by [`new_block`], larger ones
/// to a multiple of 16.
///
/// mlua's allocator asks the global allocator (mimalloc) for 16-byte alignment. mimalloc
/// serves an aligned request from its fast path only while the size class's page has a free
/// block that happens to be aligned; otherwise a size that is not a power of two takes the
/// over-allocating path — and since every Lua allocation is aligned, nothing ever collects
/// that page's freed blocks again, so every later allocation of that size takes the slow
/// path too (measured: the message and payload blocks of a ping-pong). Power-of-two sizes
/// are "naturally aligned" for mimalloc and fall back to its regular allocation, which does.
const POW2_MAX: usize = 256;

/// Push a new full userdata with no user values whose block has at least `size` bytes (the
/// Lua allocation rounded up, see [`POW2_MAX`]), and return the block.
///
/// # Safety
/// `l` is a live thread with room for one value; raises on a memory error (callers hold no
/// Rust resources or run protected).
pub(crate) unsafe fn new_block(l: *mut ffi::lua_State, size: usize) -> *mut u8 {
    let total = size + UDATA0_HEADER;
    let total = if total <= POW2_MAX {
        total.next_power_of_two()
    } else {
        total.div_ceil(16) * 16
    };
    // SAFETY: forwarded.
    unsafe { ffi::lua_newuserdatauv(l, total - UDATA0_HEADER, 0) as *mut u8 }
}

/// The bytes of the string at `idx` (only call on `LUA_TSTRING` values: no conversion, no
/// allocation). Valid while the value stays on the stack.
pub(crate) unsafe fn str_at<'a>(l: *mut ffi::lua_State, idx: c_int) -> &'a [u8] {
    // SAFETY: caller guarantees a string at `idx`; Lua strings are immutable and live as long
    // as they are on the stack.
    unsafe {
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, idx, &mut len);
        if p.is_null() {
            return &[];
        }
        std::slice::from_raw_parts(p as *const u8, len)
    }
}

/// The type name of the value at `idx` (for argument errors).
pub(crate) unsafe fn type_name(l: *mut ffi::lua_State, idx: c_int) -> String {
    // SAFETY: lua_typename returns a static C string.
    unsafe {
        let t = ffi::lua_type(l, idx);
        if t == ffi::LUA_TNONE {
            return "no value".into();
        }
        std::ffi::CStr::from_ptr(ffi::lua_typename(l, t))
            .to_string_lossy()
            .into_owned()
    }
}

/// The transfer value of a scalar (nil, boolean, number, string — or a value with no transfer
/// form: functions, threads, light userdata become nil) at `idx`; `None` for tables and
/// userdata, which need [`value_at`]. Never raises, never touches mlua.
pub(crate) unsafe fn scalar_at(l: *mut ffi::lua_State, idx: c_int) -> Option<Value> {
    // SAFETY: reading scalars does not allocate (strings are read, never converted).
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TNIL | ffi::LUA_TNONE => Some(Value::Nil),
            ffi::LUA_TBOOLEAN => Some(Value::Bool(ffi::lua_toboolean(l, idx) != 0)),
            ffi::LUA_TNUMBER => Some(if ffi::lua_isinteger(l, idx) != 0 {
                Value::Int(ffi::lua_tointegerx(l, idx, std::ptr::null_mut()))
            } else {
                Value::Float(ffi::lua_tonumberx(l, idx, std::ptr::null_mut()))
            }),
            ffi::LUA_TSTRING => Some(Value::Str(Bytes::from_slice(str_at(l, idx)))),
            ffi::LUA_TFUNCTION | ffi::LUA_TTHREAD | ffi::LUA_TLIGHTUSERDATA => Some(Value::Nil),
            _ => None,
        }
    }
}

/// Convert the stack value at `idx` of `l` to a transferable value (deep copy for tables, via
/// `convert::from_lua`).
pub(crate) unsafe fn value_at(
    lua: &Lua,
    l: *mut ffi::lua_State,
    idx: c_int,
) -> Result<Value, Error> {
    // SAFETY: scalars are read in place; other values are copied to the main stack and
    // popped into an mlua value.
    unsafe {
        match scalar_at(l, idx) {
            Some(v) => Ok(v),
            None => {
                let v = lua_value_at(lua, l, idx).map_err(|e| errors::lua_error_to_rt(&e))?;
                convert::from_lua(&v)
            }
        }
    }
}

pub(crate) use crate::lua::vm::stack::{push_value as push_lua_value, value_at as lua_value_at};

/// Push `nil, <error object for e>` onto `l` and return 2 (the usual failure result). On a
/// failure to build the object, pushes the message string instead.
pub(crate) unsafe fn push_nil_err(l: *mut ffi::lua_State, e: Error) -> c_int {
    // SAFETY: pushes exactly two values; never raises.
    unsafe {
        ffi::lua_checkstack(l, 3);
        ffi::lua_pushnil(l);
        let fallback: Option<String> = {
            let lua = with_core(|c| c.lua.clone()).ok();
            let pushed = match &lua {
                Some(lua) => match errors::error_value(lua, e.clone()) {
                    Ok(v) => push_lua_value(lua, l, &v).is_ok(),
                    Err(_) => false,
                },
                None => false,
            };
            (!pushed).then(|| e.message().to_string())
        };
        drop(e);
        if let Some(msg) = fallback {
            ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
        }
        2
    }
}

/// Raise an owned message with the caller's position. Never returns; `msg` is copied to Lua
/// and dropped before raising (no destructor is skipped by the longjmp).
#[cold]
pub(crate) unsafe fn raise_owned(l: *mut ffi::lua_State, msg: String) -> c_int {
    // SAFETY: pushing strings and raising; nothing with a destructor is live when raising.
    unsafe {
        ffi::luaL_where(l, 1);
        ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
        drop(msg);
        ffi::lua_concat(l, 2);
        ffi::lua_error(l)
    }
}

/// The two metatables of a raw userdata object kind: *plain* (the value lives in Lua user
/// values, no finalizer) and *owned* (Rust data in the block, `__gc` frees it) — Message and
/// Payload objects (decisions 0090, 0105). Both share one method table; every method and
/// `__tostring` is a C closure whose upvalues 1 and 2 are the plain and the owned metatable
/// (so `self` checks are two raw compares), plus what [`TwinMetatables::method_upvalues`]
/// pushes. Both are built together on first use in a state and kept in the registry under
/// the addresses in [`TwinMetatables::keys`].
pub(crate) struct TwinMetatables {
    /// Registry keys of the plain and the owned metatable (addresses of two statics).
    pub keys: (&'static u8, &'static u8),
    /// `__name`.
    pub name: &'static CStr,
    /// The methods (`__index` table).
    pub methods: &'static [(&'static CStr, ffi::lua_CFunction)],
    /// `__tostring`.
    pub tostring: ffi::lua_CFunction,
    /// `__gc` of the owned metatable.
    pub gc: ffi::lua_CFunction,
    /// Pushes the extra upvalues of method `name` (after the two metatables); returns how
    /// many it pushed.
    pub method_upvalues: unsafe fn(*mut ffi::lua_State, &CStr) -> c_int,
    /// Array slots reserved in each metatable, filled by `init(l, plain_mt, owned_mt)`.
    pub array: c_int,
    /// Adds fields to both metatables right after they are created (absolute indices).
    pub init: unsafe fn(*mut ffi::lua_State, c_int, c_int),
}

impl TwinMetatables {
    /// No extra method upvalues.
    pub unsafe fn no_upvalues(_: *mut ffi::lua_State, _: &CStr) -> c_int {
        0
    }

    /// No extra metatable fields.
    pub unsafe fn no_init(_: *mut ffi::lua_State, _: c_int, _: c_int) {}

    /// Push the plain or the owned metatable, creating both on first use in this state.
    ///
    /// # Safety
    /// `l` is a live thread; may raise a memory error (callers hold no Rust resources or run
    /// protected).
    pub unsafe fn push(&self, l: *mut ffi::lua_State, plain: bool) {
        // SAFETY: registry access with light userdata keys; the tables are complete before
        // they are stored; the hooks follow the Lua API rules (their contract).
        unsafe {
            let kp = self.keys.0 as *const u8 as *const c_void;
            let ko = self.keys.1 as *const u8 as *const c_void;
            if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, if plain { kp } else { ko })
                == ffi::LUA_TTABLE
            {
                return;
            }
            ffi::lua_pop(l, 1);
            ffi::lua_checkstack(l, 8);
            ffi::lua_createtable(l, self.array, 4); // plain
            ffi::lua_createtable(l, self.array, 5); // owned
            let mt_plain = ffi::lua_absindex(l, -2);
            let mt_owned = ffi::lua_absindex(l, -1);
            (self.init)(l, mt_plain, mt_owned);
            ffi::lua_createtable(l, 0, self.methods.len() as c_int);
            for (name, f) in self.methods {
                ffi::lua_pushvalue(l, mt_plain);
                ffi::lua_pushvalue(l, mt_owned);
                let n = 2 + (self.method_upvalues)(l, name);
                ffi::lua_pushcclosure(l, *f, n);
                ffi::lua_setfield(l, -2, name.as_ptr());
            }
            let index = ffi::lua_absindex(l, -1);
            for mt in [mt_plain, mt_owned] {
                ffi::lua_pushvalue(l, index);
                ffi::lua_setfield(l, mt, c"__index".as_ptr());
                ffi::lua_pushvalue(l, mt_plain);
                ffi::lua_pushvalue(l, mt_owned);
                ffi::lua_pushcclosure(l, self.tostring, 2);
                ffi::lua_setfield(l, mt, c"__tostring".as_ptr());
                ffi::lua_pushstring(l, self.name.as_ptr());
                ffi::lua_setfield(l, mt, c"__name".as_ptr());
                ffi::lua_pushboolean(l, 0);
                ffi::lua_setfield(l, mt, c"__metatable".as_ptr());
            }
            ffi::lua_pop(l, 1);
            ffi::lua_pushcfunction(l, self.gc);
            ffi::lua_setfield(l, mt_owned, c"__gc".as_ptr());
            ffi::lua_pushvalue(l, mt_plain);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, kp);
            ffi::lua_pushvalue(l, mt_owned);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, ko);
            // Leave only the requested one.
            if plain {
                ffi::lua_pop(l, 1);
            } else {
                ffi::lua_remove(l, -2);
            }
        }
    }
}
