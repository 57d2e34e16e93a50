//! The `registry` module (spec `lua-api.md` §3.8.4): reading the registry, snapshots and
//! versions, and changing it from Lua.
//!
//! | function | returns |
//! |---|---|
//! | `registry.get(id)` | entry, nil / nil, err (`NotFound` `"entry not found: <id>"`) |
//! | `registry.find(filter)` | array of entries, nil |
//! | `registry.parse_id(s)` | `{ns =, name =}` (split at the first `:`; none → ns `""`) |
//! | `registry.snapshot()` / `snapshot_at(version)` | Snapshot / nil, err (`Invalid` for ids ≤ 0, `NotFound` unknown) |
//! | `registry.current_version()` / `versions()` / `history()` | Version / array of Versions / History |
//! | `registry.apply_version(version)` | true / false, err (blocking) |
//! | `registry.build_delta(from, to)` | `{ {kind =, entry =}, ... }` |
//!
//! Entries are `{id = "ns:name", kind, meta, data}`. Filters use the finder's real syntax:
//! `.kind`/`.ns`/`.name`/`.id` globs, `meta.<f>` equality, `~meta.<f>` regex, `*meta.<f>`
//! substring, `^`/`$` prefix/suffix; keys of a nested `meta = {...}` table are merged in
//! *without* the `meta.` prefix and therefore ignored with a warning, exactly as upstream
//! (so `{kind = "function.lua"}` matches everything).
//!
//! **Snapshot**: `:entries()`, `:get(id)`, `:namespace(ns)`, `:find(filter)`, `:version()`,
//! `:changes()`. **Changes** (mutable, methods return the same object for chaining, or
//! `nil, err` `Invalid` for a bad entry): `:create(entry)`, `:update(entry)`,
//! `:delete(id | {ns =, name =})`, `:ops()`, `:apply()` → new Version / `nil, err`
//! (`Invalid` "no changes to apply"; a rejecting kind handler → the registry's error, the
//! whole change rolled back). **Version**: `:id()`, `:previous()`, `:next()`, `:string()`.
//! **History**: `:versions()`, `:get_version(id)`, `:snapshot_at(version)`.
//!
//! `apply` and `apply_version` run the registry transition on a helper thread and suspend the
//! calling task meanwhile (listeners may take a while; a worker thread is never blocked).
//! Applying entries is how code hot-adds entries at run time, Lua code included (a
//! `function.lua` entry whose `source` is the code text).

use std::sync::Arc;

use mlua::{Lua, MultiValue, UserData, UserDataMethods, Value as LuaValue};
use wippy_rt::{Error, Kind, Value};

use crate::lua::convert;
use crate::lua::engine::core::{Conv, Op, with_core};
use crate::lua::engine::rawfn;
use crate::lua::engine::yields::{self, ret1, ret2};
use crate::lua::modules::errors::{error_value, nil_err, nil_error};
use crate::lua::modules::register_module;
use crate::lua::vm::raise;
use crate::registry::{ChangeSet, Entry, Id, Operation, Registry, Snapshot};

/// Register the module (once per OS process).
pub fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| register_module("registry", false, Arc::new(build)));
}

fn current_registry() -> Result<Arc<Registry>, Error> {
    with_core(|c| c.engine.sys.registry.clone()).map_err(|e| Error::internal(e.message()))
}

/// `{id, kind, meta, data}` built straight from the entry (no intermediate `Value` copy:
/// this is the per-result cost of `find`).
fn entry_value(lua: &Lua, e: &Entry) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 4)?;
    t.raw_set("id", e.id.to_string())?;
    t.raw_set("kind", e.kind.as_str())?;
    let meta = if e.meta.is_nil() {
        LuaValue::Table(lua.create_table()?)
    } else {
        convert::to_lua(lua, &e.meta)?
    };
    t.raw_set("meta", meta)?;
    t.raw_set("data", convert::to_lua(lua, &e.data)?)?;
    Ok(LuaValue::Table(t))
}

fn entries_table(lua: &Lua, es: &[Arc<Entry>]) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(es.len(), 0)?;
    for (i, e) in es.iter().enumerate() {
        t.raw_set(i + 1, entry_value(lua, e)?)?;
    }
    Ok(LuaValue::Table(t))
}

