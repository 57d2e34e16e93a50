//! `process.Message` objects (spec `lua-api.md` §3.7): what `process.inbox()` and
//! `process.listen(topic, {message = true})` deliver.
//!
//! `msg:topic()` → the topic; `msg:from()` → the sender's PID string (`""` when there is no
//! sender, as upstream); `msg:payload()` → `nil` (no payload), one Payload object, or an array
//! of Payloads (several payloads); `tostring(msg)` → `process.Message{topic=<t>}`.
//!
//! One is created for every message a process receives, so it is a raw userdata (no mlua
//! userdata machinery) built to cost as little as possible — one allocation, no Lua string,
//! nothing for the collector to traverse (decisions 0090, 0105, 0115):
//!
//! * the block holds everything as bytes: a header, then (plain messages) the payload slots,
//!   then the topic, the sender's PID text and the slots' string bytes. The block has no user
//!   values, so the collector marks it without traversing it; `topic()`/`tostring` intern the
//!   topic when called, `from()` takes the sender's Lua string from a small cache (see
//!   `msg_from`);
//! * **plain** messages — at most [`MAX_INLINE`] payloads, each nil, a boolean, a number or a
//!   short string — keep their payloads as [`Slot`]s and own no Rust memory, so their
//!   metatable has no `__gc`: no finalizer pass, no resurrection cycle, no protected call per
//!   collected message. `payload()` copies a slot into a new plain Payload object (see
//!   `modules::payload`) — nothing is converted, for messages whose payload is read or not;
//! * **owned** messages (anything else: tables, long strings, errors, opaque values) keep the
//!   `Vec<Value>` inline in the block (no separate Box) and a second metatable with `__gc`
//!   drops it; `payload()` clones the values, so it may be called any number of times.
//!
//! Methods are C closures whose first two upvalues are the two metatables: the type check of
//! `self` is `getmetatable` plus two raw comparisons (no registry lookup). The constructor is
//! a C closure too (the metatables as upvalues), kept in the registry under an integer
//! reference that the mailbox remembers per process ([`constructor`]), so building a message
//! looks nothing up by hash. It runs in protected mode (the allocation is the only step that
//! can raise: a memory error becomes a Lua error, never an abort); the caller keeps the Rust
//! data until the very last, non-raising step moves the payload vector into the block.
//!
//! **Built by the receiver** (decision 0127): a message the engine hands to a task blocked in
//! `ch:receive()` is not built by the delivery. Its data is parked in the task
//! (`Task::lazy`) and the task is woken with [`lazy_mark`] in the message's place; the
//! receive's continuation ([`build_lazy`]) builds the block on the receiving thread, inside
//! the task's own `lua_resume`, which already catches errors — so the protected call per
//! message (`lua_pcall`, its `setjmp` and call frame) is gone from that path. The allocation
//! still happens before the data leaves the task, and everything after it cannot raise; a
//! memory error is raised as the error of that `receive` (the data stays parked and is
//! dropped with the task). Backlog takes and select cases still use the protected
//! constructor.

use std::ffi::{c_int, c_void};
use std::ptr;

use mlua::ffi;
use wippy_rt::{Pid, Value};

use super::core::with_core;
use super::rawapi;
use crate::lua::modules::payload::{self, Slot};

const MAGIC: u32 = 0x574d_5347;
/// Registry keys (addresses) of the plain and owned metatables, and of the constructor's
/// reference number.
static MT_PLAIN: u8 = 0;
static MT_OWNED: u8 = 0;
static CTOR: u8 = 0;

/// Most payloads a plain message keeps as slots: messages are almost always 0–2 payloads;
/// beyond a few, one owned vector is smaller than many slots.
pub const MAX_INLINE: usize = 4;

/// The data of one message.
pub(crate) struct MessageData {
    pub from: Pid,
    pub topic: String,
    pub payloads: Vec<Value>,
    /// Registry reference of the constructor in the receiving state ([`constructor`]), or 0
    /// (looked up when pushed).
    pub ctor: c_int,
}

