-- sql.builder (spec lua-api §3.8.14): squirrel-compatible SQL text and execution.
local M = {}
local b = sql.builder

local function sql_of(q)
  local s, args = q:to_sql()
  t.ok(s, "to_sql: " .. tostring(args))
  return s, args
end

function M.select_clauses()
  local q = b.select("u.id", "u.name", "COUNT(o.id) as order_count")
    :from("users u")
    :left_join("orders o ON o.user_id = u.id")
    :where(b.and_({ b.eq({["u.active"] = 1}), b.gte({["u.score"] = 80}) }))
    :group_by("u.id", "u.name")
    :having(b.gt({["COUNT(o.id)"] = 0}))
    :order_by("order_count DESC")
    :limit(10)
    :offset(5)
  local s, args = sql_of(q)
  t.eq(s, "SELECT u.id, u.name, COUNT(o.id) as order_count FROM users u "
    .. "LEFT JOIN orders o ON o.user_id = u.id WHERE (u.active = ? AND u.score >= ?) "
    .. "GROUP BY u.id, u.name HAVING COUNT(o.id) > ? ORDER BY order_count DESC LIMIT 10 OFFSET 5")
  t.list(args, {1, 80, 0})
end

function M.where_forms()
  local s, args = sql_of(b.select("*"):from("t"):where("a = ? OR b = ?", 1, "x"):where({c = 3, b2 = sql.NULL}))
  t.eq(s, "SELECT * FROM t WHERE a = ? OR b = ? AND b2 IS NULL AND c = ?")
  t.list(args, {1, "x", 3})
  s = sql_of(b.select("*"):from("t"):where(b.eq({id = {1, 2, 3}})))
  t.eq(s, "SELECT * FROM t WHERE id IN (?,?,?)")
  s = sql_of(b.select("*"):from("t"):where(b.not_eq({id = {1, 2}, k = sql.NULL})))
  t.eq(s, "SELECT * FROM t WHERE id NOT IN (?,?) AND k IS NOT NULL")
  s = sql_of(b.select("*"):from("t"):where(b.or_({ b.like({name = "a%"}), b.not_like({name = "%z"}) })))
  t.eq(s, "SELECT * FROM t WHERE (name LIKE ? OR name NOT LIKE ?)")
  s = sql_of(b.select("*"):from("t"):where(b.expr("x BETWEEN ? AND ?", 1, 9)))
  t.eq(s, "SELECT * FROM t WHERE x BETWEEN ? AND ?")
  s = sql_of(b.select("*"):from("t"):where(b.lt({a = 1}), b.lte({b = 2})))
  t.eq(s, "SELECT * FROM t WHERE a < ?")
  s = sql_of(b.select("*"):from("t"):where(b.and_({})):where(b.or_({})))
  t.eq(s, "SELECT * FROM t WHERE (1=1) AND (1=0)")
end

function M.builders_are_immutable()
  local base = b.select("*"):from("t")
  local a = base:where({x = 1})
  local c = base:where({y = 2})
  t.eq(sql_of(base), "SELECT * FROM t")
  t.eq(sql_of(a), "SELECT * FROM t WHERE x = ?")
  t.eq(sql_of(c), "SELECT * FROM t WHERE y = ?")
end

function M.placeholder_formats()
  local q = b.select("*"):from("t"):where("a = ? AND b = ?", 1, 2)
  t.eq(sql_of(q:placeholder_format(b.dollar)), "SELECT * FROM t WHERE a = $1 AND b = $2")
  t.eq(sql_of(q:placeholder_format(b.at)), "SELECT * FROM t WHERE a = @p1 AND b = @p2")
  t.eq(sql_of(q:placeholder_format(b.colon)), "SELECT * FROM t WHERE a = :1 AND b = :2")
  t.eq(sql_of(q:placeholder_format(b.question)), "SELECT * FROM t WHERE a = ? AND b = ?")
  t.ok(b.default_placeholder == b.question, "default is question")
end

function M.distinct_columns_suffix()
  local s = sql_of(b.select("status"):distinct():from("users"):suffix("FOR UPDATE"))
  t.eq(s, "SELECT DISTINCT status FROM users FOR UPDATE")
  s = sql_of(b.select():columns("id", "name"):from("u"):join("g ON g.id = u.g"):inner_join("h ON h.id = ?", 5))
  t.eq(s, "SELECT id, name FROM u JOIN g ON g.id = u.g INNER JOIN h ON h.id = ?")
  local r, err = b.select():from("t"):to_sql()
  t.is_nil(r); t.err(err, errors.INVALID, "at least one result column")
end

