//! The SQL query builder behind `sql.builder` (spec `lua-api.md` §3.8.14).
//!
//! Upstream wraps Go's `squirrel`; apps compare generated SQL, so this reproduces its output
//! byte for byte: clause order and separators, `squirrel`'s condition rendering (map
//! conditions sorted by column, `IS NULL` / `IN (…)` forms, parenthesised `AND`/`OR` groups,
//! `(1=1)` / `(1=0)` for empty groups), literal `LIMIT`/`OFFSET`, and placeholder rewriting
//! (`?` → `$n`, `@pn`, `:n`; `??` escapes a literal `?`) applied once to the final text.
//!
//! Builders are values: every fluent call in Lua clones and returns a new builder, so a
//! partially built query can be reused. Nested builders (a select inside an insert, an
//! expression as a value) render with raw `?` placeholders and are numbered by the outer
//! statement.

use wippy_rt::Error;

use super::value::SqlValue;

/// Placeholder style of the final SQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placeholder {
    /// `?` (default).
    #[default]
    Question,
    /// `$1, $2, …`.
    Dollar,
    /// `@p1, @p2, …`.
    At,
    /// `:1, :2, …`.
    Colon,
}

impl Placeholder {
    /// Rewrite the `?` placeholders of `sql`.
    pub fn apply(self, sql: &str) -> String {
        let prefix = match self {
            Placeholder::Question => return sql.to_string(),
            Placeholder::Dollar => "$",
            Placeholder::At => "@p",
            Placeholder::Colon => ":",
        };
        let mut out = String::with_capacity(sql.len() + 8);
        let mut rest = sql;
        let mut n = 0;
        while let Some(p) = rest.find('?') {
            out.push_str(&rest[..p]);
            if rest[p..].starts_with("??") {
                out.push('?');
                rest = &rest[p + 2..];
            } else {
                n += 1;
                out.push_str(prefix);
                out.push_str(&n.to_string());
                rest = &rest[p + 1..];
            }
        }
        out.push_str(rest);
        out
    }
}

/// An argument of a raw SQL fragment: a bound value or a nested SQL fragment.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// Bound value.
    Value(SqlValue),
    /// Inlined SQL (an expression or a nested select).
    Sql(Box<Sqlizer>),
}

/// Anything that renders to SQL with arguments (`squirrel.Sqlizer`).
#[derive(Clone, Debug, PartialEq)]
pub enum Sqlizer {
    /// `expr(sql, args…)`: `?` placeholders are bound values, or replaced by the SQL of
    /// nested fragments.
    Raw(String, Vec<Arg>),
    /// A map condition (`eq{…}`, `lt{…}`, …).
    Map(MapOp, Vec<(String, MapVal)>),
    /// `and_{…}`.
    And(Vec<Sqlizer>),
    /// `or_{…}`.
    Or(Vec<Sqlizer>),
    /// A nested select.
    Select(Box<Select>),
}

/// Operator of a map condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapOp {
    /// `=` / `IS NULL` / `IN`.
    Eq,
    /// `<>` / `IS NOT NULL` / `NOT IN`.
    NotEq,
    /// `<`.
    Lt,
    /// `<=`.
    Lte,
    /// `>`.
    Gt,
    /// `>=`.
    Gte,
    /// `LIKE`.
    Like,
    /// `NOT LIKE`.
    NotLike,
}

/// A value in a map condition.
#[derive(Clone, Debug, PartialEq)]
pub enum MapVal {
    /// One value (`SqlValue::Null` renders `IS [NOT] NULL` for `Eq`/`NotEq`).
    One(SqlValue),
    /// A list (`IN (…)`).
    List(Vec<SqlValue>),
    /// An expression (`col = <expr>`).
    Expr(Box<Sqlizer>),
}

fn invalid(msg: &str) -> Error {
    Error::invalid(msg).with_retryable(Some(false))
}

/// Append `parts` joined by `sep` (squirrel's `appendToSql`: empty parts are skipped, but the
/// separator is decided by position).
fn append(
    out: &mut String,
    args: &mut Vec<SqlValue>,
    parts: &[Sqlizer],
    sep: &str,
) -> Result<(), Error> {
    for (i, p) in parts.iter().enumerate() {
        let (s, a) = p.render()?;
        if s.is_empty() {
            continue;
        }
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&s);
        args.extend(a);
    }
    Ok(())
}

