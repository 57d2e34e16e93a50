//! The example apps under `examples/` run through the real command line (`wippy run -d <dir>
//! <command> [args…]`), with the output and exit codes their README promises.

use std::path::PathBuf;
use std::process::{Command, Output};

fn run(app: &str, args: &[&str]) -> Output {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(app);
    Command::new(env!("CARGO_BIN_EXE_wippy"))
        .arg("run")
        .arg("-d")
        .arg(&dir)
        .args(args)
        .output()
        .expect("run wippy")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn hello_greets() {
    let o = run("hello", &["hello", "Bob"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "hi Bob\n");
}

#[test]
fn worker_pool_sums_squares() {
    let o = run("worker-pool", &["squares", "8", "100"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "sum of squares 1..100 over 8 workers = 338350\n"
    );
    let o = run("worker-pool", &["squares", "3", "1000"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "sum of squares 1..1000 over 3 workers = 333833500\n"
    );
}

#[test]
fn function_chain_prices_orders() {
    let o = run("function-chain", &["order"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "{\"lines\":2,\"total\":12.5}\n");

    let o = run(
        "function-chain",
        &["order", r#"{"items":[{"sku":"a","qty":0,"unit":1}]}"#],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("pricing failed: invalid item"),
        "stderr: {}",
        stderr(&o)
    );

    let o = run("function-chain", &["order", "not json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad order:"), "stderr: {}", stderr(&o));
}