function M.insert()
  local s, args = sql_of(b.insert("users"):columns("name", "email"):values("alice", sql.NULL):values("bob", "b@x"))
  t.eq(s, "INSERT INTO users (name,email) VALUES (?,?),(?,?)")
  t.eq(#args, 4); t.eq(args[1], "alice"); t.ok(args[2] == sql.NULL or type(args[2]) == "userdata", "NULL arg")
  s = sql_of(b.insert():into("u"):set_map({name = "a", age = 3}):suffix("RETURNING id"))
  t.eq(s, "INSERT INTO u (age,name) VALUES (?,?) RETURNING id")
  s = sql_of(b.insert("u"):options("OR", "IGNORE"):columns("a"):values(1))
  t.eq(s, "INSERT OR IGNORE INTO u (a) VALUES (?)")
  s = sql_of(b.insert("u"):columns("n", "e"):select(b.select("n", "e"):from("tmp"):where({k = 1})))
  t.eq(s, "INSERT INTO u (n,e) SELECT n, e FROM tmp WHERE k = ?")
  s = sql_of(b.insert("u"):columns("n", "at"):values("x", b.expr("CURRENT_TIMESTAMP")))
  t.eq(s, "INSERT INTO u (n,at) VALUES (?,CURRENT_TIMESTAMP)")
  local r, err = b.insert():values(1):to_sql()
  t.is_nil(r); t.err(err, errors.INVALID, "must specify a table")
  r, err = b.insert("u"):to_sql()
  t.err(err, errors.INVALID, "at least one set of values or select clause")
end

function M.update()
  local s, args = sql_of(b.update("users"):set("status", "active"):set("n", b.expr("n + ?", 1)):where({id = 123}))
  t.eq(s, "UPDATE users SET status = ?, n = n + ? WHERE id = ?")
  t.list(args, {"active", 1, 123})
  s = sql_of(b.update():table("u"):set_map({b = 2, a = 1}):order_by("a"):limit(3):offset(1))
  t.eq(s, "UPDATE u SET a = ?, b = ? ORDER BY a LIMIT 3 OFFSET 1")
  s = sql_of(b.update("u"):set("x", 1):from_select(b.select("*"):from("tmp"), "t2"))
  t.eq(s, "UPDATE u SET x = ? FROM (SELECT * FROM tmp) AS t2")
  local r, err = b.update("u"):to_sql()
  t.is_nil(r); t.err(err, errors.INVALID, "at least one Set clause")
  r, err = b.update():set("a", 1):to_sql()
  t.err(err, errors.INVALID, "must specify a table")
end

function M.delete()
  local s = sql_of(b.delete("users"):where({active = 0}):order_by("id"):limit(100))
  t.eq(s, "DELETE FROM users WHERE active = ? ORDER BY id LIMIT 100")
  s = sql_of(b.delete():from("t"):where("x > ?", 1):placeholder_format(b.dollar))
  t.eq(s, "DELETE FROM t WHERE x > $1")
  local r, err = b.delete():to_sql()
  t.is_nil(r); t.err(err, errors.INVALID, "must specify a From table")
end

function M.run_with_db_and_tx()
  local db = sql.get("data:db")
  db:execute("CREATE TABLE bq (id INTEGER PRIMARY KEY, name TEXT, score INTEGER)")
  local ins = b.insert("bq"):columns("name", "score")
  for i = 1, 3 do
    local r, err = ins:values("n" .. i, i * 10):run_with(db):exec()
    t.is_nil(err); t.eq(r.last_insert_id, i)
  end
  local ex = b.select("name"):from("bq"):where(b.gt({score = 15})):order_by("id"):run_with(db)
  local s = ex:to_sql()
  t.eq(s, "SELECT name FROM bq WHERE score > ? ORDER BY id")
  local rows, err = ex:query()
  t.is_nil(err); t.eq(#rows, 2); t.eq(rows[1].name, "n2")
  local tx = db:begin()
  local r = b.update("bq"):set("score", 0):where({name = "n1"}):run_with(tx):exec()
  t.eq(r.rows_affected, 1)
  tx:rollback()
  t.eq(db:query("SELECT score FROM bq WHERE name = 'n1'")[1].score, 10, "rolled back")
  local _, e = b.delete("bq"):run_with(tx):exec()
  t.err(e, errors.INVALID, "transaction is not active")
  local bad, berr = b.select():from("bq"):run_with(db):query()
  t.is_nil(bad); t.err(berr, errors.INVALID, "at least one result column")
  local ok, msg = pcall(function() return b.select("*"):run_with("nope") end)
  t.ok(not ok, "run_with needs a db"); t.contains(tostring(msg), "database or transaction expected")
end

function M.misuse_raises()
  local ok, e = pcall(function() return b.select("*"):limit(-1) end)
  t.ok(not ok); t.contains(tostring(e), "non-negative integer")
  ok, e = pcall(function() return b.select("*"):from(5) end)
  t.ok(not ok); t.contains(tostring(e), "string expected")
  ok, e = pcall(function() return b.lt({a = {1, 2}}):to_sql() end)
  t.ok(ok, "building is lazy")
  local r, err = b.select("*"):from("t"):where(b.lt({a = {1, 2}})):to_sql()
  t.is_nil(r); t.err(err, errors.INVALID, "cannot use array or slice")
  for _, make in ipairs({"insert", "update", "delete"}) do
    ok, e = pcall(b[make], 5)
    t.ok(not ok, make); t.contains(tostring(e), "table name must be a string, got number")
  end
end

return { run = t.suite(M) }
