//! `sql.builder`: Lua bindings of the query builder ([`crate::services::sql::builder`]).
//!
//! `select(cols…)`, `insert([table])`, `update([table])`, `delete([table])`; conditions
//! `expr(sql, args…)`, `eq{}`, `not_eq{}`, `lt{}`, `lte{}`, `gt{}`, `gte{}`, `like{}`,
//! `not_like{}`, `and_{…}`, `or_{…}`; placeholder formats `question` (also
//! `default_placeholder`), `dollar`, `at`, `colon`. Every fluent method returns a **new**
//! builder. `:to_sql()` → `sql, args` (NULL arguments as `sql.NULL`) or `nil, err`;
//! `:run_with(db_or_tx)` → an executor with `:query()`, `:exec()` (suspending like
//! `db:query`/`db:execute`) and `:to_sql()`.
//!
//! Condition arguments (`where`, `having`): a string with `?` placeholders plus its
//! arguments, a table (`eq` of its pairs), or a condition object. Values may be other
//! conditions or selects, which are inlined. Misuse (a non-string column, a negative limit)
//! raises.

use mlua::{Lua, MultiValue, Table, UserData, Value as LuaValue};
use wippy_rt::Error;

use super::super::super::rawfn;
use super::super::super::yields::{ret1, ret2};
use super::{SqlNull, Target, lua_type, param, run_target, target_of};
use crate::lua::modules::errors::nil_error;
use crate::lua::vm::raise;
use crate::services::sql::SqlValue;
use crate::services::sql::builder::{
    Arg, Delete, Insert, MapOp, MapVal, Placeholder, Select, Sqlizer, Update,
};

#[derive(Clone)]
struct Fmt(Placeholder);
impl UserData for Fmt {}

#[derive(Clone)]
struct Cond(Sqlizer);

#[derive(Clone)]
struct SelectB(Select);
#[derive(Clone)]
struct InsertB(Insert);
#[derive(Clone)]
struct UpdateB(Update);
#[derive(Clone)]
struct DeleteB(Delete);

/// A statement of any kind.
#[derive(Clone)]
enum Stmt {
    Select(Select),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
}

impl Stmt {
    fn to_sql(&self) -> Result<(String, Vec<SqlValue>), Error> {
        match self {
            Stmt::Select(s) => s.to_sql(),
            Stmt::Insert(s) => s.to_sql(),
            Stmt::Update(s) => s.to_sql(),
            Stmt::Delete(s) => s.to_sql(),
        }
    }
}

struct Executor {
    target: Target,
    stmt: Stmt,
}

type R = Result<(), String>;

/// A value argument: nested conditions/selects inline, anything else binds.
fn arg(v: &LuaValue, i: usize) -> Result<Arg, String> {
    if let LuaValue::UserData(ud) = v {
        if let Ok(c) = ud.borrow::<Cond>() {
            return Ok(Arg::Sql(Box::new(c.0.clone())));
        }
        if let Ok(s) = ud.borrow::<SelectB>() {
            return Ok(Arg::Sql(Box::new(Sqlizer::Select(Box::new(s.0.clone())))));
        }
    }
    param(v, i)
        .map(Arg::Value)
        .map_err(|e| e.message().to_string())
}

fn args_from(args: &MultiValue, from: usize) -> Result<Vec<Arg>, String> {
    args.iter()
        .enumerate()
        .skip(from)
        .map(|(i, v)| arg(v, i))
        .collect()
}

fn string_at(args: &MultiValue, i: usize, method: &str) -> Result<String, String> {
    match args.get(i) {
        Some(LuaValue::String(s)) => Ok(s.to_string_lossy()),
        other => Err(format!(
            "bad argument #{} to '{method}' (string expected, got {})",
            i + 1,
            other.map(lua_type).unwrap_or("no value")
        )),
    }
}

fn strings_from(args: &MultiValue, from: usize, method: &str) -> Result<Vec<String>, String> {
    (from..args.len())
        .map(|i| string_at(args, i, method))
        .collect()
}

