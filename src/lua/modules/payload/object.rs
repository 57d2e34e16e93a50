//! Payload objects: the Lua userdata behind `payload.new`, `msg:payload()`, `:transcode()` and
//! the results of `funcs.async` (spec `lua-api.md` §3.8.10).
//!
//! One is created for every message payload a process reads, so — like `process.Message`
//! (decision 0090) — it is a raw userdata built to cost the collector as little as possible:
//!
//! * **plain** payloads — a `lua/any`/`golang/any` scalar (nil, boolean, number, a string of at
//!   most [`MAX_INLINE_STR`] bytes), or encoded bytes of at most that length — keep their data
//!   as a Lua value in user value 1 and own no Rust memory: the block is a small header and
//!   the metatable has no `__gc` (no finalizer pass, no resurrection cycle). `:data()` of a
//!   scalar returns that value as it is;
//! * **owned** payloads (tables, errors, long strings and encodings) keep the Rust
//!   [`Payload`] inline in the block and a second metatable with `__gc` drops it.
//!
//! Both are the same type to Lua: `__name` `Payload` (as the mlua userdata it replaces), `tostring(p)` →
//! `payload{format=<f>}`, the protected metatable, and the methods `get_format`, `data`,
//! `unmarshal`, `transcode`. Every `msg:payload()` call makes a new object (as before); a
//! payload object holds its own copy of the data, so it outlives the message it came from.
//!
//! Methods are C closures whose two upvalues are the two metatables: checking `self` is
//! `getmetatable` plus two raw comparisons. Owned blocks are built in protected mode (a memory
//! error becomes a Lua error, never an abort); the Rust payload moves into the block in the
//! very last, non-raising step. Plain blocks hold no Rust data, so the fast path that copies a
//! message's scalar into a new payload ([`push_plain_uv`]) allocates unprotected.

use std::ffi::{c_int, c_void};
use std::ptr;

use mlua::{Lua, ffi};
use wippy_rt::{Bytes, Error, Value};

use super::{BYTES, Data, ERROR, FORMATS, GOLANG, LUA, Payload, STRING};
use crate::lua::convert;
use crate::lua::engine::rawapi;
use crate::lua::modules::errors;

const MAGIC: u32 = 0x5750_4c44;
/// Registry keys (addresses) of the plain and owned metatables.
static MT_PLAIN: u8 = 0;
static MT_OWNED: u8 = 0;

/// Longest string (scalar or encoded bytes) a plain payload keeps as a Lua value: Lua's
/// short-string limit (`LUAI_MAXSHORTLEN`), below which strings are interned — pushing one is
/// a hash lookup. Longer data stays in Rust (shared, never copied into Lua until read).
pub const MAX_INLINE_STR: usize = 40;

/// User value slot of a plain payload's data.
const UV_DATA: c_int = 1;

/// The header every payload block starts with.
#[repr(C)]
struct Head {
    magic: u32,
    /// Index into [`FORMATS`].
    format: u8,
    owned: bool,
}

/// An owned block: header plus the payload (dropped by `__gc`).
#[repr(C)]
struct Owned {
    head: Head,
    payload: Payload,
}

/// Index of `lua/any` in [`FORMATS`] (checked at compile time).
const LUA_INDEX: u8 = 5;
const _: () = assert!(const_eq(FORMATS[LUA_INDEX as usize], LUA));

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

fn format_index(f: &str) -> u8 {
    FORMATS
        .iter()
        .position(|x| *x == f)
        .unwrap_or(LUA_INDEX as usize) as u8
}

/// Whether `format` holds a live value (else encoded bytes).
fn is_value_format(format: &str) -> bool {
    matches!(format, LUA | GOLANG | ERROR)
}

/// True when `p` can be a plain payload (see the module docs).
fn inlinable(p: &Payload) -> bool {
    match &p.data {
        Data::Value(v) => match v {
            Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) => true,
            Value::Str(b) => b.len() <= MAX_INLINE_STR,
            _ => false,
        },
        Data::Encoded(b) => b.len() <= MAX_INLINE_STR,
    }
}

