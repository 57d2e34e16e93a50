-- The sql module against db.sql.sqlite (spec lua-api §2.9, §3.8.14).
local M = {}

local function db()
  local d, err = sql.get("data:db")
  t.is_nil(err, "sql.get error")
  return d
end

function M.get_errors()
  local d, err = sql.get("")
  t.is_nil(d); t.err(err, errors.INVALID, "resource id is required")
  d, err = sql.get("data:nope")
  t.is_nil(d); t.err(err, errors.NOT_FOUND, "data:nope")
  local ok, e = pcall(sql.get, 42)
  t.ok(not ok, "non-string id raises")
  t.contains(tostring(e), "string expected")
end

function M.constants_and_type()
  t.eq(sql.type.SQLITE, "sqlite"); t.eq(sql.type.POSTGRES, "postgres")
  t.eq(sql.type.MYSQL, "mysql"); t.eq(sql.type.UNKNOWN, "unknown")
  t.eq(sql.isolation.SERIALIZABLE, "serializable")
  t.eq(sql.isolation.DEFAULT, "default")
  t.eq(type(sql.NULL), "userdata")
  local d = db()
  local ty, err = d:type()
  t.eq(ty, "sqlite"); t.is_nil(err)
  t.eq(d:release(), true, "release")
  t.eq(d:release(), true, "release is idempotent")
end

