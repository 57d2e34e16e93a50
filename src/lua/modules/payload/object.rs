//! Payload objects: the Lua userdata behind `payload.new`, `msg:payload()`, `:transcode()` and
//! the results of `funcs.async` (spec `lua-api.md` §3.8.10).
//!
//! One is created for every message payload a process reads, so — like `process.Message`
//! (decision 0090) — it is a raw userdata built to cost the collector as little as possible:
//!
//! * **plain** payloads — a `lua/any`/`golang/any` scalar (nil, boolean, number, a string of at
//!   most [`MAX_INLINE_STR`] bytes), or encoded bytes of at most that length — keep their data
//!   as raw bytes in the block itself (a [`Slot`]: tag and 8 bytes, string bytes after it),
//!   own no Rust memory and have no user values: the metatable has no `__gc` (no finalizer
//!   pass, no resurrection cycle) and the collector marks the block without traversing it.
//!   Building one is a single allocation plus copies (nothing else can raise); `:data()` of a
//!   scalar pushes it (a string is interned only when it is read);
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
//! message's scalar slot into a new payload ([`push_plain_slot`]) allocates unprotected.
//! `process.Message` blocks store their scalar payloads as the same [`Slot`]s.

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

/// Longest string (scalar or encoded bytes) a plain payload (or a plain message) copies into
/// its block: Lua's short-string limit (`LUAI_MAXSHORTLEN`), so a block stays small and the
/// string a read pushes is interned (a hash lookup). Longer data stays in Rust (shared,
/// never copied into Lua until read).
pub const MAX_INLINE_STR: usize = 40;

/// [`Slot::tag`] values.
const T_NIL: u8 = 0;
const T_FALSE: u8 = 1;
const T_TRUE: u8 = 2;
const T_INT: u8 = 3;
const T_FLOAT: u8 = 4;
const T_STR: u8 = 5;

/// A scalar stored as raw bytes in a userdata block: nil, a boolean, an integer, a float (its
/// bits: exact round trip) or a string of at most [`MAX_INLINE_STR`] bytes, whose bytes live
/// in the same block at offset [`Slot::bits`] from the block start.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Slot {
    tag: u8,
    _pad: [u8; 3],
    /// String length.
    len: u32,
    /// Integer or float bits, or the offset of the string bytes in the block.
    bits: u64,
}

impl Slot {
    /// The slot of `v` if it can be one, with the string bytes to store at offset `off`
    /// (empty for other scalars).
    pub(crate) fn of(v: &Value, off: usize) -> Option<(Slot, &[u8])> {
        let (tag, bits, bytes): (u8, u64, &[u8]) = match v {
            Value::Nil => (T_NIL, 0, &[]),
            Value::Bool(false) => (T_FALSE, 0, &[]),
            Value::Bool(true) => (T_TRUE, 0, &[]),
            Value::Int(i) => (T_INT, *i as u64, &[]),
            Value::Float(f) => (T_FLOAT, f.to_bits(), &[]),
            Value::Str(b) if b.len() <= MAX_INLINE_STR => (T_STR, off as u64, b.as_bytes()),
            _ => return None,
        };
        Some((
            Slot {
                tag,
                _pad: [0; 3],
                len: bytes.len() as u32,
                bits,
            },
            bytes,
        ))
    }

    /// Extra bytes `v` needs after its slot, if it can be a slot.
    pub(crate) fn extra(v: &Value) -> Option<usize> {
        match v {
            Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) => Some(0),
            Value::Str(b) if b.len() <= MAX_INLINE_STR => Some(b.len()),
            _ => None,
        }
    }

    /// The string bytes of a `T_STR` slot in the block at `base` (empty for other tags).
    ///
    /// # Safety
    /// `base` is the block this slot was written into, alive for `'a`.
    unsafe fn bytes<'a>(&self, base: *const u8) -> &'a [u8] {
        if self.tag != T_STR {
            return &[];
        }
        // SAFETY: `Slot::of` placed `len` bytes at offset `bits` of the same block.
        unsafe { std::slice::from_raw_parts(base.add(self.bits as usize), self.len as usize) }
    }

    /// The Rust value (an exact copy of what was stored).
    ///
    /// # Safety
    /// As [`Slot::bytes`].
    pub(crate) unsafe fn value(&self, base: *const u8) -> Value {
        match self.tag {
            T_FALSE => Value::Bool(false),
            T_TRUE => Value::Bool(true),
            T_INT => Value::Int(self.bits as i64),
            T_FLOAT => Value::Float(f64::from_bits(self.bits)),
            // SAFETY: forwarded.
            T_STR => Value::Str(Bytes::from_slice(unsafe { self.bytes(base) })),
            _ => Value::Nil,
        }
    }

    /// Push the Lua value (a string is interned here: may raise a memory error).
    ///
    /// # Safety
    /// As [`Slot::bytes`]; `l` has room for one value; no Rust value with a destructor may be
    /// live in the caller's frames up to the enclosing protected call.
    pub(crate) unsafe fn push(&self, l: *mut ffi::lua_State, base: *const u8) {
        // SAFETY: plain pushes; see the function docs.
        unsafe {
            match self.tag {
                T_FALSE => ffi::lua_pushboolean(l, 0),
                T_TRUE => ffi::lua_pushboolean(l, 1),
                T_INT => ffi::lua_pushinteger(l, self.bits as i64),
                T_FLOAT => ffi::lua_pushnumber(l, f64::from_bits(self.bits)),
                T_STR => {
                    let b = self.bytes(base);
                    ffi::lua_pushlstring(l, b.as_ptr() as *const _, b.len());
                }
                _ => ffi::lua_pushnil(l),
            }
        }
    }
}