/// The header every message block starts with. Plain blocks continue with `inline` slots,
/// owned blocks with the payload vector ([`Owned`]); then come the topic bytes, the sender's
/// PID text and (plain) the slots' string bytes.
#[repr(C)]
struct Head {
    magic: u32,
    inline: u8,
    owned: bool,
    _pad: u16,
    topic_len: u32,
    from_len: u32,
}

/// An owned block: the header plus the payload vector `__gc` drops.
#[repr(C)]
struct Owned {
    head: Head,
    payloads: Vec<Value>,
}

const HEAD: usize = std::mem::size_of::<Head>();
const SLOT: usize = std::mem::size_of::<Slot>();
const OWNED: usize = std::mem::size_of::<Owned>();

impl Head {
    /// Offset of the topic bytes (the sender's text follows them).
    fn text_at(&self) -> usize {
        if self.owned {
            OWNED
        } else {
            HEAD + SLOT * self.inline as usize
        }
    }

    fn base(&self) -> *const u8 {
        self as *const Head as *const u8
    }

    /// The topic bytes.
    ///
    /// # Safety
    /// `self` is the header of a live message block (written by `construct`).
    unsafe fn topic<'a>(&self) -> &'a [u8] {
        // SAFETY: `construct` copied `topic_len` bytes at `text_at`.
        unsafe {
            std::slice::from_raw_parts(self.base().add(self.text_at()), self.topic_len as usize)
        }
    }

    /// The sender's PID text (empty for the zero PID).
    ///
    /// # Safety
    /// As [`Head::topic`].
    unsafe fn from<'a>(&self) -> &'a [u8] {
        // SAFETY: `construct` copied `from_len` bytes right after the topic.
        unsafe {
            std::slice::from_raw_parts(
                self.base().add(self.text_at() + self.topic_len as usize),
                self.from_len as usize,
            )
        }
    }

    /// Payload slot `i` of a plain block.
    ///
    /// # Safety
    /// As [`Head::topic`]; `i < inline`.
    unsafe fn slot(&self, i: usize) -> Slot {
        // SAFETY: `construct` wrote `inline` slots right after the header (8-aligned).
        unsafe { ptr::read(self.base().add(HEAD + SLOT * i) as *const Slot) }
    }
}

/// Slots of the sender-text cache (see `msg_from`): a process talks to a handful of peers at
/// a time.
const FROM_CACHE: usize = 64;

/// The cache slot (1-based) of a sender's PID text: a multiplicative hash of its length and
/// last 8 bytes (the unique part of a PID is at its end).
fn from_slot(text: &[u8]) -> ffi::lua_Integer {
    let tail = &text[text.len().saturating_sub(8)..];
    let mut x = text.len() as u64;
    for &b in tail {
        x = (x << 8) | b as u64;
    }
    let h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - FROM_CACHE.trailing_zeros())) as ffi::lua_Integer + 1
}

/// True when `v` can live as a slot in a plain message and come back unchanged.
fn inlinable(v: &Value) -> bool {
    Slot::extra(v).is_some()
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
    method_upvalues,
    array: 0,
    init: rawapi::TwinMetatables::no_init,
};

/// `payload` also keeps the plain Payload metatable, `from` the sender-text cache (upvalue 3).
unsafe fn method_upvalues(l: *mut ffi::lua_State, name: &std::ffi::CStr) -> c_int {
    // SAFETY: each branch pushes one table (may raise a memory error: callers run protected).
    unsafe {
        if name == c"payload" {
            payload::push_plain_metatable(l);
            1
        } else if name == c"from" {
            ffi::lua_createtable(l, FROM_CACHE as c_int, 0);
            1
        } else {
            0
        }
    }
}

/// Push the plain or the owned metatable, creating both on first use in this state.
unsafe fn push_metatable(l: *mut ffi::lua_State, plain: bool) {
    // SAFETY: forwarded contract (live thread; may raise a memory error; callers run
    // protected).
    unsafe { METATABLES.push(l, plain) }
}