fn count_at(args: &MultiValue, i: usize, method: &str) -> Result<u64, String> {
    match args.get(i) {
        Some(LuaValue::Integer(n)) if *n >= 0 => Ok(*n as u64),
        Some(LuaValue::Number(f)) if *f >= 0.0 && f.fract() == 0.0 => Ok(*f as u64),
        other => Err(format!(
            "bad argument #{} to '{method}' (non-negative integer expected, got {})",
            i + 1,
            other.map(lua_type).unwrap_or("no value")
        )),
    }
}

/// A map value: arrays become `IN` lists, conditions and selects are inlined.
fn map_val(v: &LuaValue) -> Result<MapVal, String> {
    match v {
        LuaValue::Table(t) => {
            let n = t.raw_len();
            let mut items = Vec::with_capacity(n);
            for i in 1..=n {
                let x: LuaValue = t.raw_get(i).map_err(|e| e.to_string())?;
                items.push(param(&x, i).map_err(|e| e.message().to_string())?);
            }
            Ok(MapVal::List(items))
        }
        _ => match arg(v, 1)? {
            Arg::Value(x) => Ok(MapVal::One(x)),
            Arg::Sql(s) => Ok(MapVal::Expr(s)),
        },
    }
}

fn map_cond(op: MapOp, t: &Table) -> Result<Sqlizer, String> {
    let mut pairs = Vec::new();
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let LuaValue::String(k) = k else {
            return Err(format!(
                "condition keys must be column names (strings), got {}",
                lua_type(&k)
            ));
        };
        pairs.push((k.to_string_lossy(), map_val(&v)?));
    }
    Ok(Sqlizer::Map(op, pairs))
}

/// A condition argument (see the module docs); `None` for nil or an empty string.
fn cond_at(args: &MultiValue, i: usize) -> Result<Option<Sqlizer>, String> {
    match args.get(i) {
        None | Some(LuaValue::Nil) => Ok(None),
        Some(LuaValue::String(s)) => {
            let s = s.to_string_lossy();
            if s.is_empty() {
                return Ok(None);
            }
            Ok(Some(Sqlizer::Raw(s, args_from(args, i + 1)?)))
        }
        Some(LuaValue::Table(t)) => Ok(Some(map_cond(MapOp::Eq, t)?)),
        Some(v @ LuaValue::UserData(_)) => match arg(v, i)? {
            Arg::Sql(s) => Ok(Some(*s)),
            Arg::Value(_) => Err(format!("unsupported condition type: {}", lua_type(v))),
        },
        Some(v) => Err(format!("unsupported condition type: {}", lua_type(v))),
    }
}

fn raw_at(args: &MultiValue, i: usize, method: &str) -> Result<Sqlizer, String> {
    let s = string_at(args, i, method)?;
    Ok(Sqlizer::Raw(s, args_from(args, i + 1)?))
}

fn fmt_at(args: &MultiValue, i: usize) -> Result<Placeholder, String> {
    match args.get(i) {
        Some(LuaValue::UserData(ud)) => ud
            .borrow::<Fmt>()
            .map(|f| f.0)
            .map_err(|_| "placeholder format expected (sql.builder.*)".to_string()),
        _ => Err("placeholder format expected (sql.builder.*)".to_string()),
    }
}

fn select_at(args: &MultiValue, i: usize) -> Result<Select, String> {
    match args.get(i) {
        Some(LuaValue::UserData(ud)) => ud
            .borrow::<SelectB>()
            .map(|s| s.0.clone())
            .map_err(|_| "select builder expected".to_string()),
        _ => Err("select builder expected".to_string()),
    }
}

fn sql_args_value(lua: &Lua, args: Vec<SqlValue>) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(args.len(), 0)?;
    for (i, a) in args.into_iter().enumerate() {
        let v = match a {
            SqlValue::Null => LuaValue::UserData(lua.create_userdata(SqlNull)?),
            SqlValue::Bool(b) => LuaValue::Boolean(b),
            SqlValue::Int(n) => LuaValue::Integer(n),
            SqlValue::Real(f) => LuaValue::Number(f),
            SqlValue::Text(b) | SqlValue::Blob(b) => LuaValue::String(lua.create_string(b)?),
        };
        t.raw_set(i + 1, v)?;
    }
    Ok(LuaValue::Table(t))
}

