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
//!   strings are interned, so a repeated topic or sender costs a hash lookup, no allocation),
//!   and `topic()`/`from()` just return them;
//! * **plain** messages — at most [`MAX_INLINE`] payloads, each nil, a boolean, a number or a
//!   short string — keep their payloads as Lua values in user values 3… and own no Rust
//!   memory, so their metatable has no `__gc`: no finalizer pass, no resurrection cycle, no
//!   protected call per collected message. `payload()` rebuilds the (exact) transfer values
//!   from them when it is called — nothing is converted for messages whose payload is never
//!   read;
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

use mlua::{Lua, ffi};
use wippy_rt::{Bytes, Pid, Value};

use super::core::with_core;
use super::rawapi;
use crate::lua::modules::payload;

const MAGIC: u64 = 0x5749_5050_594d_5347;
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

/// The userdata block. In plain blocks `payloads` is an empty vector (no allocation, nothing
/// to drop) and `inline` counts the payloads in user values; in owned blocks `payloads` holds
/// them and `__gc` drops it.
#[repr(C)]
struct Block {
    magic: u64,
    inline: u32,
    owned: bool,
    payloads: Vec<Value>,
}

/// True when `v` can live as a Lua value in a plain message and come back unchanged.
fn inlinable(v: &Value) -> bool {
    match v {
        Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) => true,
        Value::Str(b) => b.len() <= MAX_INLINE_STR,
        _ => false,
    }
}

