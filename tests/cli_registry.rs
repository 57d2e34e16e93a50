//! `wippy registry list|show|versions|rollback` as child processes.

use std::path::{Path, PathBuf};
use std::process::Command;

use wippy::boot::{App, BootOptions};
use wippy::config::ConfigSources;
use wippy::registry::{ChangeSet, Entry};
use wippy::rt::Value;

const BIN: &str = env!("CARGO_BIN_EXE_wippy");

fn manifest(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn wippy(args: &[&str], dir: Option<&Path>) -> (i32, String, String) {
    let mut c = Command::new(BIN);
    c.env_remove("RUST_LOG").args(args);
    if let Some(d) = dir {
        c.arg("-d").arg(d);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_prints_the_entries() {
    let (code, out, err) = wippy(&["registry", "list"], Some(&manifest("examples/hello")));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "ID             KIND\n\
         -------------  -------------\n\
         demo:cli       process.lua\n\
         demo:greet     function.lua\n\
         demo:terminal  terminal.host\n\
         \n\
         Total: 3 entries\n"
    );
}

#[test]
fn list_filters_with_the_finder() {
    let demo = manifest("tests/fixtures/demo");
    let ids = |args: &[&str]| {
        let mut a = vec!["registry", "list", "--json"];
        a.extend_from_slice(args);
        let (code, out, err) = wippy(&a, Some(&demo));
        assert_eq!(code, 0, "{args:?}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let all = ids(&[]);
    assert!(all.contains(&"demo:greet".to_string()), "{all:?}");
    assert!(
        !all.contains(&"demo:disabled_thing".to_string()),
        "disabled by config"
    );
    assert_eq!(ids(&["--kind", "function.*"]), ["demo:greet"]);
    assert_eq!(
        ids(&["--kind", "terminal.host", "--ns", "de*"]),
        ["demo:term"]
    );
    assert_eq!(ids(&["--name", "gr*t"]), ["demo:greet"]);
    assert_eq!(ids(&["--meta", "team=edge"]), ["demo:greet"]);
    assert_eq!(ids(&["--meta", "type~^hand"]), ["demo:greet"]);
    assert_eq!(
        ids(&["--meta", "type^han", "--meta", "type$ler"]),
        ["demo:greet"]
    );
    assert_eq!(ids(&["--meta", "type*ndl"]), ["demo:greet"]);
    assert!(ids(&["--meta", "team=nobody"]).is_empty());
    let (code, out, _) = wippy(&["registry", "list", "--kind", "nothing.*"], Some(&demo));
    assert_eq!((code, out.as_str()), (0, "No entries found\n"));
    let (code, _, err) = wippy(&["registry", "list", "--meta", "oops"], Some(&demo));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: invalid --meta filter \"oops\""),
        "{err}"
    );
}

#[test]
fn show_prints_one_entry() {
    let hello = manifest("examples/hello");
    let (code, out, _) = wippy(&["registry", "show", "demo:greet"], Some(&hello));
    assert_eq!(code, 0);
    assert!(
        out.starts_with("ID:   demo:greet\nKind: function.lua\n\nData:\n"),
        "{out}"
    );
    assert!(out.contains("  method: run\n"), "{out}");
    let (_, out, _) = wippy(&["registry", "show", "cli", "--json"], Some(&hello));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["id"], "demo:cli");
    assert_eq!(v["meta"]["command"]["name"], "hello");
    let (_, out, _) = wippy(
        &["registry", "show", "demo:greet", "--field", "method"],
        Some(&hello),
    );
    assert_eq!(out, "run\n");
    let (code, _, err) = wippy(&["registry", "show", "demo:nope"], Some(&hello));
    assert_eq!(
        (code, err.as_str()),
        (1, "Error: entry not found: demo:nope\n")
    );
    let (code, _, err) = wippy(
        &["registry", "show", "demo:greet", "-f", "nope"],
        Some(&hello),
    );
    assert_eq!(code, 1);
    assert_eq!(err, "Error: field \"nope\" not found in entry data\n");
}

fn sqlite_project() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("wippy.lock"),
        "directories: {modules: .wippy, src: ./src}\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join(".wippy.yaml"),
        "version: \"1.0\"\nregistry: {history_type: sqlite}\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.path().join("src")).unwrap();
    std::fs::write(
        d.path().join("src/_index.yaml"),
        "version: \"1.0\"\nnamespace: app\nentries:\n  - {name: base, kind: app.setting, v: 0}\n",
    )
    .unwrap();
    d
}

fn boot(dir: &Path) -> App {
    let mut o = BootOptions::new(dir);
    o.workers = Some(1);
    o.config = ConfigSources {
        file: Some(dir.join(".wippy.yaml")),
        ..Default::default()
    };
    App::start(o).expect("boot")
}

#[test]
fn versions_and_rollback_on_the_sqlite_history() {
    let d = sqlite_project();
    {
        let app = boot(d.path());
        let reg = &app.system().registry;
        reg.apply(
            ChangeSet::new().create(Entry::new("app:one", "app.setting").with_data(Value::Int(1))),
        )
        .unwrap();
        reg.apply(
            ChangeSet::new().create(Entry::new("app:two", "app.setting").with_data(Value::Int(2))),
        )
        .unwrap();
        assert_eq!(app.shutdown(), 0);
    }
    let (code, out, err) = wippy(&["registry", "versions"], Some(d.path()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "VERSION   PARENT      OPS  CURRENT\n\
         0         -             0\n\
         1         0             1\n\
         2         1             1  *\n"
    );
    let list = |d: &Path| {
        let (_, out, _) = wippy(&["registry", "list", "--json"], Some(d));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(list(d.path()), ["app:base", "app:one", "app:two"]);

    let (code, out, _) = wippy(&["registry", "rollback", "1"], Some(d.path()));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "registry head moved from version 2 to 1; the next run starts there\n"
    );
    assert_eq!(list(d.path()), ["app:base", "app:one"]);
    let app = boot(d.path());
    let snap = app.system().registry.snapshot();
    assert_eq!(snap.version(), 1);
    assert!(snap.get(&"app:two".into()).is_none());
    assert!(snap.get(&"app:one".into()).is_some());
    drop(app);

    let (code, _, err) = wippy(&["registry", "rollback", "9"], Some(d.path()));
    assert_eq!(code, 1);
    assert_eq!(err, "Error: rollback: version not found: 9\n");
}

#[test]
fn versions_need_a_persistent_history() {
    let (code, _, err) = wippy(&["registry", "versions"], Some(&manifest("examples/hello")));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: registry versions are only kept with registry.history_type: sqlite (current: memory)\n"
    );
}