impl Sqlizer {
    /// A plain SQL fragment without arguments.
    pub fn text(s: impl Into<String>) -> Sqlizer {
        Sqlizer::Raw(s.into(), Vec::new())
    }

    /// Render with raw `?` placeholders.
    ///
    /// # Errors
    /// `Invalid` for conditions squirrel rejects (a list or NULL with `<`/`LIKE`, an
    /// incomplete nested statement).
    pub fn render(&self) -> Result<(String, Vec<SqlValue>), Error> {
        match self {
            Sqlizer::Raw(sql, args) => raw(sql, args),
            Sqlizer::Map(op, pairs) => map(*op, pairs),
            Sqlizer::And(parts) => group(parts, " AND ", "(1=1)"),
            Sqlizer::Or(parts) => group(parts, " OR ", "(1=0)"),
            Sqlizer::Select(s) => s.render(),
        }
    }
}

fn raw(sql: &str, args: &[Arg]) -> Result<(String, Vec<SqlValue>), Error> {
    if !args.iter().any(|a| matches!(a, Arg::Sql(_))) {
        let vals = args
            .iter()
            .map(|a| match a {
                Arg::Value(v) => v.clone(),
                Arg::Sql(_) => SqlValue::Null,
            })
            .collect();
        return Ok((sql.to_string(), vals));
    }
    // Inline nested fragments at their `?` (squirrel's Expr with Sqlizer arguments).
    let mut out = String::with_capacity(sql.len());
    let mut vals = Vec::new();
    let mut rest = sql;
    let mut it = args.iter();
    while let Some(p) = rest.find('?') {
        out.push_str(&rest[..p]);
        if rest[p..].starts_with("??") {
            out.push_str("??");
            rest = &rest[p + 2..];
            continue;
        }
        match it.next() {
            Some(Arg::Value(v)) => {
                out.push('?');
                vals.push(v.clone());
            }
            Some(Arg::Sql(s)) => {
                let (ss, sa) = s.render()?;
                out.push_str(&ss);
                vals.extend(sa);
            }
            None => out.push('?'),
        }
        rest = &rest[p + 1..];
    }
    out.push_str(rest);
    Ok((out, vals))
}

fn group(parts: &[Sqlizer], sep: &str, empty: &str) -> Result<(String, Vec<SqlValue>), Error> {
    if parts.is_empty() {
        return Ok((empty.to_string(), Vec::new()));
    }
    let mut out = String::new();
    let mut args = Vec::new();
    let mut sqls = Vec::new();
    for p in parts {
        let (s, a) = p.render()?;
        if !s.is_empty() {
            sqls.push(s);
            args.extend(a);
        }
    }
    out.push('(');
    out.push_str(&sqls.join(sep));
    out.push(')');
    Ok((out, args))
}

fn map(op: MapOp, pairs: &[(String, MapVal)]) -> Result<(String, Vec<SqlValue>), Error> {
    let mut sorted: Vec<&(String, MapVal)> = pairs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut exprs = Vec::with_capacity(sorted.len());
    let mut args = Vec::new();
    let (sym, list_kw, null_kw) = match op {
        MapOp::Eq => ("=", "IN", "IS NULL"),
        MapOp::NotEq => ("<>", "NOT IN", "IS NOT NULL"),
        MapOp::Lt => ("<", "", ""),
        MapOp::Lte => ("<=", "", ""),
        MapOp::Gt => (">", "", ""),
        MapOp::Gte => (">=", "", ""),
        MapOp::Like => ("LIKE", "", ""),
        MapOp::NotLike => ("NOT LIKE", "", ""),
    };
    let ordering = matches!(op, MapOp::Lt | MapOp::Lte | MapOp::Gt | MapOp::Gte);
    let like = matches!(op, MapOp::Like | MapOp::NotLike);
    for (k, v) in sorted {
        match v {
            MapVal::One(SqlValue::Null) => {
                if ordering {
                    return Err(invalid(
                        "cannot use null with less than or greater than operators",
                    ));
                }
                if like {
                    return Err(invalid("cannot use null with like operators"));
                }
                exprs.push(format!("{k} {null_kw}"));
            }
            MapVal::One(x) => {
                exprs.push(format!("{k} {sym} ?"));
                args.push(x.clone());
            }
            MapVal::List(items) => {
                if ordering {
                    return Err(invalid(
                        "cannot use array or slice with less than or greater than operators",
                    ));
                }
                if like {
                    return Err(invalid("cannot use array or slice with like operators"));
                }
                if items.is_empty() {
                    exprs.push(if op == MapOp::Eq { "(1=0)" } else { "(1=1)" }.to_string());
                } else {
                    let marks = vec!["?"; items.len()].join(",");
                    exprs.push(format!("{k} {list_kw} ({marks})"));
                    args.extend(items.iter().cloned());
                }
            }
            MapVal::Expr(e) => {
                let (s, a) = e.render()?;
                exprs.push(format!("{k} {sym} {s}"));
                args.extend(a);
            }
        }
    }
    if exprs.is_empty() && matches!(op, MapOp::Eq | MapOp::NotEq) {
        return Ok(("(1=1)".to_string(), args));
    }
    Ok((exprs.join(" AND "), args))
}

