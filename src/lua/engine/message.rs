//! `process.Message` objects (spec `lua-api.md` §3.7): what `process.inbox()` and
//! `process.listen(topic, {message = true})` deliver.
//!
//! `msg:topic()` → the topic; `msg:from()` → the sender's PID string (`""` when there is no
//! sender, as upstream); `msg:payload()` → `nil` (no payload), one Payload object, or an array
//! of Payloads (several payloads); `tostring(msg)` → `process.Message{topic=<t>}`.
//!
//! One is created for every message a process receives, so it is a raw userdata (no mlua
//! userdata machinery) built to cost the collector as little as possible:
//!
//! * the topic and the sender's PID text are Lua strings in user values 1 and 2 (short
//!   strings are interned, so a repeated topic costs a hash lookup, no allocation; the
//!   sender's text comes from a small cache, see `push_from`), and `topic()`/`from()` just
//!   return them;
//! * **plain** messages — at most [`MAX_INLINE`] payloads, each nil, a boolean, a number or a
//!   short string — keep their payloads as Lua values in user values 3…, own no Rust memory
//!   (the block is an 8-byte header), so their metatable has no `__gc`: no finalizer pass, no resurrection cycle, no
//!   protected call per collected message. `payload()` copies those Lua values into new
//!   plain Payload objects (finalizer-free too, see `modules::payload`) — nothing is
//!   converted, for messages whose payload is read or not;
//! * **owned** messages (anything else: tables, long strings, errors, opaque values) keep the
//!   `Vec<Value>` inline in the userdata block (no separate Box) and a second metatable with
//!   `__gc` drops it; `payload()` clones the values, so it may be called any number of times.
//!
//! Methods are C closures whose two upvalues are the two metatables: the type check of `self`
//! is `getmetatable` plus two raw comparisons (no registry lookup). The block is built in
//! protected mode (a memory error becomes a Lua error, never an abort); the caller keeps the
//! Rust data until the very last, non-raising step moves the payload vector into the block.

use std::ffi::{c_int, c_void};
use std::ptr;

use mlua::ffi;
use wippy_rt::{Pid, Value};

use super::rawapi;
use crate::lua::modules::payload;

const MAGIC: u32 = 0x574d_5347;
/// Registry keys (addresses) of the plain and owned metatables.
static MT_PLAIN: u8 = 0;
static MT_OWNED: u8 = 0;

/// Most payloads a plain message keeps as user values: messages are almost always 0–2
/// payloads; beyond a few, one owned vector is smaller than many user-value slots.
pub const MAX_INLINE: usize = 4;

/// Longest string payload kept inline: Lua's short-string limit (`LUAI_MAXSHORTLEN`), below
/// which strings are interned — pushing one is a hash lookup, and reading it back copies a
/// few bytes. Longer strings stay in the owned vector (shared, never copied on delivery).
pub const MAX_INLINE_STR: usize = 40;

/// User value slots: 1 = topic, 2 = sender PID text, 3… = inline payloads.
const UV_TOPIC: c_int = 1;
const UV_FROM: c_int = 2;
const UV_FIRST_PAYLOAD: c_int = 3;

/// The data of one message.
pub(crate) struct MessageData {
    pub from: Pid,
    pub topic: String,
    pub payloads: Vec<Value>,
}

/// The header every message block starts with; a plain block is only this (`inline` counts
/// the payloads in user values).
#[repr(C)]
struct Head {
    magic: u32,
    inline: u8,
    owned: bool,
}

/// An owned block: the header plus the payload vector `__gc` drops.
#[repr(C)]
struct Owned {
    head: Head,
    payloads: Vec<Value>,
}

/// Slots of the sender-text cache (see [`push_from`]): direct-mapped by the address of the
/// PID's text; a process talks to a handful of peers at a time.
const FROM_CACHE: usize = 64;
/// Index of the sender-text cache table in both metatables.
const MT_FROM_CACHE: ffi::lua_Integer = 1;

