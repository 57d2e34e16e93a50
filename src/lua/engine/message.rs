//! `process.Message` objects (spec `lua-api.md` §3.7): what `process.inbox()` and
//! `process.listen(topic, {message = true})` deliver.
//!
//! `msg:topic()` → the topic; `msg:from()` → the sender's PID string (`""` when there is no
//! sender, as upstream); `msg:payload()` → `nil` (no payload), one Payload object, or an array
//! of Payloads (several payloads); `tostring(msg)` → `process.Message{topic=<t>}`.
//!
//! One is created for every message a process receives, so it is a raw userdata (no mlua
//! userdata machinery): the block holds a pointer to the boxed message data, freed by `__gc`;
//! the methods are C functions. It is created in protected mode (a memory error becomes a
//! Lua error, never an abort), and the Box is owned by Rust until the userdata holds it.

use std::ffi::{c_int, c_void};
use std::ptr;

use mlua::{Lua, ffi};
use wippy_rt::{Pid, Value};

use super::core::with_core;
use super::rawapi;
use crate::lua::modules::payload;

const MAGIC: u64 = 0x5749_5050_594d_5347;
static MT: u8 = 0;

/// The data of one message.
pub(crate) struct MessageData {
    pub from: Pid,
    pub topic: String,
    pub payloads: Vec<Value>,
}

#[repr(C)]
struct Block {
    magic: u64,
    data: *mut MessageData,
}

unsafe fn push_metatable(l: *mut ffi::lua_State) {
    // SAFETY: registry access with a light userdata key; fields set before storing.
    unsafe {
        let k = &MT as *const u8 as *const c_void;
        if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, k) == ffi::LUA_TTABLE {
            return;
        }
        ffi::lua_pop(l, 1);
        ffi::lua_createtable(l, 0, 4);
        ffi::lua_createtable(l, 0, 3);
        for (name, f) in [
            (c"topic", msg_topic as ffi::lua_CFunction),
            (c"from", msg_from),
            (c"payload", msg_payload),
        ] {
            ffi::lua_pushcfunction(l, f);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        ffi::lua_setfield(l, -2, c"__index".as_ptr());
        ffi::lua_pushcfunction(l, msg_gc);
        ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        ffi::lua_pushcfunction(l, msg_tostring);
        ffi::lua_setfield(l, -2, c"__tostring".as_ptr());
        ffi::lua_pushliteral(l, c"process.Message");
        ffi::lua_setfield(l, -2, c"__name".as_ptr());
        ffi::lua_pushboolean(l, 0);
        ffi::lua_setfield(l, -2, c"__metatable".as_ptr());
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, k);
    }
}

/// Protected constructor: argument 1 is a light userdata holding the `*mut MessageData`.
unsafe extern "C-unwind" fn construct(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called through lua_pcall by `push_message`; on a memory error before the block
    // is written the caller still owns the data and frees it.
    unsafe {
        let data = ffi::lua_touserdata(l, 1) as *mut MessageData;
        let b = ffi::lua_newuserdatauv(l, std::mem::size_of::<Block>(), 0) as *mut Block;
        push_metatable(l);
        ptr::write(b, Block { magic: MAGIC, data });
        ffi::lua_setmetatable(l, -2);
        1
    }
}

/// Push a Message for `data` onto `l` (protected). On failure nothing is pushed and the
/// error message is returned.
pub(crate) unsafe fn push_message(l: *mut ffi::lua_State, data: MessageData) -> Result<(), String> {
    let raw = Box::into_raw(Box::new(data));
    // SAFETY: `construct` takes ownership only when it returns normally (the block holds the
    // pointer and `__gc` frees it); on error we reclaim the Box.
    unsafe {
        if ffi::lua_checkstack(l, 3) == 0 {
            drop(Box::from_raw(raw));
            return Err("stack overflow".into());
        }
        ffi::lua_pushcfunction(l, construct);
        ffi::lua_pushlightuserdata(l, raw as *mut c_void);
        if ffi::lua_pcall(l, 1, 1, 0) != ffi::LUA_OK {
            let msg = rawapi::str_at(l, -1);
            let msg = String::from_utf8_lossy(msg).into_owned();
            ffi::lua_pop(l, 1);
            drop(Box::from_raw(raw));
            return Err(msg);
        }
        Ok(())
    }
}

unsafe fn data_at<'a>(l: *mut ffi::lua_State, idx: c_int) -> Option<&'a MessageData> {
    // SAFETY: metatable identity check before reading the block.
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TUSERDATA || ffi::lua_getmetatable(l, idx) == 0 {
            return None;
        }
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, &MT as *const u8 as *const c_void);
        let same = ffi::lua_rawequal(l, -1, -2) != 0;
        ffi::lua_pop(l, 2);
        if !same {
            return None;
        }
        let b = ffi::lua_touserdata(l, idx) as *const Block;
        if (*b).magic != MAGIC || (*b).data.is_null() {
            return None;
        }
        Some(&*(*b).data)
    }
}

unsafe fn self_error(l: *mut ffi::lua_State, method: &str) -> c_int {
    let msg = format!("bad argument #1 to '{method}' (process.Message expected)");
    // SAFETY: the String is dropped before raising.
    unsafe {
        ffi::luaL_where(l, 1);
        ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
        drop(msg);
        ffi::lua_concat(l, 2);
        ffi::lua_error(l)
    }
}

unsafe extern "C-unwind" fn msg_topic(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: pushes a copy of the topic bytes.
    unsafe {
        match data_at(l, 1) {
            Some(d) => {
                ffi::lua_pushlstring(l, d.topic.as_ptr() as *const _, d.topic.len());
                1
            }
            None => self_error(l, "topic"),
        }
    }
}

unsafe extern "C-unwind" fn msg_from(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: pushes a copy of the PID text ("" for the zero PID).
    unsafe {
        match data_at(l, 1) {
            Some(d) => {
                if d.from.is_zero() {
                    ffi::lua_pushliteral(l, c"");
                } else {
                    let s = d.from.as_str();
                    ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
                }
                1
            }
            None => self_error(l, "from"),
        }
    }
}

unsafe extern "C-unwind" fn msg_payload(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Payload objects are mlua userdata of the `payload` module, built through the
    // process's mlua handle and moved onto `l`; failures push nil.
    unsafe {
        let Some(d) = data_at(l, 1) else {
            return self_error(l, "payload");
        };
        let payloads = d.payloads.clone();
        let lua: Option<Lua> = with_core(|c| c.lua.clone()).ok();
        let ok = match (&lua, payloads.len()) {
            (_, 0) => {
                ffi::lua_pushnil(l);
                true
            }
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
    // SAFETY: formats a copy; the String is dropped after pushing (pushing may raise only on
    // memory exhaustion, leaking the String in that case).
    unsafe {
        let s = match data_at(l, 1) {
            Some(d) => format!("process.Message{{topic={}}}", d.topic),
            None => "process.Message".to_string(),
        };
        ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
        drop(s);
        1
    }
}

unsafe extern "C-unwind" fn msg_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by the collector; the pointer is taken once (cleared magic and pointer).
    unsafe {
        let b = ffi::lua_touserdata(l, 1) as *mut Block;
        if !b.is_null() && (*b).magic == MAGIC && !(*b).data.is_null() {
            let data = std::mem::replace(&mut (*b).data, ptr::null_mut());
            (*b).magic = 0;
            drop(Box::from_raw(data));
        }
        0
    }
}