/// A `SELECT` statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Select {
    /// `prefix(…)`.
    pub prefixes: Vec<Sqlizer>,
    /// `DISTINCT` and other options.
    pub options: Vec<String>,
    /// Result columns.
    pub columns: Vec<Sqlizer>,
    /// `FROM` (a table or an aliased sub-select).
    pub from: Option<Sqlizer>,
    /// Join clauses (`JOIN …`, `LEFT JOIN …`).
    pub joins: Vec<Sqlizer>,
    /// `WHERE` parts (joined with `AND`).
    pub wheres: Vec<Sqlizer>,
    /// `GROUP BY` columns.
    pub group_by: Vec<String>,
    /// `HAVING` parts.
    pub havings: Vec<Sqlizer>,
    /// `ORDER BY` parts.
    pub order_by: Vec<Sqlizer>,
    /// `LIMIT` (literal).
    pub limit: Option<u64>,
    /// `OFFSET` (literal).
    pub offset: Option<u64>,
    /// `suffix(…)`.
    pub suffixes: Vec<Sqlizer>,
    /// Placeholder format of the final text.
    pub placeholder: Placeholder,
}

/// ` KW part<sep>part…` when `parts` is not empty (WHERE, HAVING, ORDER BY, JOIN lists).
fn clause(
    out: &mut String,
    args: &mut Vec<SqlValue>,
    kw: &str,
    parts: &[Sqlizer],
    sep: &str,
) -> Result<(), Error> {
    if !parts.is_empty() {
        out.push_str(kw);
        append(out, args, parts, sep)?;
    }
    Ok(())
}

fn limit_offset(out: &mut String, limit: Option<u64>, offset: Option<u64>) {
    if let Some(l) = limit {
        out.push_str(" LIMIT ");
        out.push_str(&l.to_string());
    }
    if let Some(o) = offset {
        out.push_str(" OFFSET ");
        out.push_str(&o.to_string());
    }
}

fn prefixes(out: &mut String, args: &mut Vec<SqlValue>, p: &[Sqlizer]) -> Result<(), Error> {
    if !p.is_empty() {
        append(out, args, p, " ")?;
        out.push(' ');
    }
    Ok(())
}

fn suffixes(out: &mut String, args: &mut Vec<SqlValue>, s: &[Sqlizer]) -> Result<(), Error> {
    clause(out, args, " ", s, " ")
}

impl Select {
    /// Render with raw `?` placeholders.
    ///
    /// # Errors
    /// `Invalid` "select statements must have at least one result column".
    pub fn render(&self) -> Result<(String, Vec<SqlValue>), Error> {
        if self.columns.is_empty() {
            return Err(invalid(
                "select statements must have at least one result column",
            ));
        }
        let mut out = String::with_capacity(64);
        let mut args = Vec::new();
        prefixes(&mut out, &mut args, &self.prefixes)?;
        out.push_str("SELECT ");
        if !self.options.is_empty() {
            out.push_str(&self.options.join(" "));
            out.push(' ');
        }
        append(&mut out, &mut args, &self.columns, ", ")?;
        if let Some(f) = &self.from {
            out.push_str(" FROM ");
            append(&mut out, &mut args, std::slice::from_ref(f), "")?;
        }
        clause(&mut out, &mut args, " ", &self.joins, " ")?;
        clause(&mut out, &mut args, " WHERE ", &self.wheres, " AND ")?;
        if !self.group_by.is_empty() {
            out.push_str(" GROUP BY ");
            out.push_str(&self.group_by.join(", "));
        }
        clause(&mut out, &mut args, " HAVING ", &self.havings, " AND ")?;
        clause(&mut out, &mut args, " ORDER BY ", &self.order_by, ", ")?;
        limit_offset(&mut out, self.limit, self.offset);
        suffixes(&mut out, &mut args, &self.suffixes)?;
        Ok((out, args))
    }