/// True when `v` can live as a Lua value in a plain message and come back unchanged.
fn inlinable(v: &Value) -> bool {
    match v {
        Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) => true,
        Value::Str(b) => b.len() <= MAX_INLINE_STR,
        _ => false,
    }
}

/// The plain and owned Message metatables (built together on first use in a state).
static METATABLES: rawapi::TwinMetatables = rawapi::TwinMetatables {
    keys: (&MT_PLAIN, &MT_OWNED),
    name: c"process.Message",
    methods: &[
        (c"topic", msg_topic as ffi::lua_CFunction),
        (c"from", msg_from),
        (c"payload", msg_payload),
    ],
    tostring: msg_tostring,
    gc: msg_gc,
    method_upvalues: payload_upvalue,
    array: 1,
    init: add_from_cache,
};

/// `payload` also keeps the plain Payload metatable (upvalue 3).
unsafe fn payload_upvalue(l: *mut ffi::lua_State, name: &std::ffi::CStr) -> c_int {
    if name == c"payload" {
        // SAFETY: pushes one table (creating the Payload metatables on first use).
        unsafe { payload::push_plain_metatable(l) };
        1
    } else {
        0
    }
}

/// Both metatables share the sender-text cache (array slot [`MT_FROM_CACHE`]).
unsafe fn add_from_cache(l: *mut ffi::lua_State, mt_plain: c_int, mt_owned: c_int) {
    // SAFETY: the two indices are the new metatables (absolute); balanced stack.
    unsafe {
        ffi::lua_createtable(l, FROM_CACHE as c_int, 0);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawseti(l, mt_plain, MT_FROM_CACHE);
        ffi::lua_rawseti(l, mt_owned, MT_FROM_CACHE);
    }
}

/// Push the plain or the owned metatable, creating both on first use in this state.
unsafe fn push_metatable(l: *mut ffi::lua_State, plain: bool) {
    // SAFETY: forwarded contract (live thread; may raise a memory error; callers run
    // protected).
    unsafe { METATABLES.push(l, plain) }
}

/// Push a Lua scalar for an [`inlinable`] value.
unsafe fn push_scalar(l: *mut ffi::lua_State, v: &Value) {
    // SAFETY: plain pushes (strings may raise a memory error; callers run protected).
    unsafe {
        match v {
            Value::Bool(b) => ffi::lua_pushboolean(l, *b as c_int),
            Value::Int(i) => ffi::lua_pushinteger(l, *i),
            Value::Float(f) => ffi::lua_pushnumber(l, *f),
            Value::Str(b) => {
                ffi::lua_pushlstring(l, b.as_bytes().as_ptr() as *const _, b.len());
            }
            _ => ffi::lua_pushnil(l),
        }
    }
}

/// Push the sender's PID text (`""` for the zero PID). The Lua strings of recent senders
/// are kept in a small table (in the metatable at `mt`), direct-mapped by the address of the
/// PID's text — stable while the PID lives — and checked byte for byte, so a hit costs two
/// array reads and a short compare instead of hashing and interning the text again.
unsafe fn push_from(l: *mut ffi::lua_State, mt: c_int, from: &Pid) {
    // SAFETY: plain table reads and writes on the metatable's cache table; may raise a
    // memory error (the caller runs protected).
    unsafe {
        if from.is_zero() {
            ffi::lua_pushliteral(l, c"");
            return;
        }
        let text = from.as_str();
        let slot = ((text.as_ptr() as usize >> 4) % FROM_CACHE) as ffi::lua_Integer + 1;
        if ffi::lua_rawgeti(l, mt, MT_FROM_CACHE) == ffi::LUA_TTABLE {
            if ffi::lua_rawgeti(l, -1, slot) == ffi::LUA_TSTRING
                && rawapi::str_at(l, -1) == text.as_bytes()
            {
                ffi::lua_remove(l, -2);
                return;
            }
            ffi::lua_pop(l, 1);
            ffi::lua_pushlstring(l, text.as_ptr() as *const _, text.len());
            ffi::lua_pushvalue(l, -1);
            ffi::lua_rawseti(l, -3, slot);
            ffi::lua_remove(l, -2);
            return;
        }
        ffi::lua_pop(l, 1);
        ffi::lua_pushlstring(l, text.as_ptr() as *const _, text.len());
    }
}