fn to_sql_result(lua: &Lua, r: Result<(String, Vec<SqlValue>), Error>) -> mlua::Result<MultiValue> {
    match r {
        Ok((sql, args)) => Ok(ret2(
            LuaValue::String(lua.create_string(sql)?),
            sql_args_value(lua, args)?,
        )),
        Err(e) => nil_error(lua, e),
    }
}

/// `prefix`, `suffix` and `placeholder_format`: the framing every builder shares.
macro_rules! framing_methods {
    ($b:ty, $lua:expr, $t:expr) => {{
        fluent::<$b>($lua, $t, "prefix", |b, a| {
            b.0.prefixes.push(raw_at(a, 1, "prefix")?);
            Ok(())
        })?;
        fluent::<$b>($lua, $t, "suffix", |b, a| {
            b.0.suffixes.push(raw_at(a, 1, "suffix")?);
            Ok(())
        })?;
        fluent::<$b>($lua, $t, "placeholder_format", |b, a| {
            b.0.placeholder = fmt_at(a, 1)?;
            Ok(())
        })?;
    }};
}

/// `where`, `order_by`, `limit` and `offset`: shared by SELECT, UPDATE and DELETE builders.
macro_rules! filtering_methods {
    ($b:ty, $lua:expr, $t:expr) => {{
        fluent::<$b>($lua, $t, "where", |b, a| add_where(&mut b.0.wheres, a))?;
        fluent::<$b>($lua, $t, "order_by", |b, a| {
            for s in strings_from(a, 1, "order_by")? {
                b.0.order_by.push(Sqlizer::text(s));
            }
            Ok(())
        })?;
        fluent::<$b>($lua, $t, "limit", |b, a| {
            b.0.limit = Some(count_at(a, 1, "limit")?);
            Ok(())
        })?;
        fluent::<$b>($lua, $t, "offset", |b, a| {
            b.0.offset = Some(count_at(a, 1, "offset")?);
            Ok(())
        })?;
    }};
}

/// Install `name` on `t`: clone the builder, apply `f`, return the new builder.
fn fluent<T>(
    lua: &Lua,
    t: &Table,
    name: &'static str,
    f: impl Fn(&mut T, &MultiValue) -> R + mlua::MaybeSend + 'static,
) -> mlua::Result<()>
where
    T: UserData + Clone + Send + Sync + 'static,
{
    t.raw_set(
        name,
        raise::function(lua, move |lua, args| {
            let mut b = match args.front() {
                Some(LuaValue::UserData(ud)) => match ud.borrow::<T>() {
                    Ok(b) => b.clone(),
                    Err(_) => {
                        return raise::raise_msg(
                            lua,
                            format!("bad argument #1 to '{name}' (builder expected; use ':')"),
                        );
                    }
                },
                _ => {
                    return raise::raise_msg(
                        lua,
                        format!("bad argument #1 to '{name}' (builder expected; use ':')"),
                    );
                }
            };
            match f(&mut b, &args) {
                Ok(()) => Ok(ret1(LuaValue::UserData(lua.create_userdata(b)?))),
                Err(msg) => raise::raise_msg(lua, msg),
            }
        })?,
    )
}