    /// The final SQL and arguments.
    ///
    /// # Errors
    /// As [`render`](Self::render).
    pub fn to_sql(&self) -> Result<(String, Vec<SqlValue>), Error> {
        let (s, a) = self.render()?;
        Ok((self.placeholder.apply(&s), a))
    }
}

/// An `INSERT` statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Insert {
    /// `prefix(…)`.
    pub prefixes: Vec<Sqlizer>,
    /// `options(…)` (`IGNORE`, …).
    pub options: Vec<String>,
    /// Target table.
    pub into: String,
    /// Columns.
    pub columns: Vec<String>,
    /// Rows of values (an `Arg::Sql` is inlined).
    pub values: Vec<Vec<Arg>>,
    /// `INSERT … SELECT`.
    pub select: Option<Box<Select>>,
    /// `suffix(…)`.
    pub suffixes: Vec<Sqlizer>,
    /// Placeholder format.
    pub placeholder: Placeholder,
}

impl Insert {
    /// Render with raw `?` placeholders.
    ///
    /// # Errors
    /// `Invalid` "insert statements must specify a table", "insert statements must have at
    /// least one set of values or select clause".
    pub fn render(&self) -> Result<(String, Vec<SqlValue>), Error> {
        if self.into.is_empty() {
            return Err(invalid("insert statements must specify a table"));
        }
        if self.values.is_empty() && self.select.is_none() {
            return Err(invalid(
                "insert statements must have at least one set of values or select clause",
            ));
        }
        let mut out = String::with_capacity(64);
        let mut args = Vec::new();
        prefixes(&mut out, &mut args, &self.prefixes)?;
        out.push_str("INSERT ");
        if !self.options.is_empty() {
            out.push_str(&self.options.join(" "));
            out.push(' ');
        }
        out.push_str("INTO ");
        out.push_str(&self.into);
        out.push(' ');
        if !self.columns.is_empty() {
            out.push('(');
            out.push_str(&self.columns.join(","));
            out.push_str(") ");
        }
        if let Some(sel) = &self.select {
            let (s, a) = sel.render()?;
            out.push_str(&s);
            args.extend(a);
        } else {
            out.push_str("VALUES ");
            let mut rows = Vec::with_capacity(self.values.len());
            for row in &self.values {
                let mut cells = Vec::with_capacity(row.len());
                for v in row {
                    match v {
                        Arg::Value(x) => {
                            cells.push("?".to_string());
                            args.push(x.clone());
                        }
                        Arg::Sql(s) => {
                            let (ss, sa) = s.render()?;
                            cells.push(ss);
                            args.extend(sa);
                        }
                    }
                }
                rows.push(format!("({})", cells.join(",")));
            }
            out.push_str(&rows.join(","));
        }
        suffixes(&mut out, &mut args, &self.suffixes)?;
        Ok((out, args))
    }

    /// The final SQL and arguments.
    ///
    /// # Errors
    /// As [`render`](Self::render).
    pub fn to_sql(&self) -> Result<(String, Vec<SqlValue>), Error> {
        let (s, a) = self.render()?;
        Ok((self.placeholder.apply(&s), a))
    }
}

/// An `UPDATE` statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    /// `prefix(…)`.
    pub prefixes: Vec<Sqlizer>,
    /// Target table.
    pub table: String,
    /// `SET col = value` clauses in call order.
    pub sets: Vec<(String, Arg)>,
    /// `FROM` (a table or an aliased sub-select).
    pub from: Option<Sqlizer>,
    /// `WHERE` parts.
    pub wheres: Vec<Sqlizer>,
    /// `ORDER BY` parts.
    pub order_by: Vec<Sqlizer>,
    /// `LIMIT`.
    pub limit: Option<u64>,
    /// `OFFSET`.
    pub offset: Option<u64>,
    /// `suffix(…)`.
    pub suffixes: Vec<Sqlizer>,
    /// Placeholder format.
    pub placeholder: Placeholder,
}