/// The header every payload block starts with.
#[repr(C)]
struct Head {
    magic: u32,
    /// Index into [`FORMATS`].
    format: u8,
    owned: bool,
}

/// A plain block: header plus the data slot; string bytes follow at [`PLAIN_BYTES`].
#[repr(C)]
struct Plain {
    head: Head,
    slot: Slot,
}

/// Offset of a plain block's string bytes.
const PLAIN_BYTES: usize = std::mem::size_of::<Plain>();

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

/// The slot and string bytes of `p` if it can be a plain payload (see the module docs).
fn plain_slot(p: &Payload) -> Option<(Slot, &[u8])> {
    match &p.data {
        Data::Value(v) => Slot::of(v, PLAIN_BYTES),
        Data::Encoded(b) if b.len() <= MAX_INLINE_STR => Some((
            Slot {
                tag: T_STR,
                _pad: [0; 3],
                len: b.len() as u32,
                bits: PLAIN_BYTES as u64,
            },
            b.as_bytes(),
        )),
        Data::Encoded(_) => None,
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

/// Push a new plain block of `format` holding `slot` (its string bytes given separately),
/// without protection: only call while no Rust value with a destructor is live in any frame
/// up to the enclosing protected call (the allocation raises on a memory error; nothing else
/// does). `mt` is the index of the plain metatable, or 0 to look it up. `bytes` must stay
/// valid across the allocation (a Rust value owned by a caller, or another block on the
/// stack: the collector never moves blocks).
unsafe fn new_plain(l: *mut ffi::lua_State, format: u8, slot: Slot, bytes: &[u8], mt: c_int) {
    // SAFETY: the block is plain data, fully written before the metatable is set.
    unsafe {
        let mt = if mt == 0 || mt <= ffi::LUA_REGISTRYINDEX {
            mt
        } else {
            ffi::lua_absindex(l, mt)
        };
        let b = rawapi::new_block(l, PLAIN_BYTES + bytes.len()) as *mut Plain;
        let mut slot = slot;
        if slot.tag == T_STR {
            slot.bits = PLAIN_BYTES as u64;
            ptr::copy_nonoverlapping(bytes.as_ptr(), (b as *mut u8).add(PLAIN_BYTES), bytes.len());
        }
        ptr::write(
            b,
            Plain {
                head: Head {
                    magic: MAGIC,
                    format,
                    owned: false,
                },
                slot,
            },
        );
        if mt == 0 {
            push_metatable(l, true);
        } else {
            ffi::lua_pushvalue(l, mt);
        }
        ffi::lua_setmetatable(l, -2);
    }
}

/// Push a `lua/any` payload holding the scalar `slot` of the block at `base` (a message on
/// the stack): the fast path of `msg:payload()` — one allocation and a copy, no conversion,
/// no Lua string. `mt` is the plain metatable ([`push_plain_metatable`]), e.g. an upvalue
/// index.
///
/// # Safety
/// `l` is the running thread of a C function with room for 2 values; `slot` was written
/// into the block at `base`, which stays referenced from the stack; `mt` holds the plain
/// payload metatable; no Rust value with a destructor may be live in the caller's frames
/// (raises on a memory error).
pub(crate) unsafe fn push_plain_slot(
    l: *mut ffi::lua_State,
    slot: &Slot,
    base: *const u8,
    mt: c_int,
) {
    // SAFETY: see the function docs.
    unsafe { new_plain(l, LUA_INDEX, *slot, slot.bytes(base), mt) }
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
        if let Some((slot, bytes)) = plain_slot(p) {
            new_plain(l, format, slot, bytes, 0);
            return 1;
        }
        let b = rawapi::new_block(l, std::mem::size_of::<Owned>()) as *mut Head;
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
    Plain(&'a Plain),
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
            Kind::Plain(&*(h as *const Plain))
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
    // SAFETY: stack restored; plain data is read from the block (no Lua call).
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
            Some(Kind::Plain(b)) => Some(plain_payload(b)),
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

/// Rebuild the Rust payload of the plain block `b` (exact round trip).
fn plain_payload(b: &Plain) -> Payload {
    let format = format_of(&b.head);
    let base = b as *const Plain as *const u8;
    let data = if is_value_format(format) {
        // SAFETY: `b` is a live plain block; its slot was written into it.
        Data::Value(unsafe { b.slot.value(base) })
    } else {
        // SAFETY: as above.
        Data::Encoded(Bytes::from_slice(unsafe { b.slot.bytes(base) }))
    };
    Payload { format, data }
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
            Kind::Plain(b) => format_of(&b.head),
            Kind::Owned(o) => format_of(&o.head),
        };
        ffi::lua_pushlstring(l, f.as_ptr() as *const _, f.len());
        1
    }
}

/// `p:data()` / `p:unmarshal()`: the Lua value, decoding encoded data (or `nil, err`).
unsafe extern "C-unwind" fn p_data(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: the plain fast path only pushes the slot's scalar (no Rust value is live; the
    // block is `self`, on the stack). The slow path builds Rust values in `data_slow`, which
    // returns before anything raises.
    unsafe {
        let Some(k) = self_at(l) else {
            return self_error(l, "data");
        };
        if let Kind::Plain(b) = k {
            let f = format_of(&b.head);
            if is_value_format(f) || f == STRING || f == BYTES {
                b.slot.push(l, b as *const Plain as *const u8);
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
            Kind::Plain(b) => plain_payload(b),
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
            Kind::Plain(b) => plain_payload(b),
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
            Some(Kind::Plain(b)) => format_of(&b.head),
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
