//! Dialect corpus: `tests/frontend/ok/*.lua` and `tests/frontend/err/*.lua`.
//!
//! * `ok/NAME.lua` — a dialect program. It is translated, the output must have the same number
//!   of lines, and it is executed on the real Lua 5.4 VM (mlua, vendored) with the type runtime
//!   installed; the program checks its own behaviour with `assert` and `expect_line(n)` (the line
//!   the call is on, as Lua reports it, must be `n`). If `ok/NAME.expected.lua` exists the
//!   translation must equal it byte for byte.
//! * `err/NAME.lua` — a malformed program whose first line is `-- error: <message>`; translation
//!   must fail and display exactly as `NAME:<message>`.

use std::fs;
use std::path::{Path, PathBuf};

use mlua::Lua;
use wippy::lua::frontend::{install_type_runtime, translate};

fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/frontend")
        .join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "lua")
                && !p.to_string_lossy().ends_with(".expected.lua")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", root.display());
    files
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

/// A state like the engine's: stdlib, type runtime, plus test helpers.
pub fn harness() -> Lua {
    let lua = Lua::new();
    install_type_runtime(&lua).expect("install type runtime");
    let g = lua.globals();
    g.set(
        "expect_line",
        lua.create_function(|lua, n: usize| {
            let line = lua.inspect_stack(1, |d| d.current_line()).flatten();
            if line == Some(n) {
                Ok(())
            } else {
                Err(mlua::Error::RuntimeError(format!(
                    "expect_line: expected line {n}, Lua reports {line:?}"
                )))
            }
        })
        .expect("fn"),
    )
    .expect("set");
    // 5.1 heritage the engine provides (spec §3.3).
    lua.load("unpack = table.unpack").exec().expect("unpack");
    lua
}

#[test]
fn ok_corpus_translates_keeps_lines_and_runs() {
    let mut failures = Vec::new();
    for path in corpus("ok") {
        let name = stem(&path);
        let src = fs::read_to_string(&path).expect("read");
        let t = match translate(&src, &name) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{name}: translate failed: {e}"));
                continue;
            }
        };
        let out = t.code_lossy().into_owned();
        let lines = |s: &str| s.matches('\n').count();
        if lines(&out) != lines(&src) {
            failures.push(format!(
                "{name}: {} lines in, {} out",
                lines(&src),
                lines(&out)
            ));
        }
        let expected = path.with_file_name(format!("{name}.expected.lua"));
        if expected.exists() {
            let want = fs::read_to_string(&expected).expect("read expected");
            if want != out {
                failures.push(format!(
                    "{name}: translation differs from {name}.expected.lua:\n{out}"
                ));
            }
        }
        let lua = harness();
        if let Err(e) = lua.load(t.code()).set_name(format!("@{name}")).exec() {
            failures.push(format!(
                "{name}: run failed: {e}\n--- translation ---\n{out}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn err_corpus_is_rejected_with_the_expected_message() {
    let mut failures = Vec::new();
    for path in corpus("err") {
        let name = stem(&path);
        let src = fs::read_to_string(&path).expect("read");
        let first = src.lines().next().unwrap_or_default();
        let want = first
            .strip_prefix("-- error: ")
            .unwrap_or_else(|| panic!("{name}: first line must be `-- error: ...`"));
        match translate(&src, &name) {
            Ok(t) => failures.push(format!(
                "{name}: accepted, translation:\n{}",
                t.code_lossy()
            )),
            Err(e) => {
                let got = e.to_string();
                let want = format!("{name}:{want}");
                if got != want {
                    failures.push(format!("{name}:\n  want {want}\n  got  {got}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