/// A filter table as finder criteria (nested `meta = {}` keys merged without prefix).
fn criteria(v: &LuaValue) -> Result<Value, Error> {
    let LuaValue::Table(t) = v else {
        return Err(Error::invalid("filter must be a table"));
    };
    let mut out: Vec<(Value, Value)> = Vec::new();
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair.map_err(|e| Error::invalid(e.to_string()))?;
        let LuaValue::String(k) = k else { continue };
        let k = k.to_string_lossy();
        if k == "meta"
            && let LuaValue::Table(m) = &v
        {
            for p in m.pairs::<LuaValue, LuaValue>() {
                let (mk, mv) = p.map_err(|e| Error::invalid(e.to_string()))?;
                if let LuaValue::String(mk) = mk {
                    out.push((Value::from(mk.to_string_lossy()), convert::from_lua(&mv)?));
                }
            }
            continue;
        }
        out.push((Value::from(k), convert::from_lua(&v)?));
    }
    Ok(Value::Map(out))
}

fn id_arg(v: Option<&LuaValue>) -> Result<Id, Error> {
    match v {
        Some(LuaValue::String(s)) => Ok(Id::parse(&s.to_string_lossy())),
        Some(LuaValue::Table(t)) => {
            let part = |k: &str| -> String {
                match t.raw_get::<LuaValue>(k) {
                    Ok(LuaValue::String(s)) => s.to_string_lossy(),
                    _ => String::new(),
                }
            };
            Ok(Id::new(&part("ns"), &part("name")))
        }
        _ => Err(Error::invalid("entry id must be a string or {ns=, name=}")),
    }
}

fn entry_arg(v: Option<&LuaValue>) -> Result<Entry, Error> {
    let v = v.ok_or_else(|| Error::invalid("entry table expected"))?;
    let val = convert::from_lua(v)?;
    let e = Entry::from_value(&val)?;
    if e.id.name().is_empty() {
        return Err(Error::invalid("entry id is required"));
    }
    if e.kind.is_empty() {
        return Err(Error::invalid("entry kind is required"));
    }
    Ok(e)
}

// ===== Version / History / Snapshot / Changes =====

/// `Version` object.
#[derive(Clone)]
struct LuaVersion {
    reg: Arc<Registry>,
    id: u64,
    parent: Option<u64>,
}

impl LuaVersion {
    fn of(reg: &Arc<Registry>, v: crate::registry::Version) -> LuaVersion {
        LuaVersion {
            reg: reg.clone(),
            id: v.id,
            parent: v.parent,
        }
    }
}

impl UserData for LuaVersion {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("id", |_, v, ()| Ok(v.id as i64));
        // Upstream formats a version as `v<id>` (`system/registry/version`).
        m.add_method("string", |_, v, ()| Ok(format!("v{}", v.id)));
        m.add_method("previous", |lua, v, ()| {
            match v.parent.and_then(|p| v.reg.version(p)) {
                Some(p) => lua
                    .create_userdata(LuaVersion::of(&v.reg, p))
                    .map(LuaValue::UserData),
                None => Ok(LuaValue::Nil),
            }
        });
        m.add_method("next", |lua, v, ()| match v.reg.next_version_of(v.id) {
            Some(n) => lua
                .create_userdata(LuaVersion::of(&v.reg, n))
                .map(LuaValue::UserData),
            None => Ok(LuaValue::Nil),
        });
        m.add_meta_method(mlua::MetaMethod::ToString, |_, v, ()| {
            Ok(format!("registry.Version{{{}}}", v.id))
        });
        m.add_meta_method(mlua::MetaMethod::Eq, |_, v, o: mlua::AnyUserData| {
            Ok(o.borrow::<LuaVersion>().is_ok_and(|o| o.id == v.id))
        });
    }
}

fn version_arg(v: Option<&LuaValue>) -> Result<u64, Error> {
    match v {
        Some(LuaValue::UserData(ud)) => ud
            .borrow::<LuaVersion>()
            .map(|v| v.id)
            .map_err(|_| Error::invalid("Version expected")),
        Some(LuaValue::Integer(i)) => Ok(*i as u64),
        Some(LuaValue::Number(n)) if n.fract() == 0.0 => Ok(*n as u64),
        _ => Err(Error::invalid("version (Version or id) expected")),
    }
}

/// `Snapshot` object.
struct LuaSnapshot {
    reg: Arc<Registry>,
    snap: Snapshot,
}