/// The plain and owned Payload metatables (built together on first use in a state).
static METATABLES: rawapi::TwinMetatables = rawapi::TwinMetatables {
    keys: (&MT_PLAIN, &MT_OWNED),
    name: c"Payload",
    methods: &[
        (c"get_format", p_get_format as ffi::lua_CFunction),
        (c"data", p_data),
        (c"unmarshal", p_data),
        (c"transcode", p_transcode),
    ],
    tostring: p_tostring,
    gc: p_gc,
    method_upvalues: rawapi::TwinMetatables::no_upvalues,
    array: 0,
    init: rawapi::TwinMetatables::no_init,
};

/// Push the plain or the owned metatable, creating both on first use in this state.
unsafe fn push_metatable(l: *mut ffi::lua_State, plain: bool) {
    // SAFETY: forwarded contract (live thread; may raise a memory error).
    unsafe { METATABLES.push(l, plain) }
}

/// Push the plain payload metatable (creating both on first use).
///
/// # Safety
/// `l` is a live thread; may raise a memory error (callers hold no Rust resources or run
/// protected).
pub(crate) unsafe fn push_plain_metatable(l: *mut ffi::lua_State) {
    // SAFETY: forwarded.
    unsafe { push_metatable(l, true) }
}

/// Push a new plain block of `format` whose data is the value at `src` (absolute index),
/// without protection: only call while no Rust value with a destructor is live in any frame
/// up to the enclosing Lua call (it raises on a memory error). `mt` is the index of the plain
/// metatable, or 0 to look it up.
unsafe fn new_plain(l: *mut ffi::lua_State, format: u8, src: c_int, mt: c_int) {
    // SAFETY: the block is plain data; the metatable is set after the user value.
    unsafe {
        let h = ffi::lua_newuserdatauv(l, std::mem::size_of::<Head>(), 1) as *mut Head;
        ptr::write(
            h,
            Head {
                magic: MAGIC,
                format,
                owned: false,
            },
        );
        ffi::lua_pushvalue(l, src);
        ffi::lua_setiuservalue(l, -2, UV_DATA);
        if mt == 0 {
            push_metatable(l, true);
        } else {
            ffi::lua_pushvalue(l, mt);
        }
        ffi::lua_setmetatable(l, -2);
    }
}

/// Push a `lua/any` payload whose data is user value `uv` of the userdata at `obj`: the
/// fast path of `msg:payload()` for scalars already held as Lua values (no conversion, no
/// Rust allocation). `mt` is the plain metatable ([`push_plain_metatable`]), e.g. an upvalue
/// index.
///
/// # Safety
/// `l` is the running thread of a C function with room for 3 values; the user value is a
/// scalar accepted by a plain payload; `mt` holds the plain payload metatable; no Rust value
/// with a destructor may be live in the caller's frames (raises on a memory error).
pub(crate) unsafe fn push_plain_uv(l: *mut ffi::lua_State, obj: c_int, uv: c_int, mt: c_int) {
    // SAFETY: see the function docs.
    unsafe {
        let obj = ffi::lua_absindex(l, obj);
        let mt = if mt <= ffi::LUA_REGISTRYINDEX {
            mt
        } else {
            ffi::lua_absindex(l, mt)
        };
        ffi::lua_getiuservalue(l, obj, uv);
        let src = ffi::lua_absindex(l, -1);
        new_plain(l, LUA_INDEX, src, mt);
        ffi::lua_remove(l, src);
    }
}

/// Push a Lua scalar for an [`inlinable`] payload's data.
unsafe fn push_inline_data(l: *mut ffi::lua_State, d: &Data) {
    // SAFETY: plain pushes (strings may raise a memory error; callers run protected).
    unsafe {
        match d {
            Data::Value(Value::Bool(b)) => ffi::lua_pushboolean(l, *b as c_int),
            Data::Value(Value::Int(i)) => ffi::lua_pushinteger(l, *i),
            Data::Value(Value::Float(f)) => ffi::lua_pushnumber(l, *f),
            Data::Value(Value::Str(b)) | Data::Encoded(b) => {
                ffi::lua_pushlstring(l, b.as_bytes().as_ptr() as *const _, b.len());
            }
            _ => ffi::lua_pushnil(l),
        }
    }
}

