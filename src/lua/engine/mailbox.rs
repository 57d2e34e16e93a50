//! Mailbox and subscriptions: how messages reach Lua (spec `runtime-internals.md` §11.4).
//!
//! # Semantics
//! Every message a process receives is offered, in arrival order per subscription, to
//!
//! 1. the LINK_DOWN rule — on `@pid/events` without `trap_links` a LINK_DOWN makes the process
//!    fail with "linked process failed" (also when `trap_links` is switched off while a
//!    LINK_DOWN still waits undelivered);
//! 2. the subscription of its exact topic, else (for topics not starting with `@`) the inbox
//!    subscription; with neither, the message stays queued (unbounded, as upstream) until
//!    something subscribes — except engine-private topics (`@wippy/…`: timers, futures), which
//!    are dropped when their subscription is gone;
//! 3. the subscription's channel, without blocking: handed to a waiting receiver or buffered if
//!    there is room; otherwise it stays queued. Zero-buffer channels (`inbox`, `events`)
//!    therefore take a message only while a task is blocked receiving (or selecting) on them —
//!    or when a task receives from them (plain or in a `select`, also with `default`) while
//!    their backlog is not empty: the receive takes the oldest backlog message at once
//!    ([`pullable`]/[`pull`]), as a receive on upstream's inbox takes a queued message. The
//!    Lua value is built only once delivery is certain. A message for a channel the user
//!    closed removes the subscription and is dropped (later ones are routed anew).
//!
//! Delivered values: Message objects (`inbox`, `listen{message=true}`), event tables
//! (`events`), raw payload values (`listen`: one payload → the value, several → an array,
//! none → nil), a Time value (timers; one-shot ones then close their channel), or a future's
//! result (then closed).
//!
//! # Data structure (amortised O(1) per message)
//! Messages are routed when they arrive ([`enqueue`]), not each time the mailbox is looked at.
//! Each arrival gets a sequence number; queues are keyed by topic string:
//!
//! * `queues[K]` with a subscription `K` is that subscription's **backlog**: messages of topic
//!   `K`, and for `K` = the inbox topic also every non-`@` message without an exact
//!   subscription;
//! * `queues[K]` without a subscription holds **unrouted** messages of topic `K`.
//!
//! Invariants (checked by the acceptance tests in `tests/apps/engine/mailbox_*`):
//!
//! 1. every queue is sorted by sequence number (arrival order);
//! 2. a message is in exactly one queue, the one routing would pick now: never in the inbox
//!    backlog while its topic has an exact subscription, never unrouted while a subscription
//!    would take it (so unrouted non-`@` queues are empty while the inbox exists);
//! 3. `ready` lists (at least) every key that has a subscription and a non-empty queue, each
//!    key at most once (`Queue::listed` mirrors membership);
//! 4. `link_downs` counts the queued LINK_DOWN events (to apply rule 1 without a scan).
//!
//! Subscribing `K` moves the messages routing now sends to `K` (unrouted ones of topic `K`,
//! and for a non-`@` `K` the `K`-messages of the inbox backlog; for the inbox every unrouted
//! non-`@` queue) into `K`'s backlog, merged by sequence number. Removing subscription `K`
//! routes its backlog anew (private topics dropped, inbox backlog merged by sequence number,
//! else unrouted). Both cost O(moved + backlog) once, never per flush.
//!
//! [`flush`] visits only the listed keys: it repeatedly picks, among subscriptions whose
//! channel can act now (receiver waiting, buffer room, closed, or a ticker that drops), the one
//! with the oldest head, and drains it while its messages are older than the next candidate's
//! head. Delivering never makes another channel ready (it only wakes tasks or removes select
//! waiters), so this reproduces the global arrival order of a single pass over one queue, at
//! O(listed keys) per flush plus O(1) per delivered message. Subscriptions whose channel is
//! busy keep their backlog and stay listed.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::Arc;