impl UserData for LuaSnapshot {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("entries", |lua, s, ()| {
            Ok(ret2(entries_table(lua, &s.snap.entries())?, LuaValue::Nil))
        });
        m.add_method("get", |lua, s, id: LuaValue| {
            let id = match id_arg(Some(&id)) {
                Ok(id) => id,
                Err(e) => return nil_error(lua, e),
            };
            match s.snap.get(&id) {
                Some(e) => Ok(ret2(entry_value(lua, &e)?, LuaValue::Nil)),
                None => nil_err(lua, Kind::NOT_FOUND, format!("entry not found: {id}")),
            }
        });
        m.add_method("namespace", |lua, s, ns: String| {
            Ok(ret2(
                entries_table(lua, &s.snap.namespace(&ns))?,
                LuaValue::Nil,
            ))
        });
        m.add_method("find", |lua, s, f: LuaValue| {
            let c = match criteria(&f) {
                Ok(c) => c,
                Err(e) => return nil_error(lua, e),
            };
            let q = s.reg.query(&c);
            Ok(ret2(entries_table(lua, &s.snap.find(&q))?, LuaValue::Nil))
        });
        m.add_method("version", |lua, s, ()| {
            let v = s
                .reg
                .version(s.snap.version())
                .unwrap_or(crate::registry::Version {
                    id: s.snap.version(),
                    parent: None,
                });
            lua.create_userdata(LuaVersion::of(&s.reg, v))
        });
        m.add_method("changes", |lua, s, ()| {
            lua.create_userdata(LuaChanges {
                reg: s.reg.clone(),
                ops: Vec::new(),
            })
        });
        m.add_meta_method(mlua::MetaMethod::ToString, |_, s, ()| {
            Ok(format!("registry.Snapshot{{version={}}}", s.snap.version()))
        });
    }
}

/// `Changes` object: a mutable list of operations.
struct LuaChanges {
    reg: Arc<Registry>,
    ops: Vec<Operation>,
}

/// `self` or `nil, err` for the chaining methods.
fn chain(lua: &Lua, this: mlua::AnyUserData, r: Result<(), Error>) -> mlua::Result<MultiValue> {
    match r {
        Ok(()) => Ok(ret1(LuaValue::UserData(this))),
        Err(e) => nil_error(lua, e),
    }
}

impl UserData for LuaChanges {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_function("create", |lua, (this, e): (mlua::AnyUserData, LuaValue)| {
            let r = entry_arg(Some(&e)).map(|e| {
                this.borrow_mut::<LuaChanges>()
                    .map(|mut c| c.ops.push(Operation::create(e)))
                    .ok();
            });
            chain(lua, this, r)
        });
        m.add_function("update", |lua, (this, e): (mlua::AnyUserData, LuaValue)| {
            let r = entry_arg(Some(&e)).map(|e| {
                this.borrow_mut::<LuaChanges>()
                    .map(|mut c| c.ops.push(Operation::update(e)))
                    .ok();
            });
            chain(lua, this, r)
        });
        m.add_function(
            "delete",
            |lua, (this, id): (mlua::AnyUserData, LuaValue)| {
                let r = id_arg(Some(&id)).map(|id| {
                    this.borrow_mut::<LuaChanges>()
                        .map(|mut c| c.ops.push(Operation::delete(id)))
                        .ok();
                });
                chain(lua, this, r)
            },
        );
        m.add_method("ops", |lua, c, ()| {
            let t = lua.create_table_with_capacity(c.ops.len(), 0)?;
            for (i, op) in c.ops.iter().enumerate() {
                t.raw_set(i + 1, convert::to_lua(lua, &op.to_value())?)?;
            }
            Ok(t)
        });
        m.add_meta_method(mlua::MetaMethod::ToString, |_, c, ()| {
            Ok(format!("registry.Changes{{ops={}}}", c.ops.len()))
        });
    }

    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| {
            let t = lua.create_table_with_capacity(0, 1)?;
            rawfn::set(lua, &t, "apply", crate::lua_fn!(changes_apply))?;
            Ok(t)
        });
    }
}

/// Version / `nil, err` from a job result carrying a version id.
fn version_result(
    lua: &Lua,
    reg: &Arc<Registry>,
    r: Result<Value, Error>,
) -> mlua::Result<Vec<LuaValue>> {
    match r {
        Ok(v) => {
            let id = v.as_i64().unwrap_or(0) as u64;
            let ver = reg
                .version(id)
                .unwrap_or(crate::registry::Version { id, parent: None });
            Ok(vec![
                LuaValue::UserData(lua.create_userdata(LuaVersion::of(reg, ver))?),
                LuaValue::Nil,
            ])
        }
        Err(e) => Ok(vec![LuaValue::Nil, error_value(lua, e)?]),
    }
}

