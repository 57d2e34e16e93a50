//! Acceptance tests written as a Wippy app (`tests/apps/engine`): each suite is a set of
//! `meta.type: test` function entries run by the app's runner process.

mod support;

use std::path::Path;

use support::App;

fn app() -> App {
    App::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/engine"))
        .unwrap_or_else(|e| panic!("engine test app failed to boot: {e} {e:?}"))
}

#[test]
fn channels() {
    app().run_suite("engine", "channels");
}

#[test]
fn coroutines() {
    app().run_suite("engine", "coroutines");
}

#[test]
fn process() {
    app().run_suite("engine", "process");
}

#[test]
fn results() {
    app().run_suite("engine", "results");
}

#[test]
fn time() {
    app().run_suite("engine", "time");
}

#[test]
fn funcs() {
    app().run_suite("engine", "funcs");
}

#[test]
fn sandbox() {
    app().run_suite("engine", "sandbox");
}

#[test]
fn mailbox() {
    app().run_suite("engine", "mailbox");
}