/// Push the plain or the owned metatable, creating both on first use in this state.
unsafe fn push_metatable(l: *mut ffi::lua_State, plain: bool) {
    // SAFETY: registry access with light userdata keys; the tables are complete before they
    // are stored. May raise a memory error (callers run protected).
    unsafe {
        let kp = &MT_PLAIN as *const u8 as *const c_void;
        let ko = &MT_OWNED as *const u8 as *const c_void;
        if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, if plain { kp } else { ko })
            == ffi::LUA_TTABLE
        {
            return;
        }
        ffi::lua_pop(l, 1);
        ffi::lua_createtable(l, 0, 4); // plain
        ffi::lua_createtable(l, 0, 5); // owned
        let mt_plain = ffi::lua_absindex(l, -2);
        let mt_owned = ffi::lua_absindex(l, -1);
        ffi::lua_createtable(l, 0, 3);
        for (name, f) in [
            (c"topic", msg_topic as ffi::lua_CFunction),
            (c"from", msg_from),
            (c"payload", msg_payload),
        ] {
            ffi::lua_pushvalue(l, mt_plain);
            ffi::lua_pushvalue(l, mt_owned);
            ffi::lua_pushcclosure(l, f, 2);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        let index = ffi::lua_absindex(l, -1);
        for mt in [mt_plain, mt_owned] {
            ffi::lua_pushvalue(l, index);
            ffi::lua_setfield(l, mt, c"__index".as_ptr());
            ffi::lua_pushvalue(l, mt_plain);
            ffi::lua_pushvalue(l, mt_owned);
            ffi::lua_pushcclosure(l, msg_tostring, 2);
            ffi::lua_setfield(l, mt, c"__tostring".as_ptr());
            ffi::lua_pushliteral(l, c"process.Message");
            ffi::lua_setfield(l, mt, c"__name".as_ptr());
            ffi::lua_pushboolean(l, 0);
            ffi::lua_setfield(l, mt, c"__metatable".as_ptr());
        }
        ffi::lua_pop(l, 1);
        ffi::lua_pushcfunction(l, msg_gc);
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
        let nuv = UV_FIRST_PAYLOAD - 1 + if plain { n as c_int } else { 0 };
        let b = ffi::lua_newuserdatauv(l, std::mem::size_of::<Block>(), nuv) as *mut Block;
        ptr::write(
            b,
            Block {
                magic: MAGIC,
                inline: if plain { n as u32 } else { 0 },
                owned: !plain,
                payloads: Vec::new(),
            },
        );
        let topic = &(*data).topic;
        ffi::lua_pushlstring(l, topic.as_ptr() as *const _, topic.len());
        ffi::lua_setiuservalue(l, -2, UV_TOPIC);
        if (*data).from.is_zero() {
            ffi::lua_pushliteral(l, c"");
        } else {
            let s = (*data).from.as_str();
            ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
        }
        ffi::lua_setiuservalue(l, -2, UV_FROM);
        if plain {
            for (i, v) in (*data).payloads.iter().enumerate() {
                push_scalar(l, v);
                ffi::lua_setiuservalue(l, -2, UV_FIRST_PAYLOAD + i as c_int);
            }
        }
        push_metatable(l, plain);
        ffi::lua_setmetatable(l, -2);
        if !plain {
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
/// upvalues.
unsafe fn block_at<'a>(l: *mut ffi::lua_State) -> Option<&'a Block> {
    // SAFETY: metatable identity check before reading the block; only called from the
    // closures built in `push_metatable` (upvalues 1 and 2 are the metatables).
    unsafe {
        if ffi::lua_type(l, 1) != ffi::LUA_TUSERDATA || ffi::lua_getmetatable(l, 1) == 0 {
            return None;
        }
        let ours = ffi::lua_rawequal(l, -1, ffi::lua_upvalueindex(1)) != 0
            || ffi::lua_rawequal(l, -1, ffi::lua_upvalueindex(2)) != 0;
        ffi::lua_pop(l, 1);
        if !ours {
            return None;
        }
        let b = ffi::lua_touserdata(l, 1) as *const Block;
        if (*b).magic != MAGIC {
            return None;
        }
        Some(&*b)
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

/// The transfer value of inline payload `i` (an [`inlinable`] scalar; exact round trip).
unsafe fn inline_value(l: *mut ffi::lua_State, i: c_int) -> Value {
    // SAFETY: reads one user value and pops it; reading scalars does not raise.
    unsafe {
        let t = ffi::lua_getiuservalue(l, 1, UV_FIRST_PAYLOAD + i);
        let v = match t {
            ffi::LUA_TBOOLEAN => Value::Bool(ffi::lua_toboolean(l, -1) != 0),
            ffi::LUA_TNUMBER => {
                if ffi::lua_isinteger(l, -1) != 0 {
                    Value::Int(ffi::lua_tointegerx(l, -1, ptr::null_mut()))
                } else {
                    Value::Float(ffi::lua_tonumberx(l, -1, ptr::null_mut()))
                }
            }
            ffi::LUA_TSTRING => Value::Str(Bytes::from_slice(rawapi::str_at(l, -1))),
            _ => Value::Nil,
        };
        ffi::lua_pop(l, 1);
        v
    }
}

unsafe extern "C-unwind" fn msg_payload(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Payload objects are mlua userdata of the `payload` module, built through the
    // process's mlua handle and moved onto `l`; failures push nil. No Rust value with a
    // destructor is live when `self_error` raises.
    unsafe {
        let Some(b) = block_at(l) else {
            return self_error(l, "payload");
        };
        if ffi::lua_checkstack(l, 4) == 0 {
            ffi::lua_pushnil(l);
            return 1;
        }
        let payloads: Vec<Value> = if b.owned {
            b.payloads.clone()
        } else {
            (0..b.inline as c_int).map(|i| inline_value(l, i)).collect()
        };
        if payloads.is_empty() {
            ffi::lua_pushnil(l);
            return 1;
        }
        let lua: Option<Lua> = with_core(|c| c.lua.clone()).ok();
        let ok = match (&lua, payloads.len()) {
            (Some(lua), 1) => {
                let p =
                    payload::Payload::from_value(payloads.into_iter().next().unwrap_or_default());
                match payload::payload_value(lua, p) {
                    Ok(v) => rawapi::push_lua_value(lua, l, &v).is_ok(),
                    Err(_) => false,
                }
            }
            (Some(lua), n) => {
                let t = lua.create_table_with_capacity(n, 0);
                let built = t.and_then(|t| {
                    for (i, v) in payloads.into_iter().enumerate() {
                        t.raw_set(
                            i + 1,
                            payload::payload_value(lua, payload::Payload::from_value(v))?,
                        )?;
                    }
                    Ok(t)
                });
                match built {
                    Ok(t) => rawapi::push_lua_value(lua, l, &mlua::Value::Table(t)).is_ok(),
                    Err(_) => false,
                }
            }
            (None, _) => false,
        };
        drop(lua);
        if !ok {
            ffi::lua_pushnil(l);
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
        let b = ffi::lua_touserdata(l, 1) as *mut Block;
        if !b.is_null() && (*b).magic == MAGIC {
            (*b).magic = 0;
            drop(std::mem::take(&mut (*b).payloads));
        }
        0
    }
}
