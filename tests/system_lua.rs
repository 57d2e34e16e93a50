//! Acceptance tests of the process system written as a Wippy app (`tests/apps/system`): each
//! suite is a set of `meta.type: test` function entries run by the app's runner process.

mod system_support;

use system_support::lua::LuaApp;

#[test]
fn topology() {
    LuaApp::boot("system").run_suite("system", "topology");
}

#[test]
fn cascade() {
    LuaApp::boot("system").run_suite("system", "cascade");
}

#[test]
fn names() {
    LuaApp::boot("system").run_suite("system", "names");
}

#[test]
fn spawner() {
    LuaApp::boot("system").run_suite("system", "spawner");
}

#[test]
fn registry() {
    LuaApp::boot("system").run_suite("system", "registry");
}

#[test]
fn events() {
    LuaApp::boot("system").run_suite("system", "events");
}

#[test]
fn supervision() {
    LuaApp::boot("system").run_suite("system", "supervision");
}

#[test]
fn upgrade() {
    LuaApp::boot("system").run_suite("system", "upgrade");
}

#[test]
fn hosts() {
    LuaApp::boot("system").run_suite("system", "hosts");
}