/// Protected constructor: argument 1 is a light userdata holding the `*mut Option<Payload>`.
unsafe extern "C-unwind" fn construct(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called through lua_pcall by `push_payload`, which keeps the payload alive and
    // owned until we return. Everything that may raise happens before the metatable is set
    // and while the block owns nothing; the last step moves the payload in and cannot raise.
    unsafe {
        let slot = ffi::lua_touserdata(l, 1) as *mut Option<Payload>;
        let Some(p) = (*slot).as_ref() else {
            ffi::lua_pushnil(l);
            return 1;
        };
        let format = format_index(p.format);
        if inlinable(p) {
            push_inline_data(l, &p.data);
            let src = ffi::lua_absindex(l, -1);
            new_plain(l, format, src, 0);
            return 1;
        }
        let b = ffi::lua_newuserdatauv(l, std::mem::size_of::<Owned>(), 0) as *mut Head;
        ptr::write(
            b,
            Head {
                magic: 0, // not a payload until the data is in
                format,
                owned: true,
            },
        );
        push_metatable(l, false);
        ffi::lua_setmetatable(l, -2);
        let p = (*slot).take().expect("checked above");
        ptr::write(ptr::addr_of_mut!((*(b as *mut Owned)).payload), p);
        (*b).magic = MAGIC;
        1
    }
}

/// Push a Payload object for `p` onto `l` (protected). On failure nothing is pushed and the
/// error message is returned.
///
/// # Safety
/// `l` is a live thread of a state.
pub(crate) unsafe fn push_payload(l: *mut ffi::lua_State, p: Payload) -> Result<(), String> {
    let mut slot = Some(p);
    // SAFETY: `slot` lives on this frame for the whole protected call; `construct` only takes
    // the payload in its final, non-raising step.
    unsafe {
        if ffi::lua_checkstack(l, 8) == 0 {
            return Err("stack overflow".into());
        }
        ffi::lua_pushcfunction(l, construct);
        ffi::lua_pushlightuserdata(l, &mut slot as *mut Option<Payload> as *mut c_void);
        if ffi::lua_pcall(l, 1, 1, 0) != ffi::LUA_OK {
            let msg = String::from_utf8_lossy(rawapi::str_at(l, -1)).into_owned();
            ffi::lua_pop(l, 1);
            return Err(msg);
        }
        Ok(())
    }
}

/// A Lua Payload object for `p`.
pub fn payload_value(lua: &Lua, p: Payload) -> mlua::Result<mlua::Value> {
    lua.exec_raw_lua(|raw| {
        // SAFETY: push on mlua's current stack and pop it as a value (same state).
        unsafe {
            push_payload(raw.state(), p).map_err(mlua::Error::runtime)?;
            Ok(raw.pop_value())
        }
    })
}

/// What the value at `idx` is, if it is a payload object.
enum Kind<'a> {
    Plain(&'a Head),
    Owned(&'a Owned),
}

/// The payload object at `idx`, checked against the metatables (given as indices).
unsafe fn block_at<'a>(
    l: *mut ffi::lua_State,
    idx: c_int,
    mt_plain: c_int,
    mt_owned: c_int,
) -> Option<Kind<'a>> {
    // SAFETY: metatable identity check before reading the block.
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TUSERDATA || ffi::lua_getmetatable(l, idx) == 0 {
            return None;
        }
        let plain = ffi::lua_rawequal(l, -1, mt_plain) != 0;
        let owned = !plain && ffi::lua_rawequal(l, -1, mt_owned) != 0;
        ffi::lua_pop(l, 1);
        if !plain && !owned {
            return None;
        }
        let h = ffi::lua_touserdata(l, idx) as *const Head;
        if (*h).magic != MAGIC || (*h).owned != owned {
            return None;
        }
        Some(if owned {
            Kind::Owned(&*(h as *const Owned))
        } else {
            Kind::Plain(&*h)
        })
    }
}