/// Install `to_sql` and `run_with` for builder `T`.
fn terminal<T>(lua: &Lua, t: &Table, stmt: fn(&T) -> Stmt) -> mlua::Result<()>
where
    T: UserData + Clone + Send + Sync + 'static,
{
    t.raw_set(
        "to_sql",
        raise::function(lua, move |lua, args| {
            let s = match args.front() {
                Some(LuaValue::UserData(ud)) => ud.borrow::<T>().ok().map(|b| stmt(&b)),
                _ => None,
            };
            match s {
                Some(s) => to_sql_result(lua, s.to_sql()),
                None => raise::raise_msg(lua, "bad argument #1 to 'to_sql' (builder expected)"),
            }
        })?,
    )?;
    t.raw_set(
        "run_with",
        raise::function(lua, move |lua, args| {
            let s = match args.front() {
                Some(LuaValue::UserData(ud)) => ud.borrow::<T>().ok().map(|b| stmt(&b)),
                _ => None,
            };
            let Some(s) = s else {
                return raise::raise_msg(lua, "bad argument #1 to 'run_with' (builder expected)");
            };
            let target = match args.get(1) {
                Some(LuaValue::UserData(ud)) => target_of(ud),
                _ => None,
            };
            let Some(target) = target else {
                return raise::raise_msg(
                    lua,
                    "bad argument #2 to 'run_with' (database or transaction expected)",
                );
            };
            Ok(ret1(LuaValue::UserData(
                lua.create_userdata(Executor { target, stmt: s })?,
            )))
        })?,
    )
}

fn add_where(w: &mut Vec<Sqlizer>, args: &MultiValue) -> R {
    if let Some(c) = cond_at(args, 1)? {
        w.push(c);
    }
    Ok(())
}

impl UserData for SelectB {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| {
            let t = lua.create_table()?;
            fluent::<SelectB>(lua, &t, "from", |b, a| {
                b.0.from = Some(Sqlizer::text(string_at(a, 1, "from")?));
                Ok(())
            })?;
            fluent::<SelectB>(lua, &t, "from_select", |b, a| {
                let sel = select_at(a, 1)?;
                let alias = string_at(a, 2, "from_select")?;
                b.0.from = Some(Sqlizer::Raw(
                    format!("(?) AS {alias}"),
                    vec![Arg::Sql(Box::new(Sqlizer::Select(Box::new(sel))))],
                ));
                Ok(())
            })?;
            for (name, kw) in [
                ("join", "JOIN "),
                ("left_join", "LEFT JOIN "),
                ("right_join", "RIGHT JOIN "),
                ("inner_join", "INNER JOIN "),
                ("cross_join", "CROSS JOIN "),
            ] {
                fluent::<SelectB>(lua, &t, name, move |b, a| match raw_at(a, 1, name)? {
                    Sqlizer::Raw(s, args) => {
                        b.0.joins.push(Sqlizer::Raw(format!("{kw}{s}"), args));
                        Ok(())
                    }
                    _ => unreachable!("raw_at returns Raw"),
                })?;
            }
            fluent::<SelectB>(lua, &t, "having", |b, a| add_where(&mut b.0.havings, a))?;
            fluent::<SelectB>(lua, &t, "group_by", |b, a| {
                b.0.group_by.extend(strings_from(a, 1, "group_by")?);
                Ok(())
            })?;
            fluent::<SelectB>(lua, &t, "columns", |b, a| {
                for i in 1..a.len() {
                    b.0.columns.push(column_at(a, i, "columns")?);
                }
                Ok(())
            })?;
            fluent::<SelectB>(lua, &t, "column", |b, a| {
                b.0.columns.push(match a.get(1) {
                    Some(LuaValue::String(_)) => raw_at(a, 1, "column")?,
                    _ => column_at(a, 1, "column")?,
                });
                Ok(())
            })?;
            fluent::<SelectB>(lua, &t, "distinct", |b, _| {
                b.0.options.push("DISTINCT".into());
                Ok(())
            })?;
            fluent::<SelectB>(lua, &t, "options", |b, a| {
                b.0.options.extend(strings_from(a, 1, "options")?);
                Ok(())
            })?;
            framing_methods!(SelectB, lua, &t);
            filtering_methods!(SelectB, lua, &t);
            terminal::<SelectB>(lua, &t, |b| Stmt::Select(b.0.clone()))?;
            Ok(t)
        });
    }
}

