//! Terminal host: `wippy run <command>` exit codes (spec lua-api §5.4), `io`, `system.exit`.

mod support;

use support::App;
use wippy::rt::{Error, Value};
use wippy::services::terminal::{error_text, exit_code};

const INDEX: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: processes
    kind: process.host
  - name: terminal
    kind: terminal.host
  - name: cmd
    kind: process.lua
    meta: {command: {name: cmd}}
    source: file://cmd.lua
    modules: [io, system]
"#;

fn code_of(body: &str, args: &[&str]) -> i32 {
    let src = format!("local function main(...)\n{body}\nend\nreturn {{ main = main }}");
    let app = App::yaml(INDEX, &[("cmd.lua", &src)]);
    app.run_command("app:cmd", args).expect("command ran")
}

#[test]
fn exit_codes() {
    assert_eq!(code_of("return nil", &[]), 0, "nil");
    assert_eq!(code_of("", &[]), 0, "nothing");
    assert_eq!(code_of("return 3", &[]), 3, "integer");
    assert_eq!(code_of("return 4.9", &[]), 4, "float truncates");
    assert_eq!(
        code_of("return -2.5", &[]),
        -2,
        "negative float truncates toward zero"
    );
    assert_eq!(code_of("return 0/0", &[]), 1, "NaN");
    assert_eq!(code_of("return 2^40", &[]), 1, "outside i32");
    assert_eq!(code_of("return true", &[]), 0, "true");
    assert_eq!(code_of("return false", &[]), 1, "false");
    assert_eq!(code_of("return 'text'", &[]), 0, "string");
    assert_eq!(code_of("return {1, 2}", &[]), 0, "table");
    assert_eq!(code_of("error('boom')", &[]), 1, "raised");
    assert_eq!(code_of("return 7, 'failed'", &[]), 1, "returned error");
    assert_eq!(
        code_of(
            "local a, b = ... return tonumber(a) + tonumber(b)",
            &["20", "22"]
        ),
        42,
        "arguments arrive as strings"
    );
    assert_eq!(
        code_of(
            "local a = io.args() return #a * 10 + tonumber(a[2])",
            &["x", "5"]
        ),
        25,
        "io.args()"
    );
    // system.exit records the code, the completion overwrites it (last writer wins)
    assert_eq!(
        code_of("system.exit(5) return nil", &[]),
        0,
        "completion wins"
    );
    assert_eq!(code_of("system.exit(5) return 5", &[]), 5);
}

#[test]
fn exit_code_mapping() {
    assert_eq!(exit_code(&Ok(Value::Nil)), 0);
    assert_eq!(exit_code(&Ok(Value::Float(f64::INFINITY))), 1);
    assert_eq!(exit_code(&Ok(Value::Int(i64::from(i32::MAX) + 1))), 1);
    assert_eq!(exit_code(&Err(Error::internal("x"))), 1);
    let e = Error::internal("pricing failed: pricing failed: no price");
    assert_eq!(
        error_text(&e),
        "pricing failed: no price",
        "doubled prefix collapsed once"
    );
    assert_eq!(error_text(&Error::internal("plain")), "plain");
    assert_eq!(
        error_text(&Error::internal("boom").wrap("ctx")),
        "ctx: boom"
    );
}

#[test]
fn io_outside_terminal() {
    let app = App::yaml(
        INDEX,
        &[(
            "cmd.lua",
            r#"return { main = function()
                local r, err = io.print("x")
                if r ~= nil then return "printed" end
                if err:kind() ~= "Unavailable" or err:message() ~= "no terminal context" then
                    return "wrong error " .. tostring(err)
                end
                if #io.args() ~= 0 then return "args" end
                return "ok"
            end }"#,
        )],
    );
    assert_eq!(app.exec("app:cmd", vec![]).unwrap(), Value::from("ok"));
}

#[test]
fn terminal_host_selection() {
    let app = App::yaml(INDEX, &[("cmd.lua", "return { main = function() end }")]);
    let e =
        wippy::services::terminal::exec(&app.sys, Some("app:nope"), "app:cmd", vec![]).unwrap_err();
    assert!(e.message().contains("terminal host not found"), "{e:?}");
    let e = wippy::services::terminal::exec(&app.sys, None, "app:missing", vec![]).unwrap_err();
    assert!(e.message().contains("factory not found"), "{e:?}");
}
