//! `funcs.call` fast path with the full system (topology installed by boot): what an inline
//! execution (one that ended in its first step, decision 0100) registered under its PID is
//! cleaned up as the exit hooks would — its names are dropped, and a process linked to it gets
//! LINK_DOWN when it fails.

#[path = "common/exec.rs"]
mod common_exec;

use std::path::Path;
use std::time::Duration;

use wippy::boot::{App, BootOptions};
use wippy::rt::{Error, Value};

const INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
    lifecycle: {auto_start: true}
  - name: caller
    kind: process.lua
    source: file://caller.lua
    method: main
    modules: [funcs, time]
  - name: named
    kind: function.lua
    source: file://fns.lua
    method: named
  - name: linked
    kind: function.lua
    source: file://fns.lua
    method: linked
  - name: watcher
    kind: process.lua
    source: file://watcher.lua
    method: main
"#;

const FNS: &str = r#"
local M = {}
function M.named(name)
  assert(process.registry.register(name))
  return process.registry.lookup(name) == process.pid()
end
-- Links to `watcher`, tells the caller its PID, and fails without ever blocking.
function M.linked(watcher, caller)
  assert(process.link(watcher))
  process.send(caller, "pid", process.pid())
  error("linked failure")
end
return M
"#;

const WATCHER: &str = r#"
return { main = function(parent)
  assert(process.set_options({trap_links = true}))
  local events = process.events()
  process.send(parent, "ready", true)
  local ev = events:receive()
  process.send(parent, "event", { kind = ev.kind, from = ev.from })
end }
"#;

const CALLER: &str = r#"
return { main = function(case, n)
  if case == "named" then
    for i = 1, n do
      local name = "inline.name." .. i
      local ok, err = funcs.call("app:named", name)
      assert(ok == true, tostring(err))
      assert(process.registry.lookup(name) == nil, "name dropped when the call ended")
    end
    return n
  elseif case == "linked" then
    local inbox = process.inbox()
    local w = process.spawn("app:watcher", "app:processes", process.pid())
    assert(inbox:receive():topic() == "ready")
    local v, err = funcs.call("app:linked", w, process.pid())
    assert(v == nil and tostring(err):find("linked failure"), tostring(err))
    local m = inbox:receive()
    assert(m:topic() == "pid", m:topic())
    local pid = m:payload():data()
    m = inbox:receive()
    assert(m:topic() == "event", m:topic())
    local ev = m:payload():data()
    assert(ev.kind == process.event.LINK_DOWN, "LINK_DOWN expected, got " .. tostring(ev.kind))
    assert(ev.from == pid, tostring(ev.from) .. " vs " .. tostring(pid))
    return true
  end
end }
"#;

fn boot() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        dir.path().join("wippy.lock"),
        "directories:\n  modules: .wippy\n  src: ./src\n",
    )
    .unwrap();
    for (name, text) in [
        ("_index.yaml", INDEX),
        ("fns.lua", FNS),
        ("watcher.lua", WATCHER),
        ("caller.lua", CALLER),
    ] {
        std::fs::write(src.join(name), text).unwrap();
    }
    let mut o = BootOptions::new(Path::new(dir.path()));
    o.workers = Some(2);
    o.settle_timeout = Duration::from_secs(20);
    let app = App::start(o).unwrap_or_else(|e| panic!("app failed to boot: {e}"));
    (dir, app)
}

fn exec(app: &App, input: Vec<Value>) -> Result<Value, Error> {
    common_exec::exec(
        app.system(),
        "app:processes",
        "app:caller",
        input,
        Duration::from_secs(60),
    )
}

#[test]
fn inline_exit_drops_names_and_notifies_links() {
    let (_dir, app) = boot();
    let r = exec(&app, vec![Value::from("named"), Value::Int(50)]);
    assert_eq!(r.unwrap(), Value::Int(50));
    let r = exec(&app, vec![Value::from("linked"), Value::Int(1)]);
    assert_eq!(r.unwrap(), Value::Bool(true));
    app.shutdown();
}