fn column_at(args: &MultiValue, i: usize, method: &str) -> Result<Sqlizer, String> {
    match args.get(i) {
        Some(LuaValue::String(s)) => Ok(Sqlizer::text(s.to_string_lossy())),
        Some(v @ LuaValue::UserData(_)) => match arg(v, i)? {
            Arg::Sql(s) => Ok(*s),
            Arg::Value(_) => Err(format!(
                "bad argument #{} to '{method}' (column expected)",
                i + 1
            )),
        },
        other => Err(format!(
            "bad argument #{} to '{method}' (string expected, got {})",
            i + 1,
            other.map(lua_type).unwrap_or("no value")
        )),
    }
}

/// `(keys sorted, values)` of a `{column = value}` table.
fn sorted_map(a: &MultiValue, method: &str) -> Result<Vec<(String, Arg)>, String> {
    let Some(LuaValue::Table(t)) = a.get(1) else {
        return Err(format!("bad argument #1 to '{method}' (table expected)"));
    };
    let mut pairs = Vec::new();
    for pair in t.pairs::<LuaValue, LuaValue>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let LuaValue::String(k) = k else {
            return Err(format!("{method}: keys must be column names (strings)"));
        };
        pairs.push((k.to_string_lossy(), arg(&v, 1)?));
    }
    pairs.sort_by(|x, y| x.0.cmp(&y.0));
    Ok(pairs)
}

impl UserData for InsertB {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| {
            let t = lua.create_table()?;
            fluent::<InsertB>(lua, &t, "into", |b, a| {
                b.0.into = string_at(a, 1, "into")?;
                Ok(())
            })?;
            fluent::<InsertB>(lua, &t, "columns", |b, a| {
                b.0.columns.extend(strings_from(a, 1, "columns")?);
                Ok(())
            })?;
            fluent::<InsertB>(lua, &t, "values", |b, a| {
                b.0.values.push(args_from(a, 1)?);
                Ok(())
            })?;
            fluent::<InsertB>(lua, &t, "set_map", |b, a| {
                let pairs = sorted_map(a, "set_map")?;
                b.0.columns = pairs.iter().map(|(k, _)| k.clone()).collect();
                b.0.values = vec![pairs.into_iter().map(|(_, v)| v).collect()];
                Ok(())
            })?;
            fluent::<InsertB>(lua, &t, "select", |b, a| {
                b.0.select = Some(Box::new(select_at(a, 1)?));
                Ok(())
            })?;
            fluent::<InsertB>(lua, &t, "options", |b, a| {
                b.0.options.extend(strings_from(a, 1, "options")?);
                Ok(())
            })?;
            framing_methods!(InsertB, lua, &t);
            terminal::<InsertB>(lua, &t, |b| Stmt::Insert(b.0.clone()))?;
            Ok(t)
        });
    }
}

impl UserData for UpdateB {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| {
            let t = lua.create_table()?;
            fluent::<UpdateB>(lua, &t, "table", |b, a| {
                b.0.table = string_at(a, 1, "table")?;
                Ok(())
            })?;
            fluent::<UpdateB>(lua, &t, "set", |b, a| {
                let col = string_at(a, 1, "set")?;
                let v = arg(a.get(2).unwrap_or(&LuaValue::Nil), 2)?;
                b.0.sets.push((col, v));
                Ok(())
            })?;
            fluent::<UpdateB>(lua, &t, "set_map", |b, a| {
                b.0.sets.extend(sorted_map(a, "set_map")?);
                Ok(())
            })?;
            fluent::<UpdateB>(lua, &t, "from", |b, a| {
                b.0.from = Some(Sqlizer::text(string_at(a, 1, "from")?));
                Ok(())
            })?;
            fluent::<UpdateB>(lua, &t, "from_select", |b, a| {
                let sel = select_at(a, 1)?;
                let alias = string_at(a, 2, "from_select")?;
                b.0.from = Some(Sqlizer::Raw(
                    format!("(?) AS {alias}"),
                    vec![Arg::Sql(Box::new(Sqlizer::Select(Box::new(sel))))],
                ));
                Ok(())
            })?;
            framing_methods!(UpdateB, lua, &t);
            filtering_methods!(UpdateB, lua, &t);
            terminal::<UpdateB>(lua, &t, |b| Stmt::Update(b.0.clone()))?;
            Ok(t)
        });
    }
}