impl Update {
    /// Render with raw `?` placeholders.
    ///
    /// # Errors
    /// `Invalid` "update statements must specify a table", "update statements must have at
    /// least one Set clause".
    pub fn render(&self) -> Result<(String, Vec<SqlValue>), Error> {
        if self.table.is_empty() {
            return Err(invalid("update statements must specify a table"));
        }
        if self.sets.is_empty() {
            return Err(invalid(
                "update statements must have at least one Set clause",
            ));
        }
        let mut out = String::with_capacity(64);
        let mut args = Vec::new();
        prefixes(&mut out, &mut args, &self.prefixes)?;
        out.push_str("UPDATE ");
        out.push_str(&self.table);
        out.push_str(" SET ");
        let mut sets = Vec::with_capacity(self.sets.len());
        for (col, v) in &self.sets {
            match v {
                Arg::Value(x) => {
                    sets.push(format!("{col} = ?"));
                    args.push(x.clone());
                }
                Arg::Sql(s) => {
                    let (ss, sa) = s.render()?;
                    if matches!(**s, Sqlizer::Select(_)) {
                        sets.push(format!("{col} = ({ss})"));
                    } else {
                        sets.push(format!("{col} = {ss}"));
                    }
                    args.extend(sa);
                }
            }
        }
        out.push_str(&sets.join(", "));
        if let Some(f) = &self.from {
            out.push_str(" FROM ");
            append(&mut out, &mut args, std::slice::from_ref(f), "")?;
        }
        clause(&mut out, &mut args, " WHERE ", &self.wheres, " AND ")?;
        clause(&mut out, &mut args, " ORDER BY ", &self.order_by, ", ")?;
        limit_offset(&mut out, self.limit, self.offset);
        suffixes(&mut out, &mut args, &self.suffixes)?;
        Ok((out, args))
    }

    /// The final SQL and arguments.
    ///
    /// # Errors
    /// As [`render`](Self::render).
    pub fn to_sql(&self) -> Result<(String, Vec<SqlValue>), Error> {
        let (s, a) = self.render()?;
        Ok((self.placeholder.apply(&s), a))
    }
}

/// A `DELETE` statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delete {
    /// `prefix(…)`.
    pub prefixes: Vec<Sqlizer>,
    /// Target table.
    pub from: String,
    /// `WHERE` parts.
    pub wheres: Vec<Sqlizer>,
    /// `ORDER BY` parts.
    pub order_by: Vec<Sqlizer>,
    /// `LIMIT`.
    pub limit: Option<u64>,
    /// `OFFSET`.
    pub offset: Option<u64>,
    /// `suffix(…)`.
    pub suffixes: Vec<Sqlizer>,
    /// Placeholder format.
    pub placeholder: Placeholder,
}

impl Delete {
    /// Render with raw `?` placeholders.
    ///
    /// # Errors
    /// `Invalid` "delete statements must specify a From table".
    pub fn render(&self) -> Result<(String, Vec<SqlValue>), Error> {
        if self.from.is_empty() {
            return Err(invalid("delete statements must specify a From table"));
        }
        let mut out = String::with_capacity(64);
        let mut args = Vec::new();
        prefixes(&mut out, &mut args, &self.prefixes)?;
        out.push_str("DELETE FROM ");
        out.push_str(&self.from);
        clause(&mut out, &mut args, " WHERE ", &self.wheres, " AND ")?;
        clause(&mut out, &mut args, " ORDER BY ", &self.order_by, ", ")?;
        limit_offset(&mut out, self.limit, self.offset);
        suffixes(&mut out, &mut args, &self.suffixes)?;
        Ok((out, args))
    }