/// `History` object.
struct LuaHistory {
    reg: Arc<Registry>,
}

impl UserData for LuaHistory {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("versions", |lua, h, ()| versions_table(lua, &h.reg));
        m.add_method("get_version", |lua, h, id: LuaValue| {
            let id = match version_arg(Some(&id)) {
                Ok(i) => i,
                Err(e) => return nil_error(lua, e),
            };
            match h.reg.version(id) {
                Some(v) => Ok(ret2(
                    LuaValue::UserData(lua.create_userdata(LuaVersion::of(&h.reg, v))?),
                    LuaValue::Nil,
                )),
                None => nil_err(lua, Kind::NOT_FOUND, format!("version not found: {id}")),
            }
        });
        m.add_method("snapshot_at", |lua, h, v: LuaValue| {
            snapshot_at(lua, &h.reg, Some(&v))
        });
    }
}

fn versions_table(lua: &Lua, reg: &Arc<Registry>) -> mlua::Result<LuaValue> {
    let vs = reg.versions();
    let t = lua.create_table_with_capacity(vs.len(), 0)?;
    for (i, v) in vs.into_iter().enumerate() {
        t.raw_set(i + 1, lua.create_userdata(LuaVersion::of(reg, v))?)?;
    }
    Ok(LuaValue::Table(t))
}

fn snapshot_at(lua: &Lua, reg: &Arc<Registry>, v: Option<&LuaValue>) -> mlua::Result<MultiValue> {
    let id = match version_arg(v) {
        Ok(i) => i,
        Err(e) => return nil_error(lua, e),
    };
    if id == 0 {
        return nil_err(lua, Kind::INVALID, "version id must be greater than 0");
    }
    match reg.snapshot_at(id) {
        Ok(snap) => Ok(ret2(
            LuaValue::UserData(lua.create_userdata(LuaSnapshot {
                reg: reg.clone(),
                snap,
            })?),
            LuaValue::Nil,
        )),
        Err(e) => nil_error(lua, e),
    }
}

// ===== module functions =====

/// Run `f` with the registry of the calling process, raising when there is none.
fn with_reg(
    lua: &Lua,
    f: impl FnOnce(Arc<Registry>) -> mlua::Result<MultiValue>,
) -> mlua::Result<MultiValue> {
    match current_registry() {
        Ok(r) => f(r),
        Err(e) => raise::raise_msg(lua, e.message()),
    }
}

fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 11)?;
    rawfn::set(lua, &t, "get", crate::lua_fn!(registry_get))?;
    rawfn::set(lua, &t, "find", crate::lua_fn!(registry_find))?;
    t.raw_set(
        "parse_id",
        lua.create_function(|lua, s: String| {
            let id = Id::parse(&s);
            let r = lua.create_table_with_capacity(0, 2)?;
            r.raw_set("ns", id.ns())?;
            r.raw_set("name", id.name())?;
            Ok(r)
        })?,
    )?;
    rawfn::set(lua, &t, "snapshot", crate::lua_fn!(registry_snapshot))?;
    rawfn::set(lua, &t, "snapshot_at", crate::lua_fn!(registry_snapshot_at))?;
    rawfn::set(
        lua,
        &t,
        "current_version",
        crate::lua_fn!(registry_current_version),
    )?;
    rawfn::set(lua, &t, "versions", crate::lua_fn!(registry_versions))?;
    rawfn::set(lua, &t, "history", crate::lua_fn!(registry_history))?;
    rawfn::set(
        lua,
        &t,
        "apply_version",
        crate::lua_fn!(registry_apply_version),
    )?;
    rawfn::set(lua, &t, "build_delta", crate::lua_fn!(registry_build_delta))?;
    Ok(LuaValue::Table(t))
}

/// `registry.get`.
fn registry_get(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let id = match args.front() {
        Some(LuaValue::String(s)) => Id::parse(&s.to_string_lossy()),
        other => {
            return raise::raise_msg(
                lua,
                format!(
                    "bad argument #1 to 'get' (string expected, got {})",
                    rawfn::arg_type(other)
                ),
            );
        }
    };
    with_reg(lua, |reg| match reg.get(&id) {
        Some(e) => Ok(ret2(entry_value(lua, &e)?, LuaValue::Nil)),
        None => nil_err(lua, Kind::NOT_FOUND, format!("entry not found: {id}")),
    })
}