/// `self` of a method (argument 1; upvalues 1 and 2 are the metatables).
unsafe fn self_at<'a>(l: *mut ffi::lua_State) -> Option<Kind<'a>> {
    // SAFETY: only called from the closures built in `push_metatable`.
    unsafe { block_at(l, 1, ffi::lua_upvalueindex(1), ffi::lua_upvalueindex(2)) }
}

/// The Payload at `idx` (a copy), if the value there is a payload object. Needs the
/// metatables to exist (they do once any payload was made).
pub(crate) unsafe fn payload_at(l: *mut ffi::lua_State, idx: c_int) -> Option<Payload> {
    // SAFETY: stack restored; plain data read back from its user value.
    unsafe {
        if ffi::lua_checkstack(l, 3) == 0 {
            return None;
        }
        let idx = ffi::lua_absindex(l, idx);
        let kp = &MT_PLAIN as *const u8 as *const c_void;
        let ko = &MT_OWNED as *const u8 as *const c_void;
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, kp);
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, ko);
        let top = ffi::lua_gettop(l);
        let p = match block_at(l, idx, top - 1, top) {
            Some(Kind::Owned(o)) => Some(o.payload.clone()),
            Some(Kind::Plain(h)) => Some(plain_payload(l, idx, h)),
            None => None,
        };
        ffi::lua_pop(l, 2);
        p
    }
}

/// The format string of a block.
fn format_of(h: &Head) -> &'static str {
    FORMATS.get(h.format as usize).copied().unwrap_or(LUA)
}

/// Rebuild the Rust payload of the plain block `h` at `idx` (exact round trip).
unsafe fn plain_payload(l: *mut ffi::lua_State, idx: c_int, h: &Head) -> Payload {
    // SAFETY: reads one user value and pops it; reading scalars does not raise.
    unsafe {
        let format = format_of(h);
        ffi::lua_getiuservalue(l, idx, UV_DATA);
        let v = rawapi::scalar_at(l, -1).unwrap_or(Value::Nil);
        ffi::lua_pop(l, 1);
        let data = if is_value_format(format) {
            Data::Value(v)
        } else {
            match v {
                Value::Str(b) => Data::Encoded(b),
                _ => Data::Encoded(Bytes::from_slice(b"")),
            }
        };
        Payload { format, data }
    }
}

/// Push `nil, <error object>` and return 2 (never raises; falls back to the message string
/// when the object cannot be built). Works in any state (not only process states).
#[cold]
unsafe fn push_nil_err(l: *mut ffi::lua_State, e: Error) -> c_int {
    // SAFETY: `l` is a live thread inside a C function call; the mlua handle is owned by the
    // state. Every Rust value is dropped before the plain pushes at the end.
    unsafe {
        ffi::lua_checkstack(l, 3);
        ffi::lua_pushnil(l);
        let lua = Lua::get_or_init_from_ptr(l);
        let pushed = match errors::error_value(lua, e.clone()) {
            Ok(v) => rawapi::push_lua_value(lua, l, &v).is_ok(),
            Err(_) => false,
        };
        let fallback = (!pushed).then(|| e.message().to_string());
        drop(e);
        if let Some(msg) = fallback {
            ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
        }
        2
    }
}

#[cold]
unsafe fn self_error(l: *mut ffi::lua_State, method: &str) -> c_int {
    let msg = format!("bad argument #1 to '{method}' (payload expected)");
    // SAFETY: `l` is the running thread of a C function call; `raise_owned` drops the String
    // before raising.
    unsafe { rawapi::raise_owned(l, msg) }
}

unsafe extern "C-unwind" fn p_get_format(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: pushes a short (interned) string.
    unsafe {
        let Some(k) = self_at(l) else {
            return self_error(l, "get_format");
        };
        let f = match k {
            Kind::Plain(h) => format_of(h),
            Kind::Owned(o) => format_of(&o.head),
        };
        ffi::lua_pushlstring(l, f.as_ptr() as *const _, f.len());
        1
    }
}