impl UserData for DeleteB {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| {
            let t = lua.create_table()?;
            fluent::<DeleteB>(lua, &t, "from", |b, a| {
                b.0.from = string_at(a, 1, "from")?;
                Ok(())
            })?;
            framing_methods!(DeleteB, lua, &t);
            filtering_methods!(DeleteB, lua, &t);
            terminal::<DeleteB>(lua, &t, |b| Stmt::Delete(b.0.clone()))?;
            Ok(t)
        });
    }
}

impl UserData for Cond {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| {
            let t = lua.create_table()?;
            t.raw_set(
                "to_sql",
                raise::function(lua, |lua, args| {
                    let c = match args.front() {
                        Some(LuaValue::UserData(ud)) => {
                            ud.borrow::<Cond>().ok().map(|c| c.0.clone())
                        }
                        _ => None,
                    };
                    match c {
                        Some(c) => to_sql_result(lua, c.render()),
                        None => raise::raise_msg(
                            lua,
                            "bad argument #1 to 'to_sql' (condition expected)",
                        ),
                    }
                })?,
            )?;
            Ok(t)
        });
    }
}

fn executor_run(lua: &Lua, args: MultiValue, exec: bool) -> mlua::Result<MultiValue> {
    let e = match args.front() {
        Some(LuaValue::UserData(ud)) => ud.borrow::<Executor>().ok().map(|e| {
            (
                match &e.target {
                    Target::Db(d) => Target::Db(d.clone()),
                    Target::Tx(t) => Target::Tx(t.clone()),
                },
                e.stmt.clone(),
            )
        }),
        _ => None,
    };
    let Some((target, stmt)) = e else {
        return raise::raise_msg(lua, "bad argument #1 (executor expected; use ':')");
    };
    match stmt.to_sql() {
        Ok((sql, params)) => run_target(lua, &target, sql, params, exec),
        Err(e) => nil_error(lua, e),
    }
}

impl UserData for Executor {
    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| {
            let t = lua.create_table()?;
            rawfn::set(lua, &t, "query", crate::lua_fn!(builder_query))?;
            rawfn::set(lua, &t, "exec", crate::lua_fn!(builder_exec))?;
            t.raw_set(
                "to_sql",
                raise::function(lua, |lua, args| {
                    let s = match args.front() {
                        Some(LuaValue::UserData(ud)) => {
                            ud.borrow::<Executor>().ok().map(|e| e.stmt.clone())
                        }
                        _ => None,
                    };
                    match s {
                        Some(s) => to_sql_result(lua, s.to_sql()),
                        None => {
                            raise::raise_msg(lua, "bad argument #1 to 'to_sql' (executor expected)")
                        }
                    }
                })?,
            )?;
            Ok(t)
        });
    }
}

fn map_maker(lua: &Lua, t: &Table, name: &'static str, op: MapOp) -> mlua::Result<()> {
    t.raw_set(
        name,
        raise::function(lua, move |lua, args| match args.front() {
            Some(LuaValue::Table(m)) => match map_cond(op, m) {
                Ok(c) => Ok(ret1(LuaValue::UserData(lua.create_userdata(Cond(c))?))),
                Err(e) => raise::raise_msg(lua, e),
            },
            other => raise::raise_msg(
                lua,
                format!(
                    "bad argument #1 to '{name}' (table expected, got {})",
                    other.map(lua_type).unwrap_or("no value")
                ),
            ),
        })?,
    )
}