/// Protected constructor: argument 1 is a light userdata holding the `*mut MessageData`,
/// argument 2 a boolean: plain layout.
unsafe extern "C-unwind" fn construct(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called through lua_pcall by `push_message`, which keeps the data alive and
    // owned until we return. Everything that may raise happens while the block holds no Rust
    // resources (an empty vector) and before the metatable is set; the last step moves the
    // payload vector into the block and cannot raise.
    unsafe {
        let data = ffi::lua_touserdata(l, 1) as *mut MessageData;
        let plain = ffi::lua_toboolean(l, 2) != 0;
        let n = (*data).payloads.len();
        push_metatable(l, plain);
        let mt = ffi::lua_absindex(l, -1);
        let nuv = UV_FIRST_PAYLOAD - 1 + if plain { n as c_int } else { 0 };
        let head = Head {
            magic: MAGIC,
            inline: if plain { n as u8 } else { 0 },
            owned: !plain,
        };
        let b = if plain {
            let h = ffi::lua_newuserdatauv(l, std::mem::size_of::<Head>(), nuv) as *mut Head;
            ptr::write(h, head);
            ptr::null_mut()
        } else {
            let o = ffi::lua_newuserdatauv(l, std::mem::size_of::<Owned>(), nuv) as *mut Owned;
            ptr::write(
                o,
                Owned {
                    head,
                    payloads: Vec::new(),
                },
            );
            o
        };
        let topic = &(*data).topic;
        ffi::lua_pushlstring(l, topic.as_ptr() as *const _, topic.len());
        ffi::lua_setiuservalue(l, -2, UV_TOPIC);
        push_from(l, mt, &(*data).from);
        ffi::lua_setiuservalue(l, -2, UV_FROM);
        if plain {
            for (i, v) in (*data).payloads.iter().enumerate() {
                push_scalar(l, v);
                ffi::lua_setiuservalue(l, -2, UV_FIRST_PAYLOAD + i as c_int);
            }
        }
        ffi::lua_pushvalue(l, mt);
        ffi::lua_setmetatable(l, -2);
        if !b.is_null() {
            (*b).payloads = std::mem::take(&mut (*data).payloads);
        }
        1
    }
}

/// Push a Message for `data` onto `l` (protected). On failure nothing is pushed and the
/// error message is returned.
pub(crate) unsafe fn push_message(
    l: *mut ffi::lua_State,
    mut data: MessageData,
) -> Result<(), String> {
    let plain = data.payloads.len() <= MAX_INLINE && data.payloads.iter().all(inlinable);
    // SAFETY: `data` lives on this frame for the whole protected call; `construct` only
    // moves the payload vector out in its final, non-raising step.
    unsafe {
        if ffi::lua_checkstack(l, 8) == 0 {
            return Err("stack overflow".into());
        }
        ffi::lua_pushcfunction(l, construct);
        ffi::lua_pushlightuserdata(l, &mut data as *mut MessageData as *mut c_void);
        ffi::lua_pushboolean(l, plain as c_int);
        if ffi::lua_pcall(l, 2, 1, 0) != ffi::LUA_OK {
            let msg = rawapi::str_at(l, -1);
            let msg = String::from_utf8_lossy(msg).into_owned();
            ffi::lua_pop(l, 1);
            return Err(msg);
        }
        Ok(())
    }
}