/// The registry reference of the message constructor of the state of `l`, creating it (and
/// the metatables) on first use. Callers cache it for the state's lifetime: the reference
/// is never released.
///
/// # Safety
/// `l` is a live thread of a state.
pub(crate) unsafe fn constructor(l: *mut ffi::lua_State) -> Result<c_int, String> {
    // SAFETY: registry read with a light userdata key; creation runs protected.
    unsafe {
        if ffi::lua_checkstack(l, 4) == 0 {
            return Err("stack overflow".into());
        }
        let key = &CTOR as *const u8 as *const c_void;
        if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key) != ffi::LUA_TNUMBER {
            ffi::lua_pop(l, 1);
            ffi::lua_pushcfunction(l, make_constructor);
            if ffi::lua_pcall(l, 0, 1, 0) != ffi::LUA_OK {
                let msg = String::from_utf8_lossy(rawapi::str_at(l, -1)).into_owned();
                ffi::lua_pop(l, 1);
                return Err(msg);
            }
        }
        let r = ffi::lua_tointegerx(l, -1, ptr::null_mut()) as c_int;
        ffi::lua_pop(l, 1);
        Ok(r)
    }
}

/// Protected: create the constructor closure, reference it from the registry, record the
/// reference under [`CTOR`] and return it.
unsafe extern "C-unwind" fn make_constructor(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: plain Lua API calls in protected mode; no Rust values live.
    unsafe {
        push_metatable(l, true);
        push_metatable(l, false);
        ffi::lua_pushcclosure(l, construct, 2);
        let r = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        ffi::lua_pushinteger(l, r as ffi::lua_Integer);
        ffi::lua_rawsetp(
            l,
            ffi::LUA_REGISTRYINDEX,
            &CTOR as *const u8 as *const c_void,
        );
        ffi::lua_pushinteger(l, r as ffi::lua_Integer);
        1
    }
}

/// What [`construct`] builds from: the data and its layout.
struct Build {
    data: MessageData,
    plain: bool,
}

/// The block layout of `d`: whether it is plain, and the block size.
fn layout(d: &MessageData) -> (bool, usize) {
    let plain = d.payloads.len() <= MAX_INLINE && d.payloads.iter().all(inlinable);
    let n = d.payloads.len();
    let text = if plain { HEAD + SLOT * n } else { OWNED };
    let mut size = text + d.topic.len() + from_text(d).len();
    if plain {
        size += d.payloads.iter().filter_map(Slot::extra).sum::<usize>();
    }
    (plain, size)
}

/// The sender's PID text (`""` for no sender).
fn from_text(d: &MessageData) -> &[u8] {
    if d.from.is_zero() {
        b""
    } else {
        d.from.as_str().as_bytes()
    }
}

/// Write the message block for `d` into `b` (allocated with the size [`layout`] gave for the
/// layout `plain`); an owned block takes `d`'s payload vector. Never raises.
///
/// # Safety
/// `b` is a fresh block of at least `layout(d).1` bytes, aligned for [`Owned`].
unsafe fn fill(b: *mut u8, d: &mut MessageData, plain: bool) {
    // SAFETY: every write stays inside the block (sizes as in `layout`); the header is written
    // before anything reads it.
    unsafe {
        let n = d.payloads.len();
        let topic = d.topic.as_bytes();
        let from = from_text(d);
        let text = if plain { HEAD + SLOT * n } else { OWNED };
        let head = Head {
            magic: MAGIC,
            inline: if plain { n as u8 } else { 0 },
            owned: !plain,
            _pad: 0,
            topic_len: topic.len() as u32,
            from_len: from.len() as u32,
        };
        if plain {
            ptr::write(b as *mut Head, head);
        } else {
            ptr::write(
                b as *mut Owned,
                Owned {
                    head,
                    payloads: Vec::new(),
                },
            );
        }
        ptr::copy_nonoverlapping(topic.as_ptr(), b.add(text), topic.len());
        let mut off = text + topic.len();
        ptr::copy_nonoverlapping(from.as_ptr(), b.add(off), from.len());
        off += from.len();
        if plain {
            for (i, v) in d.payloads.iter().enumerate() {
                if let Some((slot, bytes)) = Slot::of(v, off) {
                    ptr::write(b.add(HEAD + SLOT * i) as *mut Slot, slot);
                    ptr::copy_nonoverlapping(bytes.as_ptr(), b.add(off), bytes.len());
                    off += bytes.len();
                }
            }
        }
        debug_assert_eq!(off, layout(d).1);
        if !plain {
            (*(b as *mut Owned)).payloads = std::mem::take(&mut d.payloads);
        }
    }
}