    /// The final SQL and arguments.
    ///
    /// # Errors
    /// As [`render`](Self::render).
    pub fn to_sql(&self) -> Result<(String, Vec<SqlValue>), Error> {
        let (s, a) = self.render()?;
        Ok((self.placeholder.apply(&s), a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Sqlizer {
        Sqlizer::text(s)
    }
    fn int(i: i64) -> SqlValue {
        SqlValue::Int(i)
    }
    fn eq(pairs: &[(&str, MapVal)]) -> Sqlizer {
        Sqlizer::Map(
            MapOp::Eq,
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn select_matches_squirrel() {
        let s = Select {
            columns: vec![t("id"), t("name")],
            from: Some(t("users")),
            joins: vec![t("LEFT JOIN orders o ON o.user_id = users.id")],
            wheres: vec![
                eq(&[
                    ("b", MapVal::One(int(2))),
                    ("a", MapVal::One(SqlValue::Null)),
                ]),
                Sqlizer::Raw("score > ?".into(), vec![Arg::Value(int(5))]),
            ],
            group_by: vec!["id".into(), "name".into()],
            order_by: vec![t("name ASC")],
            limit: Some(10),
            offset: Some(20),
            placeholder: Placeholder::Dollar,
            ..Select::default()
        };
        let (sql, args) = s.to_sql().unwrap();
        assert_eq!(
            sql,
            "SELECT id, name FROM users LEFT JOIN orders o ON o.user_id = users.id \
             WHERE a IS NULL AND b = $1 AND score > $2 GROUP BY id, name ORDER BY name ASC \
             LIMIT 10 OFFSET 20"
        );
        assert_eq!(args, vec![int(2), int(5)]);
    }

    #[test]
    fn conditions_render_like_squirrel() {
        let r = |s: Sqlizer| s.render().unwrap().0;
        assert_eq!(
            r(eq(&[("id", MapVal::List(vec![int(1), int(2)]))])),
            "id IN (?,?)"
        );
        assert_eq!(r(eq(&[("id", MapVal::List(vec![]))])), "(1=0)");
        assert_eq!(
            r(Sqlizer::Map(
                MapOp::NotEq,
                vec![("s".into(), MapVal::One(SqlValue::Null))]
            )),
            "s IS NOT NULL"
        );
        assert_eq!(r(Sqlizer::And(vec![])), "(1=1)");
        assert_eq!(r(Sqlizer::Or(vec![])), "(1=0)");
        assert_eq!(
            r(Sqlizer::Or(vec![
                eq(&[("a", MapVal::One(int(1)))]),
                Sqlizer::Map(MapOp::Gt, vec![("b".into(), MapVal::One(int(2)))])
            ])),
            "(a = ? OR b > ?)"
        );
        let e = Sqlizer::Map(MapOp::Lt, vec![("a".into(), MapVal::List(vec![int(1)]))])
            .render()
            .unwrap_err();
        assert_eq!(
            e.message(),
            "cannot use array or slice with less than or greater than operators"
        );
    }

    #[test]
    fn insert_update_delete() {
        let i = Insert {
            into: "users".into(),
            columns: vec!["name".into(), "email".into()],
            values: vec![
                vec![
                    Arg::Value(SqlValue::Text(b"a".to_vec())),
                    Arg::Value(SqlValue::Null),
                ],
                vec![
                    Arg::Value(SqlValue::Text(b"b".to_vec())),
                    Arg::Sql(Box::new(t("NOW()"))),
                ],
            ],
            suffixes: vec![t("RETURNING id")],
            ..Insert::default()
        };
        assert_eq!(
            i.to_sql().unwrap().0,
            "INSERT INTO users (name,email) VALUES (?,?),(?,NOW()) RETURNING id"
        );
        let u = Update {
            table: "users".into(),
            sets: vec![
                ("status".into(), Arg::Value(int(1))),
                ("n".into(), Arg::Sql(Box::new(t("n + 1")))),
            ],
            wheres: vec![eq(&[("id", MapVal::One(int(7)))])],
            placeholder: Placeholder::Dollar,
            ..Update::default()
        };
        assert_eq!(
            u.to_sql().unwrap().0,
            "UPDATE users SET status = $1, n = n + 1 WHERE id = $2"
        );
        let d = Delete {
            from: "users".into(),
            wheres: vec![eq(&[("active", MapVal::One(int(0)))])],
            limit: Some(100),
            ..Delete::default()
        };
        assert_eq!(
            d.to_sql().unwrap().0,
            "DELETE FROM users WHERE active = ? LIMIT 100"
        );
        assert_eq!(
            Delete::default().to_sql().unwrap_err().message(),
            "delete statements must specify a From table"
        );
    }

    #[test]
    fn placeholders_and_escapes() {
        assert_eq!(
            Placeholder::Dollar.apply("a = ? AND b ?? c = ?"),
            "a = $1 AND b ? c = $2"
        );
        assert_eq!(Placeholder::At.apply("? ?"), "@p1 @p2");
        assert_eq!(Placeholder::Colon.apply("?"), ":1");
        assert_eq!(Placeholder::Question.apply("??"), "??");
    }
}