/// The block of the Message `self` (argument 1), checked against the closure's metatable
/// upvalues: its header, and the owned block for owned messages.
unsafe fn block_at<'a>(l: *mut ffi::lua_State) -> Option<(&'a Head, Option<&'a Owned>)> {
    // SAFETY: metatable identity check before reading the block; only called from the
    // closures built in `push_metatable` (upvalues 1 and 2 are the metatables).
    unsafe {
        if ffi::lua_type(l, 1) != ffi::LUA_TUSERDATA || ffi::lua_getmetatable(l, 1) == 0 {
            return None;
        }
        let plain = ffi::lua_rawequal(l, -1, ffi::lua_upvalueindex(1)) != 0;
        let owned = !plain && ffi::lua_rawequal(l, -1, ffi::lua_upvalueindex(2)) != 0;
        ffi::lua_pop(l, 1);
        if !plain && !owned {
            return None;
        }
        let h = ffi::lua_touserdata(l, 1) as *const Head;
        if (*h).magic != MAGIC || (*h).owned != owned {
            return None;
        }
        Some((&*h, owned.then(|| &*(h as *const Owned))))
    }
}

#[cold]
unsafe fn self_error(l: *mut ffi::lua_State, method: &str) -> c_int {
    let msg = format!("bad argument #1 to '{method}' (process.Message expected)");
    // SAFETY: `l` is the running thread of a C function call; `raise_owned` drops the String
    // before raising.
    unsafe { super::rawapi::raise_owned(l, msg) }
}

unsafe extern "C-unwind" fn msg_topic(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: returns the stored string (no allocation).
    unsafe {
        if block_at(l).is_none() {
            return self_error(l, "topic");
        }
        ffi::lua_getiuservalue(l, 1, UV_TOPIC);
        1
    }
}

unsafe extern "C-unwind" fn msg_from(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: returns the stored PID text ("" for the zero PID).
    unsafe {
        if block_at(l).is_none() {
            return self_error(l, "from");
        }
        ffi::lua_getiuservalue(l, 1, UV_FROM);
        1
    }
}

unsafe extern "C-unwind" fn msg_payload(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: plain messages: the payload objects copy the user values (Lua scalars) and own
    // no Rust memory, so raising on a memory error skips no destructor. Owned messages: each
    // value is cloned and moved into `push_payload`, which is protected; nothing with a
    // destructor is live while a Lua call here may raise (`lua_createtable`, `lua_rawseti`).
    unsafe {
        let Some((h, owned)) = block_at(l) else {
            return self_error(l, "payload");
        };
        let n = match owned {
            Some(o) => o.payloads.len(),
            None => h.inline as usize,
        };
        if n == 0 {
            ffi::lua_pushnil(l);
            return 1;
        }
        if ffi::lua_checkstack(l, 6) == 0 {
            ffi::lua_pushnil(l);
            return 1;
        }
        if n > 1 {
            ffi::lua_createtable(l, n as c_int, 0);
        }
        for i in 0..n {
            match owned {
                Some(o) => {
                    let v = o.payloads[i].clone();
                    if payload::push_payload(l, payload::Payload::from_value(v)).is_err() {
                        ffi::lua_pushnil(l);
                    }
                }
                None => payload::push_plain_uv(
                    l,
                    1,
                    UV_FIRST_PAYLOAD + i as c_int,
                    ffi::lua_upvalueindex(3),
                ),
            }
            if n > 1 {
                ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
            }
        }
        1
    }
}

unsafe extern "C-unwind" fn msg_tostring(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: concatenates Lua strings on the stack (no Rust values live).
    unsafe {
        ffi::lua_checkstack(l, 4);
        if block_at(l).is_none() {
            ffi::lua_pushliteral(l, c"process.Message");
            return 1;
        }
        ffi::lua_pushliteral(l, c"process.Message{topic=");
        ffi::lua_getiuservalue(l, 1, UV_TOPIC);
        ffi::lua_pushliteral(l, c"}");
        ffi::lua_concat(l, 3);
        1
    }
}

unsafe extern "C-unwind" fn msg_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by the collector for owned blocks only (the plain metatable has no
    // `__gc`); the vector is taken once (magic cleared).
    unsafe {
        let h = ffi::lua_touserdata(l, 1) as *mut Head;
        if !h.is_null() && (*h).magic == MAGIC && (*h).owned {
            (*h).magic = 0;
            drop(std::mem::take(&mut (*(h as *mut Owned)).payloads));
        }
        0
    }
}