use fnv::FnvHashMap;
use mlua::{AnyUserData, Lua, Value as LuaValue, ffi};
use wippy_rt::process::{EVENTS_TOPIC, INBOX_TOPIC, LINK_DOWN, event_kind};
use wippy_rt::{Package, Value};

use super::channel::{self, ChanRef, Delivery, Readiness};
use super::core::{Core, ModeKind, PRIVATE_PREFIX, Sub, SubMode};
use super::message::{self, MessageData};
use crate::lua::convert;

/// Slots of an empty inbox queue kept for the next messages; a queue that grew beyond this
/// during a burst is freed once drained (a backlog of 10⁶ messages held ~100 MB), smaller
/// ones stay to avoid reallocating at every step.
const INBOX_KEEP_CAPACITY: usize = 1024;

/// Slots of an empty queue of another subscription kept while it is subscribed (a listen
/// channel usually holds one message at a time; a queue that grew further is freed).
const SUB_KEEP_CAPACITY: usize = 16;

/// One queued message.
struct Entry {
    /// Arrival number (orders queues and merges).
    seq: u64,
    pkg: Package,
    /// A LINK_DOWN event (counted in [`Mailbox::link_downs`]).
    link_down: bool,
}

/// The key of a queue as listed in [`Mailbox::ready`]: the inbox (the key of nearly every
/// message, copied without touching a reference count) or a topic shared with its queue
/// (listing a queue allocates nothing).
#[derive(Clone)]
enum Key {
    Inbox,
    Topic(Arc<str>),
}

impl Key {
    fn new(key: &str) -> Key {
        if key == INBOX_TOPIC {
            Key::Inbox
        } else {
            Key::Topic(Arc::from(key))
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Key::Inbox => INBOX_TOPIC,
            Key::Topic(t) => t,
        }
    }