/// Protected constructor (a closure: upvalues 1 and 2 are the plain and owned metatables):
/// argument 1 is a light userdata holding the `*mut Build`.
unsafe extern "C-unwind" fn construct(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called through lua_pcall by `push_message`, which keeps the data alive and
    // owned until we return. The allocation is the only step that may raise; it happens
    // before the block holds Rust resources; `fill` cannot raise, and moves the payload
    // vector into the block last; setting the metatable does not allocate.
    unsafe {
        let build = ffi::lua_touserdata(l, 1) as *mut Build;
        let plain = (*build).plain;
        let (_, size) = layout(&(*build).data);
        let b = rawapi::new_block(l, size);
        fill(b, &mut (*build).data, plain);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(if plain { 1 } else { 2 }));
        ffi::lua_setmetatable(l, -2);
        1
    }
}

/// The value a delivery leaves in place of a Message it left to [`build_lazy`]: a light
/// userdata with a fixed address (user code cannot make one).
pub(crate) fn lazy_mark() -> *mut c_void {
    static LAZY: u8 = 0;
    &LAZY as *const u8 as *mut c_void
}

/// Replace the [`lazy_mark`] at `idx` of `l` with the Message of the data parked in the
/// running task (`Task::lazy`). Runs on the receiving task's thread, inside its resume, so
/// the allocation needs no protected call of its own: a memory error is raised as the error
/// of the receive (the data stays parked until then, and is dropped with the task).
///
/// # Safety
/// `l` is the running thread of the current process's running task, inside a C function
/// (a continuation) that holds no Rust values with destructors; `idx` is absolute.
pub(crate) unsafe fn build_lazy(l: *mut ffi::lua_State, idx: c_int) -> c_int {
    // 1. The layout and the constructor reference, read in place.
    let found = with_core(|c| {
        let cur = c.current;
        c.tasks
            .get(cur)
            .and_then(|t| t.lazy.as_deref()?.as_ref())
            .map(|d| (layout(d), d.ctor))
    });
    let ((plain, size), ctor) = match found {
        Ok(Some(v)) => v,
        // Nothing parked (cannot happen: the mark is only pushed with data): deliver nil.
        Ok(None) => {
            // SAFETY: `idx` is a valid index (caller contract).
            unsafe {
                ffi::lua_pushnil(l);
                ffi::lua_replace(l, idx);
            }
            return 0;
        }
        // SAFETY: no Rust values with destructors are live (caller contract).
        Err(e) => unsafe { raise_core(l, e) },
    };
    // SAFETY: 2. allocate (may raise: nothing of ours is live; the data stays parked) and
    // fetch the metatable from the constructor's upvalues (no allocation). 3. take the data
    // and fill the block: nothing raises from here on. The block's size comes from the same
    // data, untouched meanwhile (only a delivery parks data, and deliveries do not run while
    // Lua code runs). Stack: a C function (the continuation runs in `ch:receive`'s frame)
    // has `LUA_MINSTACK` (20) free slots; it holds the channel and two resume values and
    // pushes two more.
    unsafe {
        let b = rawapi::new_block(l, size);
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ctor as ffi::lua_Integer);
        ffi::lua_getupvalue(l, -1, if plain { 1 } else { 2 });
        ffi::lua_remove(l, -2);
        let data = with_core(|c| {
            let cur = c.current;
            c.tasks
                .get_mut(cur)
                .and_then(|t| t.lazy.as_deref_mut()?.take())
        });
        let Ok(Some(mut d)) = data else {
            lazy_invariant_broken()
        };
        debug_assert_eq!(layout(&d), (plain, size));
        fill(b, &mut d, plain);
        drop(d);
        ffi::lua_setmetatable(l, -2);
        ffi::lua_replace(l, idx);
        0
    }
}

