//! Engine smoke tests driven from Rust: spawn/exec, results and errors, messages, functions.

mod support;

use support::App;
use wippy::rt::{Kind, Value};

const INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
  - name: terminal
    kind: terminal.host
  - name: add
    kind: process.lua
    source: file://add.lua
    method: main
  - name: fails
    kind: process.lua
    source: file://fails.lua
  - name: double
    kind: function.lua
    source: file://double.lua
    method: run
  - name: caller
    kind: process.lua
    source: file://caller.lua
    modules: [funcs]
"#;

#[test]
fn exec_returns_first_value() {
    let app = App::yaml(
        INDEX,
        &[
            (
                "add.lua",
                "local function main(a, b) return a + b end\nreturn { main = main }",
            ),
            (
                "fails.lua",
                "return { main = function() error('boom') end }",
            ),
            (
                "double.lua",
                "return { run = function(x) return x * 2 end }",
            ),
            (
                "caller.lua",
                "return { main = function(n) local v, err = funcs.call('app:double', n) return v end }",
            ),
        ],
    );
    assert_eq!(
        app.exec("app:add", vec![Value::Int(2), Value::Int(3)])
            .unwrap(),
        Value::Int(5)
    );
    let e = app.exec("app:fails", vec![]).unwrap_err();
    assert_eq!(e.kind(), &Kind::INTERNAL);
    assert!(e.message().contains("boom"), "{e:?}");
    assert_eq!(
        app.call("app:double", vec![Value::Int(21)]).unwrap(),
        Value::Int(42)
    );
    assert_eq!(
        app.exec("app:caller", vec![Value::Int(5)]).unwrap(),
        Value::Int(10)
    );
}