/// `p:data()` / `p:unmarshal()`: the Lua value, decoding encoded data (or `nil, err`).
unsafe extern "C-unwind" fn p_data(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: the plain fast path only pushes a user value. The slow path builds Rust values
    // in `data_slow`, which returns before anything raises.
    unsafe {
        let Some(k) = self_at(l) else {
            return self_error(l, "data");
        };
        if let Kind::Plain(h) = k {
            let f = format_of(h);
            if is_value_format(f) || f == STRING || f == BYTES {
                ffi::lua_getiuservalue(l, 1, UV_DATA);
                return 1;
            }
        }
        data_slow(l, k)
    }
}

/// `data()` of owned payloads and of plain encoded ones that need decoding.
#[inline(never)]
unsafe fn data_slow(l: *mut ffi::lua_State, k: Kind<'_>) -> c_int {
    // SAFETY: no raise while Rust values are live: every failure is turned into pushed
    // values (`nil, err`, or nil when even that fails) by non-raising helpers.
    unsafe {
        if ffi::lua_checkstack(l, 4) == 0 {
            ffi::lua_pushnil(l);
            return 1;
        }
        let p = match k {
            Kind::Plain(h) => plain_payload(l, 1, h),
            Kind::Owned(o) => o.payload.clone(),
        };
        // The state's mlua handle (owned by the state: outlives this call; works outside
        // processes too, e.g. in function workers and tests).
        let lua = Lua::get_or_init_from_ptr(l);
        let v = match (&p.data, p.format) {
            (Data::Encoded(b), STRING | BYTES) => lua
                .create_string(b.as_bytes())
                .map(mlua::Value::String)
                .map_err(|e| Error::internal(e.to_string())),
            _ => p
                .value()
                .and_then(|v| convert::to_lua(lua, &v).map_err(|e| Error::internal(e.to_string()))),
        };
        drop(p);
        match v {
            Ok(v) => {
                let pushed = rawapi::push_lua_value(lua, l, &v).is_ok();
                drop(v);
                if !pushed {
                    ffi::lua_pushnil(l);
                }
                1
            }
            Err(e) => push_nil_err(l, e),
        }
    }
}

/// `p:transcode(format)` → a new payload, or `nil, err`.
unsafe extern "C-unwind" fn p_transcode(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: argument checks first; afterwards only non-raising helpers run until the
    // result is pushed.
    unsafe {
        let Some(k) = self_at(l) else {
            return self_error(l, "transcode");
        };
        if ffi::lua_type(l, 2) != ffi::LUA_TSTRING {
            return push_nil_err(l, Error::invalid("format must be a string"));
        }
        let p = match k {
            Kind::Plain(h) => plain_payload(l, 1, h),
            Kind::Owned(o) => o.payload.clone(),
        };
        let target = String::from_utf8_lossy(rawapi::str_at(l, 2)).into_owned();
        let r = p.transcode(&target);
        drop(p);
        drop(target);
        match r {
            Ok(np) => match push_payload(l, np) {
                Ok(()) => 1,
                Err(m) => push_nil_err(l, Error::internal(m)),
            },
            Err(e) => push_nil_err(l, e),
        }
    }
}

unsafe extern "C-unwind" fn p_tostring(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: concatenates Lua strings on the stack (no Rust values live).
    unsafe {
        ffi::lua_checkstack(l, 4);
        let f = match self_at(l) {
            Some(Kind::Plain(h)) => format_of(h),
            Some(Kind::Owned(o)) => format_of(&o.head),
            None => {
                ffi::lua_pushliteral(l, c"payload");
                return 1;
            }
        };
        ffi::lua_pushliteral(l, c"payload{format=");
        ffi::lua_pushlstring(l, f.as_ptr() as *const _, f.len());
        ffi::lua_pushliteral(l, c"}");
        ffi::lua_concat(l, 3);
        1
    }
}

unsafe extern "C-unwind" fn p_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by the collector for owned blocks only (the plain metatable has no
    // `__gc`); the payload is dropped once (magic cleared). A block whose construction
    // failed before the payload moved in has magic 0 and is skipped.
    unsafe {
        let h = ffi::lua_touserdata(l, 1) as *mut Head;
        if !h.is_null() && (*h).magic == MAGIC && (*h).owned {
            (*h).magic = 0;
            ptr::drop_in_place(ptr::addr_of_mut!((*(h as *mut Owned)).payload));
        }
        0
    }
}