#[cold]
fn lazy_invariant_broken() -> ! {
    eprintln!("wippy: fatal: a parked message vanished before its receive resumed");
    std::process::abort()
}

#[cold]
unsafe fn raise_core(l: *mut ffi::lua_State, e: super::core::CoreError) -> ! {
    // SAFETY: forwarded; the message is a static string.
    unsafe {
        let m = e.message();
        ffi::lua_pushlstring(l, m.as_ptr() as *const _, m.len());
        ffi::lua_error(l)
    }
}

/// Push a Message for `data` onto `l` (protected). On failure nothing is pushed and the
/// error message is returned.
///
/// # Safety
/// `l` is a live thread of the state `data.ctor` belongs to (if not 0).
pub(crate) unsafe fn push_message(l: *mut ffi::lua_State, data: MessageData) -> Result<(), String> {
    let plain = layout(&data).0;
    let mut b = Build { data, plain };
    let data = &mut b.data;
    // SAFETY: `b` lives on this frame for the whole protected call; `construct` only moves
    // the payload vector out in its final, non-raising step.
    unsafe {
        if ffi::lua_checkstack(l, 8) == 0 {
            return Err("stack overflow".into());
        }
        if data.ctor <= 0
            || ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, data.ctor as ffi::lua_Integer)
                != ffi::LUA_TFUNCTION
        {
            if data.ctor > 0 {
                ffi::lua_pop(l, 1);
            }
            data.ctor = constructor(l)?;
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, data.ctor as ffi::lua_Integer);
        }
        ffi::lua_pushlightuserdata(l, &mut b as *mut Build as *mut c_void);
        if ffi::lua_pcall(l, 1, 1, 0) != ffi::LUA_OK {
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
    // SAFETY: pushes the topic bytes of the block (`self`, on the stack); no Rust values.
    unsafe {
        let Some((h, _)) = block_at(l) else {
            return self_error(l, "topic");
        };
        let t = h.topic();
        ffi::lua_pushlstring(l, t.as_ptr() as *const _, t.len());
        1
    }
}

/// `msg:from()`: the sender's PID text (`""` for the zero PID). The Lua strings of recent
/// senders are kept in a small table (upvalue 3), direct-mapped by a hash of the text and
/// checked byte for byte, so a repeated sender costs an array read and a short compare
/// instead of hashing and interning the text again.
unsafe extern "C-unwind" fn msg_from(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: plain table reads and writes on the cache table; pushing the string may raise
    // a memory error with no Rust value live (the text is borrowed from `self`'s block).
    unsafe {
        let Some((h, _)) = block_at(l) else {
            return self_error(l, "from");
        };
        let text = h.from();
        if text.is_empty() {
            ffi::lua_pushliteral(l, c"");
            return 1;
        }
        let cache = ffi::lua_upvalueindex(3);
        let slot = from_slot(text);
        if ffi::lua_rawgeti(l, cache, slot) == ffi::LUA_TSTRING && rawapi::str_at(l, -1) == text {
            return 1;
        }
        ffi::lua_pop(l, 1);
        ffi::lua_pushlstring(l, text.as_ptr() as *const _, text.len());
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawseti(l, cache, slot);
        1
    }
}

unsafe extern "C-unwind" fn msg_payload(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: plain messages: the payload objects copy the slots and own no Rust memory, so
    // raising on a memory error skips no destructor (the block is `self`, on the stack, and
    // never moves). Owned messages: each value is cloned and moved into `push_payload`, which
    // is protected; nothing with a destructor is live while a Lua call here may raise
    // (`lua_createtable`, `lua_rawseti`).
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
        // At most three values are pushed at a time: within the LUA_MINSTACK slots a C
        // function is given.
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
                None => payload::push_plain_slot(l, &h.slot(i), h.base(), ffi::lua_upvalueindex(3)),
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
        let Some((h, _)) = block_at(l) else {
            ffi::lua_pushliteral(l, c"process.Message");
            return 1;
        };
        let t = h.topic();
        ffi::lua_pushliteral(l, c"process.Message{topic=");
        ffi::lua_pushlstring(l, t.as_ptr() as *const _, t.len());
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
