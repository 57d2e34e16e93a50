//! `db.sql.sqlite` + the `sql` module through a booted app (`tests/apps/data`): every
//! documented behaviour and error kind, transactions and savepoints, the single-connection
//! serialisation of transactions across processes, concurrent writers, the query builder,
//! and resource cleanup when a process exits.

mod data_common;

use data_common::DataApp;
use wippy::rt::Value;
use wippy::services::sql::owners;

#[test]
fn sql_suite() {
    let app = DataApp::acceptance();
    let n = app.run_suite("data.sql:suite");
    assert!(n >= 20, "ran {n} tests");
}

#[test]
fn builder_suite() {
    let app = DataApp::acceptance();
    app.run_suite("data.sql:builder");
}

#[test]
fn resources_are_released_when_the_process_exits() {
    let app = DataApp::acceptance();
    let o = owners::of(&app.sys().handle).expect("owners installed");
    let before = o.live();
    let r = app.call("data.sql:open_everything", vec![]).expect("call");
    assert_eq!(r, Value::str("ok"));
    // The janitor runs on exit, before the caller gets the result.
    app.eventually(5, "resources released", || o.live() == before);
    let db = wippy::services::sql::manager(app.sys())
        .unwrap()
        .get("data:db")
        .unwrap();
    app.eventually(5, "transaction rolled back", || {
        db.stats.open_tx.load(std::sync::atomic::Ordering::SeqCst) == 0
    });
    assert_eq!(o.owner_count(), 0, "no process owns anything");
}