/// `registry.find`.
fn registry_find(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let c = match criteria(args.front().unwrap_or(&LuaValue::Nil)) {
        Ok(c) => c,
        Err(e) => return nil_error(lua, e),
    };
    with_reg(lua, |reg| {
        let q = reg.query(&c);
        Ok(ret2(entries_table(lua, &reg.find(&q))?, LuaValue::Nil))
    })
}

/// `registry.snapshot`.
fn registry_snapshot(lua: &Lua, _args: MultiValue) -> mlua::Result<MultiValue> {
    with_reg(lua, |reg| {
        let snap = reg.snapshot();
        Ok(ret2(
            LuaValue::UserData(lua.create_userdata(LuaSnapshot { reg, snap })?),
            LuaValue::Nil,
        ))
    })
}

/// `registry.snapshot_at`.
fn registry_snapshot_at(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    with_reg(lua, |reg| snapshot_at(lua, &reg, args.front()))
}

/// `registry.current_version`.
fn registry_current_version(lua: &Lua, _args: MultiValue) -> mlua::Result<MultiValue> {
    with_reg(lua, |reg| {
        let v = reg.current_version();
        Ok(ret1(LuaValue::UserData(
            lua.create_userdata(LuaVersion::of(&reg, v))?,
        )))
    })
}

/// `registry.versions`.
fn registry_versions(lua: &Lua, _args: MultiValue) -> mlua::Result<MultiValue> {
    with_reg(lua, |reg| {
        Ok(ret2(versions_table(lua, &reg)?, LuaValue::Nil))
    })
}

/// `registry.history`.
fn registry_history(lua: &Lua, _args: MultiValue) -> mlua::Result<MultiValue> {
    with_reg(lua, |reg| {
        Ok(ret2(
            LuaValue::UserData(lua.create_userdata(LuaHistory { reg })?),
            LuaValue::Nil,
        ))
    })
}

/// `registry.build_delta`.
fn registry_build_delta(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let list = |v: Option<&LuaValue>| -> Result<Vec<Arc<Entry>>, Error> {
        let Some(LuaValue::Table(t)) = v else {
            return Err(Error::invalid("entry list expected"));
        };
        let mut out = Vec::new();
        for e in t.sequence_values::<LuaValue>() {
            let e = e.map_err(|e| Error::invalid(e.to_string()))?;
            out.push(Arc::new(entry_arg(Some(&e))?));
        }
        Ok(out)
    };
    let (from, to) = match (list(args.front()), list(args.get(1))) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return nil_error(lua, e),
    };
    with_reg(lua, |reg| {
        let cs = reg.build_delta(&from, &to);
        let t = lua.create_table_with_capacity(cs.ops.len(), 0)?;
        for (i, op) in cs.ops.iter().enumerate() {
            t.raw_set(i + 1, convert::to_lua(lua, &op.to_value())?)?;
        }
        Ok(ret2(LuaValue::Table(t), LuaValue::Nil))
    })
}

fn changes_apply(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let (reg, ops) = match args.front() {
        Some(LuaValue::UserData(ud)) => {
            let c = ud.borrow::<LuaChanges>()?;
            (c.reg.clone(), c.ops.clone())
        }
        _ => {
            return Err(mlua::Error::runtime(
                "Changes expected (use ':' to call apply)",
            ));
        }
    };
    if ops.is_empty() {
        return nil_err(lua, Kind::INVALID, "no changes to apply");
    }
    let r2 = reg.clone();
    let job = move || -> Result<Value, Error> {
        r2.apply(ChangeSet::from(ops))
            .map(|v| Value::Int(v.id as i64))
    };
    yields::suspend(
        lua,
        Op::Job(
            Box::new(job),
            Conv::Custom(Box::new(move |lua, r| version_result(lua, &reg, r))),
        ),
    )
}

fn registry_apply_version(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let id = match version_arg(args.front()) {
        Ok(i) => i,
        Err(e) => return Ok(ret2(LuaValue::Boolean(false), error_value(lua, e)?)),
    };
    let reg = match current_registry() {
        Ok(r) => r,
        Err(e) => return raise::raise_msg(lua, e.message()),
    };
    let job = move || -> Result<Value, Error> { reg.apply_version(id).map(|_| Value::Nil) };
    yields::suspend(
        lua,
        Op::Job(
            Box::new(job),
            Conv::Custom(Box::new(|lua, r| match r {
                Ok(_) => Ok(vec![LuaValue::Boolean(true), LuaValue::Nil]),
                Err(e) => Ok(vec![LuaValue::Boolean(false), error_value(lua, e)?]),
            })),
        ),
    )
}
