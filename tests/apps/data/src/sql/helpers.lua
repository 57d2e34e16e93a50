-- Helpers for the sql suite: run as separate function calls or processes.
local H = {}

-- Insert `n` rows tagged `who` into `tbl`, each in its own statement.
function H.insert_rows(tbl, who, n)
  local db = assert(sql.get("data:db"))
  for i = 1, n do
    local _, err = db:execute("INSERT INTO " .. tbl .. " (who, n) VALUES (?, ?)", {who, i})
    if err then return nil, err end
  end
  return n
end

-- Begin a transaction, write, and return without committing: the runtime must roll it back.
function H.leave_tx_open(tbl)
  local db = assert(sql.get("data:db"))
  local tx = assert(db:begin())
  assert(tx:execute("INSERT INTO " .. tbl .. " (v) VALUES ('uncommitted')"))
  return "left open"
end

-- Begin, write, then raise.
function H.fail_in_tx(tbl)
  local db = assert(sql.get("data:db"))
  local tx = assert(db:begin())
  assert(tx:execute("INSERT INTO " .. tbl .. " (v) VALUES ('doomed')"))
  error("failing with an open transaction")
end

-- Hold a transaction open while the parent queries, then commit.
function H.hold_tx(parent, tbl)
  local db = assert(sql.get("data:db"))
  local tx = assert(db:begin())
  assert(tx:execute("INSERT INTO " .. tbl .. " (v) VALUES ('from child')"))
  process.send(parent, "in_tx", true)
  time.sleep("60ms")
  assert(tx:commit())
end

-- Acquire one of each resource and return without releasing any.
function H.open_everything()
  local db = assert(sql.get("data:db"))
  assert(db:execute("CREATE TABLE IF NOT EXISTS res_t (v TEXT)"))
  local stmt = assert(db:prepare("SELECT count(*) AS n FROM res_t"))
  local tx = assert(db:begin())
  assert(tx:execute("INSERT INTO res_t (v) VALUES ('x')"))
  return "ok"
end

return H