fn conj_maker(lua: &Lua, t: &Table, name: &'static str, and: bool) -> mlua::Result<()> {
    t.raw_set(
        name,
        raise::function(lua, move |lua, args| {
            let Some(LuaValue::Table(list)) = args.front() else {
                return raise::raise_msg(
                    lua,
                    format!("bad argument #1 to '{name}' (table expected)"),
                );
            };
            let mut parts = Vec::new();
            for i in 1..=list.raw_len() {
                let v: LuaValue = list.raw_get(i)?;
                let one = MultiValue::from_vec(vec![LuaValue::Nil, v]);
                match cond_at(&one, 1) {
                    Ok(Some(c)) => parts.push(c),
                    Ok(None) => {}
                    Err(e) => return raise::raise_msg(lua, e),
                }
            }
            let c = if and {
                Sqlizer::And(parts)
            } else {
                Sqlizer::Or(parts)
            };
            Ok(ret1(LuaValue::UserData(lua.create_userdata(Cond(c))?)))
        })?,
    )
}

/// The `sql.builder` table.
/// `t[name](table?)`: a statement builder for the optional table name (a non-string raises).
fn table_maker<B: mlua::UserData + mlua::MaybeSend + mlua::MaybeSync + 'static>(
    lua: &Lua,
    t: &mlua::Table,
    name: &str,
    make: fn(String) -> B,
) -> mlua::Result<()> {
    t.raw_set(
        name,
        raise::function(lua, move |lua, args| {
            let table = match args.front() {
                None | Some(LuaValue::Nil) => String::new(),
                Some(LuaValue::String(s)) => s.to_string_lossy(),
                Some(v) => {
                    let e = format!("table name must be a string, got {}", lua_type(v));
                    return raise::raise_msg(lua, e);
                }
            };
            Ok(ret1(LuaValue::UserData(lua.create_userdata(make(table))?)))
        })?,
    )
}

pub(crate) fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table()?;
    t.raw_set(
        "select",
        raise::function(lua, |lua, args| {
            let mut s = Select::default();
            for i in 0..args.len() {
                match column_at(&args, i, "select") {
                    Ok(c) => s.columns.push(c),
                    Err(e) => return raise::raise_msg(lua, e),
                }
            }
            Ok(ret1(LuaValue::UserData(lua.create_userdata(SelectB(s))?)))
        })?,
    )?;
    table_maker(lua, &t, "insert", |into| {
        InsertB(Insert {
            into,
            ..Insert::default()
        })
    })?;
    table_maker(lua, &t, "update", |table| {
        UpdateB(Update {
            table,
            ..Update::default()
        })
    })?;
    table_maker(lua, &t, "delete", |from| {
        DeleteB(Delete {
            from,
            ..Delete::default()
        })
    })?;
    t.raw_set(
        "expr",
        raise::function(lua, |lua, args| match raw_at(&args, 0, "expr") {
            Ok(c) => Ok(ret1(LuaValue::UserData(lua.create_userdata(Cond(c))?))),
            Err(e) => raise::raise_msg(lua, e),
        })?,
    )?;
    map_maker(lua, &t, "eq", MapOp::Eq)?;
    map_maker(lua, &t, "not_eq", MapOp::NotEq)?;
    map_maker(lua, &t, "lt", MapOp::Lt)?;
    map_maker(lua, &t, "lte", MapOp::Lte)?;
    map_maker(lua, &t, "gt", MapOp::Gt)?;
    map_maker(lua, &t, "gte", MapOp::Gte)?;
    map_maker(lua, &t, "like", MapOp::Like)?;
    map_maker(lua, &t, "not_like", MapOp::NotLike)?;
    conj_maker(lua, &t, "and_", true)?;
    conj_maker(lua, &t, "or_", false)?;
    let q = lua.create_userdata(Fmt(Placeholder::Question))?;
    t.raw_set("question", q.clone())?;
    t.raw_set("default_placeholder", q)?;
    t.raw_set("dollar", lua.create_userdata(Fmt(Placeholder::Dollar))?)?;
    t.raw_set("at", lua.create_userdata(Fmt(Placeholder::At))?)?;
    t.raw_set("colon", lua.create_userdata(Fmt(Placeholder::Colon))?)?;
    Ok(LuaValue::Table(t))
}

// Light-function entry points (`rawfn`) of the executor methods.

fn builder_query(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    executor_run(lua, args, false)
}

fn builder_exec(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    executor_run(lua, args, true)
}