    /// The same queue's key (identity, not text).
    fn same(&self, other: &Key) -> bool {
        match (self, other) {
            (Key::Inbox, Key::Inbox) => true,
            (Key::Topic(a), Key::Topic(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// A backlog or unrouted queue.
struct Queue {
    items: VecDeque<Entry>,
    /// In [`Mailbox::ready`].
    listed: bool,
    /// Its key, shared with [`Mailbox::ready`].
    key: Key,
}

impl Queue {
    fn new(key: &str) -> Queue {
        Queue {
            items: VecDeque::new(),
            listed: false,
            key: Key::new(key),
        }
    }
}

/// The queues by key. The inbox queue — the key of nearly every message — is a field of its
/// own, so its operations compare the key instead of hashing it (same semantics as a map
/// entry: present or absent).
#[derive(Default)]
struct Queues {
    map: FnvHashMap<String, Queue>,
    inbox: Option<Queue>,
}

impl Queues {
    #[inline]
    fn get(&self, key: &str) -> Option<&Queue> {
        if key == INBOX_TOPIC {
            self.inbox.as_ref()
        } else {
            self.map.get(key)
        }
    }

    #[inline]
    fn get_mut(&mut self, key: &str) -> Option<&mut Queue> {
        if key == INBOX_TOPIC {
            self.inbox.as_mut()
        } else {
            self.map.get_mut(key)
        }
    }

    fn remove(&mut self, key: &str) -> Option<Queue> {
        if key == INBOX_TOPIC {
            self.inbox.take()
        } else {
            self.map.remove(key)
        }
    }

    /// Queue `key`, created empty if absent.
    #[inline]
    fn entry(&mut self, key: &str) -> &mut Queue {
        if key == INBOX_TOPIC {
            return self.inbox.get_or_insert_with(|| Queue::new(key));
        }
        if let Some(q) = self.map.get_mut(key) {
            let q: *mut Queue = q;
            // SAFETY: `q` points into `self.map`, borrowed mutably for the returned lifetime
            // and not touched again on this path (the borrow checker's NLL limitation with
            // conditional returns; the key is only copied into the map when it is absent).
            return unsafe { &mut *q };
        }
        self.map
            .entry(key.to_string())
            .or_insert_with(|| Queue::new(key))
    }

    fn clear(&mut self) {
        self.map.clear();
        self.inbox = None;
    }

    /// Every key (the inbox last).
    fn keys(&self) -> impl Iterator<Item = &str> {
        self.map
            .keys()
            .map(String::as_str)
            .chain(self.inbox.as_ref().map(|_| INBOX_TOPIC))
    }

    fn into_values(self) -> impl Iterator<Item = Queue> {
        self.map.into_values().chain(self.inbox)
    }
}

/// The undelivered messages of a process (see the module docs).
#[derive(Default)]
pub(crate) struct Mailbox {
    next_seq: u64,
    queues: Queues,
    /// Keys that may have a subscription with a backlog (invariant 3).
    ready: Vec<Key>,
    /// Queued LINK_DOWN events.
    link_downs: usize,
    /// Queued messages.
    len: usize,
    /// Registry reference of the Message constructor in this process's state
    /// ([`message::constructor`]), 0 until the first message object is built.
    msg_ctor: std::ffi::c_int,
    /// The inbox subscription's channel and mode while it exists (kept by [`subscribe`] and
    /// [`remove_sub`], the only places that add or remove it; cleared with the mailbox when
    /// the core is torn down): routing and delivering an inbox message look nothing up.
    inbox_sub: Option<(ChanRef, ModeKind)>,
}

impl Mailbox {
    /// Number of undelivered messages.
    #[allow(dead_code)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether a [`flush`] may have something to do.
    pub fn pending(&self) -> bool {
        !self.ready.is_empty() || self.link_downs > 0
    }

    /// Drop everything (the process ended).
    pub fn clear(&mut self) {
        self.inbox_sub = None;
        self.queues.clear();
        self.ready.clear();
        self.link_downs = 0;
        self.len = 0;
    }

    /// Append `e` to queue `key` (its own topic when `None`), listing it when `subscribed`.
    fn push(&mut self, key: Option<&str>, subscribed: bool, e: Entry) {
        let Mailbox {
            queues,
            ready,
            link_downs,
            len,
            ..
        } = self;
        let k: &str = key.unwrap_or(&e.pkg.topic);
        let q = queues.entry(k);
        if subscribed && !q.listed {
            q.listed = true;
            ready.push(q.key.clone());
        }
        *len += 1;
        *link_downs += e.link_down as usize;
        q.items.push_back(e);
    }

    /// Account for an entry leaving the mailbox.
    fn discard(&mut self, e: &Entry) {
        self.len -= 1;
        self.link_downs -= e.link_down as usize;
    }

    /// Remove queue `key` (and its listing); the entries stay counted.
    fn take(&mut self, key: &str) -> VecDeque<Entry> {
        match self.queues.remove(key) {
            Some(q) => {
                if q.listed {
                    self.ready.retain(|k| k.as_str() != key);
                }
                q.items
            }
            None => VecDeque::new(),
        }
    }

    /// Install `items` (sorted, counted) as queue `key`, listing it when `subscribed`.
    fn put(&mut self, key: &str, subscribed: bool, items: VecDeque<Entry>) {
        if items.is_empty() {
            return;
        }
        let q = self.queues.entry(key);
        debug_assert!(q.items.is_empty());
        q.items = items;
        if subscribed && !q.listed {
            q.listed = true;
            self.ready.push(q.key.clone());
        }
    }
}

/// Merge two queues sorted by sequence number.
fn merge(a: VecDeque<Entry>, b: VecDeque<Entry>) -> VecDeque<Entry> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let mut out = VecDeque::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.seq < y.seq,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
    out
}

/// Where routing sends a message now.
enum Route {
    /// The subscription of its own topic.
    Exact,
    /// The inbox subscription.
    Inbox,
    /// No subscriber: kept under its topic.
    Unrouted,
    /// An engine-private topic nobody listens to.
    Drop,
}

fn route(core: &Core, topic: &str) -> Route {
    let inbox = core.mailbox.inbox_sub.is_some();
    // With the inbox as the only subscription, the exact-topic check is a comparison.
    let exact = if inbox && core.subs.len() == 1 {
        topic == INBOX_TOPIC
    } else {
        core.subs.contains_key(topic)
    };
    if exact {
        Route::Exact
    } else if topic.starts_with(PRIVATE_PREFIX) {
        Route::Drop
    } else if !topic.starts_with('@') && inbox {
        Route::Inbox
    } else {
        Route::Unrouted
    }
}

/// Queue `e` (not counted yet) where routing sends it now.
fn place(core: &mut Core, e: Entry) {
    match route(core, &e.pkg.topic) {
        Route::Exact => core.mailbox.push(None, true, e),
        Route::Inbox => core.mailbox.push(Some(INBOX_TOPIC), true, e),
        Route::Unrouted => core.mailbox.push(None, false, e),
        Route::Drop => {}
    }
}

/// Append an arriving package to the mailbox (routed now, delivered by the next [`flush`]).
pub(crate) fn enqueue(core: &mut Core, pkg: Package) {
    let link_down =
        pkg.topic == EVENTS_TOPIC && pkg.payloads.first().and_then(event_kind) == Some(LINK_DOWN);
    if link_down && !core.trap_links {
        core.link_down = true;
        return;
    }
    let seq = core.mailbox.next_seq;
    core.mailbox.next_seq += 1;
    place(
        core,
        Entry {
            seq,
            pkg,
            link_down,
        },
    );
}

/// Every undelivered message in arrival order (the mailbox is left empty): what an upgraded
/// process inherits.
pub(crate) fn take_all(core: &mut Core) -> VecDeque<Package> {
    let mb = std::mem::take(&mut core.mailbox);
    // The subscriptions stay with this core until it is torn down.
    core.mailbox.inbox_sub = mb.inbox_sub;
    core.mailbox.msg_ctor = mb.msg_ctor;
    let mut all: Vec<Entry> = mb.queues.into_values().flat_map(|q| q.items).collect();
    all.sort_unstable_by_key(|e| e.seq);
    all.into_iter().map(|e| e.pkg).collect()
}

/// Queue messages inherited from the process this one upgrades (after `trap_links` is set).
pub(crate) fn inherit(core: &mut Core, pkgs: VecDeque<Package>) {
    for pkg in pkgs {
        enqueue(core, pkg);
    }
}

/// Subscribe `topic` with a new channel of capacity `cap` (or return the existing channel).
///
/// # Safety
/// As [`flush`]: `lua` is the state of `core`'s process.
pub(crate) unsafe fn subscribe(
    lua: &Lua,
    core: &mut Core,
    topic: &str,
    cap: usize,
    mode: SubMode,
) -> mlua::Result<AnyUserData> {
    if let Some(s) = core.subs.get(topic) {
        return Ok(s.chan.clone());
    }
    let ch = channel::new_channel(lua, cap)?;
    channel::set_topic(&ch, topic);
    let raw = channel::raw_ref(&ch);
    if topic == INBOX_TOPIC {
        core.mailbox.inbox_sub = Some((raw, mode.kind()));
    }
    core.subs.insert(
        topic.to_string(),
        Sub {
            raw,
            chan: ch.clone(),
            mode,
        },
    );
    sub_added(core, topic);
    // SAFETY: this function's contract.
    unsafe { flush(lua, core)? };
    Ok(ch)
}

/// Remove the subscription owning channel `ch` and close it. False when `ch` is not a
/// subscription channel (or was already removed).
pub(crate) fn unsubscribe(lua: &Lua, core: &mut Core, ch: &AnyUserData) -> mlua::Result<bool> {
    let Some(topic) = channel::topic_of(lua, ch) else {
        return Ok(false);
    };
    let owned = core
        .subs
        .get(&topic)
        .is_some_and(|s| s.chan.to_pointer() == ch.to_pointer());
    if !owned {
        return Ok(false);
    }
    remove_sub(core, &topic);
    channel::close_channel(lua, core, ch, None)?;
    Ok(true)
}

/// Remove subscription `key` (cancelling its timer) and route its backlog anew.
fn remove_sub(core: &mut Core, key: &str) -> Option<Sub> {
    let sub = core.subs.remove(key);
    if key == INBOX_TOPIC {
        core.mailbox.inbox_sub = None;
    }
    if let Some(t) = core.timers.remove(key) {
        t.cancel();
    }
    sub_removed(core, key);
    sub
}

/// Subscription `key` was just added: move the messages routing now sends to it into its
/// backlog (module docs, invariant 2).
fn sub_added(core: &mut Core, key: &str) {
    let mb = &mut core.mailbox;
    if key == INBOX_TOPIC {
        // Every unrouted non-`@` queue, plus unrouted messages of the inbox topic itself.
        let keys: Vec<String> = mb
            .queues
            .keys()
            .filter(|k| !k.starts_with('@') && !core.subs.contains_key(k))
            .map(str::to_string)
            .collect();
        let mut backlog = mb.take(INBOX_TOPIC);
        if !keys.is_empty() {
            let mut all: Vec<Entry> = backlog.into_iter().collect();
            for k in keys {
                all.extend(mb.take(&k));
            }
            all.sort_unstable_by_key(|e| e.seq);
            backlog = all.into();
        }
        mb.put(INBOX_TOPIC, true, backlog);
        return;
    }
    let mut mine = mb.take(key);
    if !key.starts_with('@')
        && core.subs.contains_key(INBOX_TOPIC)
        && let Some(q) = mb.queues.get_mut(INBOX_TOPIC)
        && q.items.iter().any(|e| e.pkg.topic == key)
    {
        let (moved, kept): (VecDeque<Entry>, VecDeque<Entry>) = std::mem::take(&mut q.items)
            .into_iter()
            .partition(|e| e.pkg.topic == key);
        q.items = kept;
        mine = merge(mine, moved);
    }
    mb.put(key, true, mine);
}

/// Subscription `key` was just removed: route its backlog anew (module docs).
fn sub_removed(core: &mut Core, key: &str) {
    let items = core.mailbox.take(key);
    if items.is_empty() {
        return;
    }
    if key == INBOX_TOPIC {
        // Unrouted non-`@` queues are empty while the inbox exists (invariant 2), so appending
        // keeps every queue sorted.
        for e in items {
            core.mailbox.len -= 1;
            core.mailbox.link_downs -= e.link_down as usize;
            place(core, e);
        }
        return;
    }
    match route(core, key) {
        Route::Drop => {
            for e in &items {
                core.mailbox.discard(e);
            }
        }
        Route::Inbox => {
            let inbox = core.mailbox.take(INBOX_TOPIC);
            core.mailbox.put(INBOX_TOPIC, true, merge(inbox, items));
        }
        Route::Unrouted | Route::Exact => core.mailbox.put(key, false, items),
    }
}

/// Whether subscription `sub`'s channel can act on a message now.
fn actionable(core: &Core, raw: ChanRef, kind: ModeKind) -> bool {
    match channel::readiness(core, raw) {
        Readiness::Busy => kind == ModeKind::Ticker,
        _ => true,
    }
}

/// The channel and mode of the subscription of `topic` (the inbox's without a lookup).
fn sub_of_topic(core: &Core, topic: &str) -> Option<(ChanRef, ModeKind)> {
    if topic == INBOX_TOPIC {
        core.mailbox.inbox_sub
    } else {
        core.subs.get(topic).map(|s| (s.raw, s.mode.kind()))
    }
}

/// The channel and mode of subscription `key` (the inbox's without a lookup).
fn sub_of(core: &Core, key: &Key) -> Option<(ChanRef, ModeKind)> {
    match key {
        Key::Inbox => core.mailbox.inbox_sub,
        Key::Topic(t) => core.subs.get(t).map(|s| (s.raw, s.mode.kind())),
    }
}

/// Offer the queued messages to the subscriptions (see the module docs).
///
/// # Safety
/// `lua` is the state of `core`'s process: deliveries run without mlua's state lock
/// ([`super::core::exec_unlocked`], `core.rs` invariant 4).
pub(crate) unsafe fn flush(lua: &Lua, core: &mut Core) -> mlua::Result<()> {
    if core.mailbox.link_downs > 0 && !core.trap_links {
        core.link_down = true;
    }
    loop {
        // The actionable subscription with the oldest head, and the next-oldest head.
        let mut best: Option<(usize, u64, ChanRef, ModeKind)> = None;
        let mut second = u64::MAX;
        let mut i = 0;
        while i < core.mailbox.ready.len() {
            let k = &core.mailbox.ready[i];
            let head = core
                .mailbox
                .queues
                .get(k.as_str())
                .and_then(|q| q.items.front())
                .map(|e| e.seq);
            let sub = sub_of(core, k);
            let (Some(seq), Some((raw, kind))) = (head, sub) else {
                // Empty queues of live subscriptions stay (small ones), so the next message
                // reuses the queue and its key: no allocation per message.
                let keep = if matches!(k, Key::Inbox) {
                    Some(INBOX_KEEP_CAPACITY)
                } else {
                    sub.map(|_| SUB_KEEP_CAPACITY)
                };
                let key = core.mailbox.ready.swap_remove(i);
                if let Some(q) = core.mailbox.queues.get_mut(key.as_str()) {
                    q.listed = false;
                    if q.items.is_empty() && keep.is_none_or(|k| q.items.capacity() > k) {
                        core.mailbox.queues.remove(key.as_str());
                    }
                }
                continue;
            };
            if actionable(core, raw, kind) {
                match best {
                    Some((_, b, ..)) if seq > b => second = second.min(seq),
                    Some((_, b, ..)) => {
                        second = b;
                        best = Some((i, seq, raw, kind));
                    }
                    None => best = Some((i, seq, raw, kind)),
                }
            }
            i += 1;
        }
        let Some((i, _, raw, kind)) = best else {
            return Ok(());
        };
        let key = core.mailbox.ready[i].clone();
        drain(lua, core, key.as_str(), raw, kind, second)?;
    }
}

/// How draining a backlog ended.
enum End {
    /// Still subscribed.
    Keep,
    /// The channel was found closed by the user: the subscription goes away.
    Closed,
    /// A one-shot subscription delivered its value: closed and removed.
    OneShot,
}

/// Deliver the backlog of subscription `key` (channel `raw`, mode `kind`) while its channel
/// takes messages and they are older than `bound`.
fn drain(
    lua: &Lua,
    core: &mut Core,
    key: &str,
    raw: ChanRef,
    kind: ModeKind,
    bound: u64,
) -> mlua::Result<()> {
    let Some(q) = core.mailbox.queues.get_mut(key) else {
        return Ok(());
    };
    let mut items = std::mem::take(&mut q.items);
    let mut end = End::Keep;
    let mut result = Ok(());
    while let Some(e) = items.front() {
        if e.seq > bound {
            break;
        }
        let receiver = match channel::readiness(core, raw) {
            Readiness::Receiver => true,
            Readiness::Room => false,
            Readiness::Closed => {
                let e = items.pop_front().expect("front exists");
                core.mailbox.discard(&e);
                end = End::Closed;
                break;
            }
            // Ticks that find the buffer full are dropped (upstream tickers drop missed ticks).
            Readiness::Busy if kind == ModeKind::Ticker => {
                let e = items.pop_front().expect("front exists");
                core.mailbox.discard(&e);
                continue;
            }
            Readiness::Busy => break,
        };
        let e = items.pop_front().expect("front exists");
        core.mailbox.discard(&e);
        if let Err(err) = deliver(lua, core, key, raw, kind, receiver, e.pkg) {
            result = Err(err);
            break;
        }
        if matches!(kind, ModeKind::TimerOnce | ModeKind::Future) {
            end = End::OneShot;
            break;
        }
    }
    let Mailbox { queues, ready, .. } = &mut core.mailbox;
    if let Some(q) = queues.get_mut(key) {
        q.items = items;
        // Drained (the usual case: one message, one waiting receiver): unlist it now rather
        // than in the next round of `flush`, which then has nothing to look up. The empty
        // queue of a live subscription stays for the next message (see `flush`).
        if q.items.is_empty() && q.listed && matches!(end, End::Keep) {
            q.listed = false;
            if let Some(j) = ready.iter().position(|k| k.same(&q.key)) {
                ready.swap_remove(j);
            }
            let keep = if key == INBOX_TOPIC {
                INBOX_KEEP_CAPACITY
            } else {
                SUB_KEEP_CAPACITY
            };
            if q.items.capacity() > keep {
                queues.remove(key);
            }
        }
    }
    result?;
    match end {
        End::Keep => {}
        End::Closed => {
            remove_sub(core, key);
        }
        End::OneShot => {
            if let Some(sub) = remove_sub(core, key) {
                channel::close_channel(lua, core, &sub.chan, None)?;
            }
        }
    }
    Ok(())
}

/// Build the value of `pkg` for a subscription of mode `kind` and hand it to the channel
/// (`receiver`: a receiver waits; else there is buffer room).
fn deliver(
    lua: &Lua,
    core: &mut Core,
    key: &str,
    raw: ChanRef,
    kind: ModeKind,
    receiver: bool,
    pkg: Package,
) -> mlua::Result<()> {
    let value = match kind {
        ModeKind::Messages => Delivery::Message(MessageData {
            from: pkg.from,
            topic: pkg.topic,
            payloads: pkg.payloads,
            ctor: msg_ctor(lua, core)?,
        }),
        ModeKind::Future => {
            let SubMode::Future(fut) = &core.subs[key].mode else {
                unreachable!("mode kind matches");
            };
            let fut = fut.clone();
            Delivery::Value(super::modules::funcs::future_delivered(
                lua,
                &fut,
                &pkg.payloads,
            )?)
        }
        _ => Delivery::Value(plain_value(lua, kind, &pkg.payloads)?),
    };
    if receiver {
        // SAFETY: `lua` is the state of `core`'s process (`flush`'s contract, passed down).
        unsafe { channel::hand_off(lua, core, raw, value) }
    } else {
        let ch = core.subs[key].chan.clone();
        // SAFETY: as above.
        unsafe { channel::buffer(lua, raw, &ch, value) }
    }
}

/// The Message constructor's registry reference in the process's state (looked up once per
/// process, see [`Mailbox::msg_ctor`]).
fn msg_ctor(lua: &Lua, core: &mut Core) -> mlua::Result<std::ffi::c_int> {
    if core.mailbox.msg_ctor <= 0 {
        // SAFETY: mlua's current stack belongs to this state.
        core.mailbox.msg_ctor = lua
            .exec_raw_lua(|raw| unsafe { message::constructor(raw.state()) })
            .map_err(mlua::Error::runtime)?;
    }
    Ok(core.mailbox.msg_ctor)
}

/// The delivered value for the modes that need no subscription state.
fn plain_value(lua: &Lua, kind: ModeKind, payloads: &[Value]) -> mlua::Result<LuaValue> {
    match kind {
        ModeKind::Events => match payloads.first() {
            Some(v) => convert::to_lua(lua, v),
            None => Ok(LuaValue::Nil),
        },
        ModeKind::TimerOnce | ModeKind::Ticker => {
            let at = payloads.first().and_then(Value::as_f64).unwrap_or(0.0);
            super::modules::time::time_at(lua, at)
        }
        _ => payloads_value(lua, payloads),
    }
}

/// The subscription of `topic` if its channel is `ch` and its backlog can be taken by a
/// receive (not one-shot subscriptions: those close their channel on delivery and are left
/// to [`flush`]).
fn pull_target(core: &Core, topic: &str, ch: *const c_void) -> Option<ModeKind> {
    // Invariant 3: a subscription with a backlog is listed.
    if core.mailbox.ready.is_empty() {
        return None;
    }
    let (raw, kind) = sub_of_topic(core, topic)?;
    if !raw.is(ch) || matches!(kind, ModeKind::TimerOnce | ModeKind::Future) {
        return None;
    }
    core.mailbox
        .queues
        .get(topic)
        .is_some_and(|q| !q.items.is_empty())
        .then_some(kind)
}

/// Whether a receive on subscription channel `ch` (of `topic`) would take a backlog message.
pub(crate) fn pullable(core: &Core, topic: &str, ch: *const c_void) -> bool {
    pull_target(core, topic, ch).is_some()
}

/// Take the oldest backlog message of the subscription of `topic` (channel `ch`, whose buffer
/// is empty) and push its value onto `l`. `Ok(false)`: nothing to take, nothing pushed. On
/// error the message is consumed and nothing is pushed.
///
/// # Safety
/// `l` is a live thread of the core's Lua state with room for one value.
pub(crate) unsafe fn pull(
    core: &mut Core,
    l: *mut ffi::lua_State,
    topic: &str,
    ch: *const c_void,
) -> Result<bool, String> {
    // Invariant 3: a subscription with a backlog is listed; nothing listed, nothing to take
    // (the common case of a receive that will wait: no lookups).
    if core.mailbox.ready.is_empty() {
        return Ok(false);
    }
    let kind = match sub_of_topic(core, topic) {
        Some((raw, kind)) if raw.is(ch) => kind,
        _ => return Ok(false),
    };
    if matches!(kind, ModeKind::TimerOnce | ModeKind::Future) {
        return Ok(false);
    }
    let Some(e) = core
        .mailbox
        .queues
        .get_mut(topic)
        .and_then(|q| q.items.pop_front())
    else {
        return Ok(false);
    };
    core.mailbox.discard(&e);
    if kind == ModeKind::Messages {
        if core.mailbox.msg_ctor <= 0 {
            // SAFETY: forwarded (`l` is a live thread of the core's state).
            core.mailbox.msg_ctor = unsafe { message::constructor(l) }?;
        }
        let d = MessageData {
            from: e.pkg.from,
            topic: e.pkg.topic,
            payloads: e.pkg.payloads,
            ctor: core.mailbox.msg_ctor,
        };
        // SAFETY: forwarded; `push_message` is protected and pushes one value or nothing.
        return unsafe { super::message::push_message(l, d) }.map(|()| true);
    }
    let lua = core.lua.clone();
    let v = plain_value(&lua, kind, &e.pkg.payloads).map_err(|e| e.to_string())?;
    lua.exec_raw_lua(|raw| {
        // SAFETY: push on mlua's current stack, then move to `l` (same Lua state).
        unsafe {
            let from = raw.state();
            if ffi::lua_checkstack(from, 2) == 0 {
                return Err("stack overflow".to_string());
            }
            raw.push_value(&v).map_err(|e| e.to_string())?;
            if from != l {
                ffi::lua_xmove(from, l, 1);
            }
            Ok(true)
        }
    })
}

/// The Lua value of a message's payloads for raw listeners.
pub(crate) fn payloads_value(lua: &Lua, payloads: &[Value]) -> mlua::Result<LuaValue> {
    match payloads.len() {
        0 => Ok(LuaValue::Nil),
        1 => convert::to_lua(lua, &payloads[0]),
        n => {
            let t = lua.create_table_with_capacity(n, 0)?;
            for (i, v) in payloads.iter().enumerate() {
                t.raw_set(i + 1, convert::to_lua(lua, v)?)?;
            }
            Ok(LuaValue::Table(t))
        }
    }
}

/// True when `topic` may be used with `process.listen`.
pub(crate) fn listen_topic_error(topic: &str) -> Option<&'static str> {
    if topic.is_empty() {
        Some("topic cannot be empty")
    } else if topic.starts_with('@') {
        Some("cannot listen to @ topics")
    } else {
        None
    }
}

/// The events topic (re-exported for the `process` module).
pub(crate) const EVENTS: &str = EVENTS_TOPIC;
/// The inbox topic.
pub(crate) const INBOX: &str = INBOX_TOPIC;