function M.execute_and_query()
  local d = db()
  local r, err = d:execute("CREATE TABLE q1 (id INTEGER PRIMARY KEY, name TEXT, score REAL, note TEXT)")
  t.is_nil(err, "create")
  r, err = d:execute("INSERT INTO q1 (name, score, note) VALUES (?, ?, ?)", {"ann", 1.5, "x"})
  t.is_nil(err)
  t.eq(r.last_insert_id, 1); t.eq(r.rows_affected, 1)
  r = d:execute("INSERT INTO q1 (name, score) VALUES (?, ?)", {"bob", 2})
  t.eq(r.last_insert_id, 2)
  local rows = d:query("SELECT id, name, score, note FROM q1 ORDER BY id")
  t.eq(#rows, 2)
  t.eq(rows[1].id, 1); t.eq(math.type(rows[1].id), "integer")
  t.eq(rows[1].name, "ann"); t.eq(rows[1].score, 1.5); t.eq(rows[1].note, "x")
  t.eq(rows[2].score, 2.0); t.eq(math.type(rows[2].score), "float", "REAL stays float")
  t.is_nil(rows[2].note, "NULL column is absent")
  local n = 0
  for _ in pairs(rows[2]) do n = n + 1 end
  t.eq(n, 3, "only non-NULL keys")
  r = d:execute("UPDATE q1 SET score = score + 1")
  t.eq(r.rows_affected, 2)
  local empty = d:query("SELECT * FROM q1 WHERE id = ?", {99})
  t.eq(type(empty), "table"); t.eq(#empty, 0)
end

function M.value_mapping()
  local d = db()
  d:execute([[CREATE TABLE vm (b BOOLEAN, ts DATETIME, d DATE, blob BLOB, big INTEGER)]])
  d:execute("INSERT INTO vm VALUES (?, ?, ?, ?, ?)",
    {true, "2024-01-02 03:04:05", "2024-05-06", sql.as.binary("\0\1\2"), 9007199254740993})
  d:execute("INSERT INTO vm VALUES (?, ?, NULL, NULL, NULL)", {false, "not a time"})
  local rows = d:query("SELECT * FROM vm ORDER BY rowid")
  t.eq(rows[1].b, true, "BOOLEAN → boolean"); t.eq(rows[2].b, false)
  t.eq(rows[1].ts, "2024-01-02T03:04:05Z", "DATETIME → RFC3339 UTC")
  t.eq(rows[1].d, "2024-05-06T00:00:00Z")
  t.eq(rows[2].ts, "not a time", "unparsable text unchanged")
  t.eq(rows[1].blob, "\0\1\2", "blob bytes")
  t.eq(rows[1].big, 9007199254740993, "int64 precision")
  local expr, eerr = d:query("SELECT 1 + 1 AS two, 'a' || 'b' AS ab, 0.5 AS half, NULL AS nada")
  t.is_nil(eerr, "expr query"); t.eq(expr[1].two, 2); t.eq(expr[1].ab, "ab"); t.eq(expr[1].half, 0.5)
  t.is_nil(expr[1].nada)
end

function M.parameters()
  local d = db()
  d:execute("CREATE TABLE p1 (a, b, c)")
  local r, err = d:execute("INSERT INTO p1 VALUES (?, ?, ?)", {1, nil, 3})
  t.is_nil(err, "nil inside the array binds NULL")
  r, err = d:execute("INSERT INTO p1 VALUES (?, ?, ?)", {sql.NULL, sql.as.null(), "z"})
  t.is_nil(err)
  local rows = d:query("SELECT count(*) AS n FROM p1 WHERE b IS NULL")
  t.eq(rows[1].n, 2)
  rows = d:query("SELECT a FROM p1 WHERE a IS NULL")
  t.eq(#rows, 1, "sql.NULL binds NULL")
  -- typed binders
  d:execute("INSERT INTO p1 VALUES (?, ?, ?)", {sql.as.int("42"), sql.as.float(2), sql.as.text(7)})
  rows = d:query("SELECT typeof(a) AS ta, typeof(b) AS tb, typeof(c) AS tc, a, b, c FROM p1 WHERE a = 42")
  t.eq(rows[1].ta, "integer"); t.eq(rows[1].tb, "real"); t.eq(rows[1].tc, "text")
  t.eq(rows[1].c, "7")
  -- booleans bind as 1/0
  rows = d:query("SELECT ? AS t, ? AS f", {true, false})
  t.eq(rows[1].t, 1); t.eq(rows[1].f, 0)
  -- $N and ?N placeholders go to SQLite untouched
  rows = d:query("SELECT $1 AS x, ?2 AS y", {"one", "two"})
  t.eq(rows[1].x, "one"); t.eq(rows[1].y, "two")
end

function M.parameter_errors()
  local d = db()
  local r, err = d:query("SELECT ?", 5)
  t.is_nil(r); t.err(err, errors.INVALID, "parameters must be a table, got number")
  r, err = d:query("SELECT ?", "x")
  t.err(err, errors.INVALID, "got string")
  r, err = d:query("SELECT ?", {{1}})
  t.err(err, errors.INVALID, "unsupported parameter type")
  r, err = d:query("SELECT ?, ?", {1})
  t.err(err, errors.INVALID, "expected 2 arguments, got 1")
  r, err = d:query("SELECT 1", {1, 2})
  t.err(err, errors.INVALID, "expected 0 arguments, got 2")
  r, err = d:query("SELECT ?", {name = "x"})
  t.err(err, errors.INVALID, "positional")
end

function M.sql_errors()
  local d = db()
  local r, err = d:query("SELEC 1")
  t.is_nil(r); t.err(err, errors.INVALID, "syntax error")
  t.eq(err:details().sqlite_code, 1)
  r, err = d:query("SELECT * FROM no_such_table")
  t.err(err, errors.INVALID, "no such table")
  d:execute("CREATE TABLE u1 (k TEXT PRIMARY KEY)")
  d:execute("INSERT INTO u1 VALUES ('a')")
  r, err = d:execute("INSERT INTO u1 VALUES ('a')")
  t.is_nil(r); t.err(err, errors.CONFLICT, "UNIQUE constraint failed")
  t.eq(err:details().sqlite_code, 19)
  t.eq(err:details().sqlite_extended_code, 1555)
  t.eq(err:retryable(), false)
end

function M.multiple_statements()
  local d = db()
  local r, err = d:execute([[
    CREATE TABLE ms (v INTEGER);
    INSERT INTO ms VALUES (?);
    INSERT INTO ms VALUES (?);
  ]], {10, 20})
  t.is_nil(err, "multi-statement execute")
  local rows = d:query("SELECT sum(v) AS s FROM ms")
  t.eq(rows[1].s, 30)
  rows = d:query("INSERT INTO ms VALUES (5); SELECT count(*) AS n FROM ms")
  t.eq(rows[1].n, 3, "query returns the last statement's rows")
end

function M.prepared_statements()
  local d = db()
  d:execute("CREATE TABLE ps (id INTEGER PRIMARY KEY, v TEXT)")
  local ins, err = d:prepare("INSERT INTO ps (v) VALUES (?)")
  t.is_nil(err)
  for i = 1, 5 do
    local r = ins:execute({"v" .. i})
    t.eq(r.last_insert_id, i)
  end
  local sel = d:prepare("SELECT v FROM ps WHERE id = ?")
  t.eq(sel:query({3})[1].v, "v3")
  t.eq(sel:query({4})[1].v, "v4", "re-executed with new parameters")
  local all = d:prepare("SELECT count(*) AS n FROM ps")
  t.eq(all:query()[1].n, 5, "no parameters")
  t.eq(ins:close(), true)
  local r, e = ins:execute({"x"})
  t.is_nil(r); t.err(e, errors.INVALID, "statement is closed")
  r, e = ins:close()
  t.is_nil(r); t.err(e, errors.INVALID, "already closed")
  local bad, perr = d:prepare("SELEC nothing")
  t.is_nil(bad); t.err(perr, errors.INVALID, "syntax error")
end

function M.transactions_commit_and_rollback()
  local d = db()
  d:execute("CREATE TABLE tx1 (v TEXT)")
  local tx, err = d:begin()
  t.is_nil(err)
  t.eq(tx:db_type(), "sqlite")
  t.is_nil(select(2, tx:execute("INSERT INTO tx1 VALUES (?)", {"a"})))
  t.eq(#tx:query("SELECT * FROM tx1"), 1, "visible inside")
  t.eq(tx:commit(), true)
  t.eq(#d:query("SELECT * FROM tx1"), 1, "committed")
  local r, e = tx:commit()
  t.is_nil(r); t.err(e, errors.INVALID, "transaction is not active")
  r, e = tx:query("SELECT 1")
  t.err(e, errors.INVALID, "transaction is not active")
  r, e = tx:db_type()
  t.err(e, errors.INVALID, "transaction is not active")

  tx = d:begin()
  tx:execute("INSERT INTO tx1 VALUES ('b')")
  t.eq(tx:rollback(), true)
  t.eq(#d:query("SELECT * FROM tx1"), 1, "rolled back")
  r, e = tx:rollback()
  t.err(e, errors.INVALID, "transaction is not active")
end

function M.savepoints()
  local d = db()
  d:execute("CREATE TABLE sp (v INTEGER)")
  local tx = d:begin()
  tx:execute("INSERT INTO sp VALUES (1)")
  t.eq(tx:savepoint("first"), true)
  tx:execute("INSERT INTO sp VALUES (2)")
  t.eq(tx:rollback_to("first"), true)
  tx:execute("INSERT INTO sp VALUES (3)")
  t.eq(tx:savepoint("second_1"), true)
  t.eq(tx:release("second_1"), true)
  local r, e = tx:savepoint("bad name")
  t.is_nil(r); t.err(e, errors.INVALID, "alphanumeric characters and underscores")
  r, e = tx:savepoint("")
  t.err(e, errors.INVALID, "savepoint name is required")
  r, e = tx:rollback_to("never_made")
  t.is_nil(r); t.err(e, errors.INVALID, "no such savepoint")
  tx:commit()
  local rows = d:query("SELECT v FROM sp ORDER BY v")
  t.eq(#rows, 2); t.eq(rows[1].v, 1); t.eq(rows[2].v, 3)
end

function M.transaction_options()
  local d = db()
  d:execute("CREATE TABLE ro (v INTEGER)")
  local tx, err = d:begin({read_only = true, isolation = sql.isolation.SERIALIZABLE})
  t.is_nil(err)
  t.eq(#tx:query("SELECT * FROM ro"), 0, "reads work")
  local r, e = tx:execute("INSERT INTO ro VALUES (1)")
  t.is_nil(r); t.err(e, errors.PERMISSION_DENIED, "readonly")
  tx:rollback()
  r, e = d:execute("INSERT INTO ro VALUES (1)")
  t.is_nil(e, "writable again after the read-only transaction")
  local bad, berr = d:begin({isolation = "sometimes"})
  t.is_nil(bad); t.err(berr, errors.INVALID, "invalid isolation level: sometimes")
end

function M.transaction_prepare()
  local d = db()
  d:execute("CREATE TABLE tp (v INTEGER)")
  local tx = d:begin()
  local st = tx:prepare("INSERT INTO tp VALUES (?)")
  st:execute({1}); st:execute({2})
  tx:commit()
  local r, e = st:execute({3})
  t.is_nil(r); t.err(e, errors.INVALID, "transaction is not active")
  t.eq(d:query("SELECT count(*) AS n FROM tp")[1].n, 2)
end

function M.open_transaction_rolled_back_at_exit()
  local d = db()
  d:execute("CREATE TABLE lo (v TEXT)")
  local res, err = funcs.call("data.sql:leave_tx_open", "lo")
  t.is_nil(err); t.eq(res, "left open")
  t.eq(#d:query("SELECT * FROM lo"), 0, "uncommitted write discarded")
  res, err = funcs.call("data.sql:fail_in_tx", "lo")
  t.err(err, nil, "failing with an open transaction")
  t.eq(#d:query("SELECT * FROM lo"), 0, "discarded after a failure too")
  -- the connection is free again
  local tx = d:begin()
  tx:execute("INSERT INTO lo VALUES ('mine')")
  tx:commit()
  t.eq(#d:query("SELECT * FROM lo"), 1)
end

function M.other_process_transaction_serializes()
  local d = db()
  d:execute("CREATE TABLE ot (v TEXT)")
  local pid = process.spawn("data.sql:hold_tx", "data:processes", process.pid(), "ot")
  t.ok(pid, "spawned")
  local msg = process.inbox():receive()
  t.eq(msg:topic(), "in_tx")
  -- The child's transaction holds the single connection: this query waits for its commit.
  local rows = d:query("SELECT v FROM ot")
  t.eq(#rows, 1, "sees the child's committed row")
  t.eq(rows[1].v, "from child")
end

function M.own_transaction_does_not_deadlock()
  local d = db()
  d:execute("CREATE TABLE od (v INTEGER)")
  local tx = d:begin()
  tx:execute("INSERT INTO od VALUES (1)")
  -- A non-transaction query of the same process runs inside its own transaction.
  t.eq(d:query("SELECT count(*) AS n FROM od")[1].n, 1)
  tx:rollback()
  t.eq(d:query("SELECT count(*) AS n FROM od")[1].n, 0)
end

function M.concurrent_writers()
  local d = db()
  d:execute("CREATE TABLE cw (who TEXT, n INTEGER)")
  local futures = {}
  for i = 1, 8 do
    futures[i] = funcs.async("data.sql:insert_rows", "cw", "w" .. i, 25)
  end
  for i = 1, 8 do
    local v = futures[i]:response():receive()
    t.eq(v:data(), 25, "worker " .. i)
  end
  t.eq(d:query("SELECT count(*) AS n FROM cw")[1].n, 200)
  t.eq(d:query("SELECT count(DISTINCT who) AS n FROM cw")[1].n, 8)
end

function M.coroutines_share_a_handle()
  local d = db()
  d:execute("CREATE TABLE co (v INTEGER)")
  local done = channel.new(4)
  for i = 1, 4 do
    coroutine.spawn(function()
      for j = 1, 10 do d:execute("INSERT INTO co VALUES (?)", {i * 100 + j}) end
      done:send(i)
    end)
  end
  for _ = 1, 4 do done:receive() end
  t.eq(d:query("SELECT count(*) AS n FROM co")[1].n, 40)
end

function M.blocking_inside_pcall()
  local d = db()
  local ok, rows = pcall(function() return d:query("SELECT 7 AS x") end)
  t.ok(ok); t.eq(rows[1].x, 7)
end

function M.stats()
  local d = db()
  local s, err = d:stats()
  t.is_nil(err)
  t.eq(s.max_open_connections, 1)
  t.eq(s.open_connections, 1)
  t.ok(s.in_use == 0 or s.in_use == 1, "in_use")
  t.eq(type(s.wait_duration), "string")
  t.eq(type(s.wait_count), "number")
end

return { run = t.suite(M) }
