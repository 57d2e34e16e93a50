//! Definition forms, references, interpolation, errors with file/line/entry, pipeline.

use std::path::{Path, PathBuf};

use wippy::config::{Config, ConfigSources};
use wippy::loader::kinds::{lua_imports, resolved_refs};
use wippy::loader::{
    Diagnostic, Format, LoadOptions, Severity, load_dir, load_project, parse_bytes,
};
use wippy::registry::{Entry, Id, Registry};
use wippy::rt::Value;

fn parse(text: &str) -> Vec<Entry> {
    parse_bytes(text.as_bytes(), Format::Yaml, Path::new("/nonexistent"))
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|le| le.entry)
        .collect()
}

fn parse_err(text: &str) -> Diagnostic {
    parse_bytes(text.as_bytes(), Format::Yaml, Path::new("/nonexistent")).unwrap_err()
}

fn y(s: &str) -> Value {
    serde_yaml::from_str(s).unwrap()
}

#[test]
fn batch_form_flattened_data_and_file_meta() {
    let es = parse(
        "version: \"1.0\"\nnamespace: shop.api\nmeta: {team: core, tier: 1}\nentries:\n  - name: list\n    kind: function.lua\n    meta: {tier: 2}\n    method: run\n    modules: [json]\n",
    );
    assert_eq!(es.len(), 1);
    let e = &es[0];
    assert_eq!(e.id.to_string(), "shop.api:list");
    assert_eq!(e.kind, "function.lua");
    assert_eq!(
        e.meta,
        y("{tier: 2, team: core}"),
        "file meta merged, entry wins"
    );
    assert_eq!(e.data, y("{method: run, modules: [json]}"));
}

#[test]
fn data_wrapper_wins_over_siblings() {
    let es = parse(
        "namespace: n\nentries:\n  - {name: a, kind: registry.entry, data: [1, 2], dropped: x}\n  - {name: b, kind: registry.entry, data: hello}\n",
    );
    assert_eq!(es[0].data, y("[1, 2]"));
    assert_eq!(es[1].data, Value::str("hello"));
}

#[test]
fn single_entry_form() {
    let es = parse(
        "namespace: n\nversion: \"1.0\"\nname: svc\nkind: http.service\nmeta: {m: 1}\nrequirements: [x]\naddr: :8080\n",
    );
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].id.to_string(), "n:svc");
    assert_eq!(es[0].meta, y("{m: 1}"));
    assert_eq!(es[0].data, y("{addr: ':8080'}"));
}

#[test]
fn non_wippy_files_and_empty_entries() {
    for t in [
        "just: data\n",
        "- a\n- b\n",
        "namespace: ''\nentries: []\n",
        "namespace:\n",
        "42",
    ] {
        assert!(
            parse_bytes(t.as_bytes(), Format::Yaml, Path::new("/x"))
                .unwrap()
                .is_none(),
            "{t:?}"
        );
    }
    assert!(parse("namespace: n\nentries: []\n").is_empty());
    let d = parse_err("namespace: n\nversion: \"1.0\"\n");
    assert_eq!(
        d.to_string(),
        "input.yaml: either entries array or single entry (name/kind) must be provided"
    );
}

#[test]
fn ids_and_references() {
    let es = parse(
        "namespace: app.api.v2\nentries:\n  - {name: get_user.endpoint, kind: http.endpoint, meta: {router: api}, func: handlers:get}\n  - {name: r, kind: http.router, meta: {server: 'gw.ns:gateway'}}\n  - {name: f, kind: function.lua, imports: {json: ':json', h: helpers, lib: 'app.lib:util'}}\n",
    );
    assert_eq!(es[0].id.ns(), "app.api.v2");
    assert_eq!(es[0].id.name(), "get_user.endpoint");
    assert_eq!(
        resolved_refs(&es[0]),
        vec![
            ("meta.router", Id::parse("app.api.v2:api")),
            ("data.func", Id::parse("handlers:get"))
        ]
    );
    assert_eq!(
        resolved_refs(&es[1]),
        vec![("meta.server", Id::parse("gw.ns:gateway"))]
    );
    // imports are verbatim: no colon / empty namespace = built-in module.
    let imports = lua_imports(&es[2]);
    assert_eq!(imports[0].1.to_string(), ":json");
    assert_eq!(imports[1].1.to_string(), ":helpers");
    assert_eq!(imports[2].1.to_string(), "app.lib:util");
    // Names may contain colons: split at the first one.
    assert_eq!(Id::parse("a.b:c:d").name(), "c:d");
}

#[test]
fn errors_name_file_line_and_entry() {
    let d = parse_err(
        "namespace: app\nentries:\n  - name: ok\n    kind: registry.entry\n  - name: broken\n    meta: {x: 1}\n",
    );
    assert_eq!(
        d.to_string(),
        "input.yaml:5: entry app:broken: entry[1].kind: missing kind"
    );
    assert_eq!((d.line, d.entry.as_deref()), (Some(5), Some("app:broken")));

    let d = parse_err("namespace: app\nentries:\n  - {name: a, kind: k}\n  - kind: k\n    x: 1\n");
    assert_eq!(
        d.to_string(),
        "input.yaml:4: entry entry[1]: entry[1].name: missing name"
    );

    let d = parse_err("namespace: app\nentries:\n  - {name: '  ', kind: k}\n");
    assert_eq!(
        d.to_string(),
        "input.yaml:3: entry entry[0]: entry[0].name: must be a non-empty string"
    );

    let d = parse_err("namespace: app\nentries:\n  - {name: a, kind: k, meta: [1]}\n");
    assert_eq!(
        d.to_string(),
        "input.yaml:3: entry app:a: entry[0].meta: must be a mapping, got table"
    );

    let d = parse_err("namespace: app\nentries: {a: 1}\n");
    assert_eq!(
        d.to_string(),
        "input.yaml:2: entries must be a list, got table"
    );

    // Syntax errors carry serde's line.
    let d = parse_err("namespace: app\nentries:\n  - name: a\n    kind: [unclosed\n");
    assert_eq!(d.line, Some(5), "{d}");
    assert!(
        d.to_string().starts_with("input.yaml:5: invalid YAML: "),
        "{d}"
    );

    let d = parse_bytes(
        b"{\n \"namespace\": \"x\",\n \"entries\": [ ,]\n}",
        Format::Json,
        Path::new("/x"),
    )
    .unwrap_err();
    assert!(
        d.to_string().starts_with("input.yaml:3: invalid JSON: "),
        "{d}"
    );
}

fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn file_interpolation_rules() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write(&src, "api/handler.lua", "return 1");
    write(&src, "lib/shared.lua", "return 2");
    write(dir.path(), "secret.txt", "nope");
    write(
        &src,
        "api/_index.yaml",
        "namespace: app\nentries:\n  - name: h\n    kind: function.lua\n    source: file://handler.lua\n    extra: {deep: [file:///lib/shared.lua]}\n    note: 'see file://handler.lua'\n",
    );
    write(
        &src,
        "api/bad.yaml",
        "namespace: app\nentries:\n  - name: ok\n    kind: k\n  - name: evil\n    kind: k\n    source: file://../../secret.txt\n",
    );
    write(
        &src,
        "api/missing.yaml",
        "namespace: app\nentries:\n  - name: gone\n    kind: k\n    source: file://nope.lua\n",
    );
    let p = load_dir(&src, &Config::defaults(), &LoadOptions::default()).unwrap();
    let ids: Vec<String> = p.entries.iter().map(|e| e.entry.id.to_string()).collect();
    assert_eq!(ids, ["app:h"], "bad files are skipped whole");
    let h = &p.entries[0].entry;
    assert_eq!(h.data.get("source").unwrap().as_str(), Some("return 1"));
    assert_eq!(h.data.get_path("extra.deep").unwrap(), &y("[return 2]"));
    assert_eq!(
        h.data.get("note").unwrap().as_str(),
        Some("see file://handler.lua"),
        "only a prefix is interpolated"
    );
    let msgs: Vec<String> = p.diagnostics.iter().map(|d| d.to_string()).collect();
    let bad = src.join("api/bad.yaml");
    assert!(
        msgs.contains(&format!(
            "{}:7: entry app:evil: file://../../secret.txt: path traversal: file://../../secret.txt escapes the load root {}; file skipped",
            bad.display(),
            src.display()
        )),
        "{msgs:#?}"
    );
    let missing = msgs.iter().find(|m| m.contains("missing.yaml")).unwrap();
    assert!(
        missing.contains("missing.yaml:5: entry app:gone: file://nope.lua: cannot read"),
        "{missing}"
    );
    assert!(
        p.diagnostics
            .iter()
            .all(|d| d.severity == Severity::Warning)
    );
}

#[test]
fn duplicates_unknown_kinds_and_scan_rules() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    write(
        src,
        "a.yaml",
        "namespace: n\nentries:\n  - {name: x, kind: registry.entry, v: 1}\n  - {name: odd, kind: function.lau}\n",
    );
    write(
        src,
        "b/c.yml",
        "namespace: n\nentries:\n  - {name: x, kind: registry.entry, v: 2}\n",
    );
    write(
        src,
        "node_modules/d.yaml",
        "namespace: n\nentries:\n  - {name: hidden, kind: registry.entry}\n",
    );
    write(
        src,
        "e.txt",
        "namespace: n\nname: t\nkind: registry.entry\n",
    );
    let p = load_dir(src, &Config::defaults(), &LoadOptions::default()).unwrap();
    let ids: Vec<String> = p.entries.iter().map(|e| e.entry.id.to_string()).collect();
    assert_eq!(ids, ["n:x", "n:odd"]);
    assert_eq!(p.entries[0].entry.data, y("{v: 2}"), "last definition wins");
    let msgs: Vec<String> = p.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("c.yml:3: entry n:x: duplicate entries detected")),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter().any(|m| m.ends_with(
            "a.yaml:4: entry n:odd: unknown kind \"function.lau\": kept as a plain entry"
        )),
        "{msgs:#?}"
    );
}

#[test]
fn fixture_project_end_to_end() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo");
    let cfg = Config::load(&ConfigSources {
        file: Some(root.join(".wippy.yaml")),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(cfg.shutdown.timeout, std::time::Duration::from_secs(10));
    let p = load_project(&root, &cfg, &LoadOptions::default()).unwrap();
    let ids: Vec<String> = p.entries.iter().map(|e| e.entry.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "demo:term",
            "demo:greet",
            "demo:settings",
            "demo:needs",
            "demo.api:cfg",
            "demo.api:router",
            "acme.kit:helper"
        ]
    );
    let get = |id: &str| {
        &p.entries
            .iter()
            .find(|e| e.entry.id.to_string() == id)
            .unwrap()
            .entry
    };
    assert_eq!(
        get("demo:greet").data.get("method"),
        Some(&Value::str("hello")),
        "override applied"
    );
    assert!(
        get("demo:greet")
            .data
            .get("source")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("hi ")
    );
    assert_eq!(get("demo:greet").meta, y("{team: edge, type: handler}"));
    assert_eq!(
        get("demo:term").data.get("port"),
        Some(&Value::str("8080")),
        "requirement default linked"
    );
    assert_eq!(get("demo:term").meta, y("{team: core}"));
    assert_eq!(
        get("acme.kit:helper").meta,
        y("{module: acme/kit, module_version: 1.2.0}")
    );
    assert_eq!(get("demo.api:router").data, y("{prefix: /api}"));
    assert!(p.diagnostics.is_empty(), "{:#?}", p.diagnostics);

    // The entries load into a registry; listeners see creates in dependency order.
    let reg = Registry::default();
    reg.load_state(p.into_entries()).unwrap();
    assert_eq!(reg.snapshot().state().len(), 7);
}

#[test]
fn override_and_pipeline_errors_abort() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo");
    let load = |o: &str| {
        let cfg = Config::load(&ConfigSources {
            file: Some(root.join(".wippy.yaml")),
            overrides: vec![o.to_string()],
            ..Default::default()
        })
        .unwrap();
        load_project(&root, &cfg, &LoadOptions::default())
    };
    let p = load("demo:term:meta.flags.debug=true").unwrap();
    let term = p
        .entries
        .iter()
        .find(|e| e.entry.id.name() == "term")
        .unwrap();
    assert_eq!(
        term.entry.meta.get_path("flags.debug"),
        Some(&Value::Bool(true))
    );
    let p = load("demo:term:kind=process.host").unwrap();
    assert_eq!(p.entries[0].entry.kind, "process.host");
    let err = load("demo:nope:x=1").unwrap_err().to_string();
    assert_eq!(
        err,
        "pipeline stage override failed: -o demo:nope:x: override \"demo:nope:x\": entry demo:nope not found"
    );
    let err = load("demo:disabled_thing:x=1").unwrap_err().to_string();
    assert!(
        err.contains("entry demo:disabled_thing not found"),
        "overriding a disabled entry fails: {err}"
    );
    let err = load("demo:term:kind=").unwrap_err().to_string();
    assert!(
        err.ends_with("override \"demo:term:kind\": kind override must be a non-empty string"),
        "{err}"
    );
}

#[test]
fn disable_rules_and_link_from_dependency() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    write(
        src,
        "a.yaml",
        "namespace: app\nentries:\n  - {name: dep, kind: ns.dependency, component: acme/db, version: ^1, parameters: [{name: dsn, value: 'sqlite://x'}]}\n  - {name: svc, kind: registry.entry, meta: {env: dev}}\n  - {name: keep, kind: registry.entry, hosts: [a]}\n",
    );
    write(
        src,
        "b.yaml",
        "namespace: acme.db\nentries:\n  - {name: dsn, kind: ns.requirement, targets: [{entry: conn, path: data.dsn}, {entry: 'app:keep', path: hosts+=}]}\n  - {name: conn, kind: registry.entry}\n",
    );
    write(
        src,
        "c.yaml",
        "namespace: tests.unit\nentries:\n  - {name: t, kind: registry.entry}\n",
    );
    let mut cfg_file = src.join("cfg.yml");
    std::fs::write(
        &cfg_file,
        "version: \"1.0\"\ndisable:\n  namespaces: ['tests.**']\n  meta: {env: [dev]}\n",
    )
    .unwrap();
    let cfg = Config::load(&ConfigSources {
        file: Some(cfg_file.clone()),
        ..Default::default()
    })
    .unwrap();
    cfg_file.pop();
    let p = load_dir(src, &cfg, &LoadOptions::default()).unwrap();
    let ids: Vec<String> = p.entries.iter().map(|e| e.entry.id.to_string()).collect();
    assert_eq!(ids, ["app:dep", "app:keep", "acme.db:dsn", "acme.db:conn"]);
    let conn = &p.entries[3].entry;
    assert_eq!(conn.data.get("dsn"), Some(&Value::str("sqlite://x")));
    assert_eq!(
        p.entries[1].entry.data.get("hosts"),
        Some(&y("[a, 'sqlite://x']"))
    );
}

#[test]
fn bytecode_hook_runs_per_kind() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.yaml",
        "namespace: n\nentries:\n  - {name: f, kind: function.lua, source: 'return 1'}\n  - {name: r, kind: registry.entry}\n",
    );
    let mut opts = LoadOptions::default();
    opts.pipeline.run_bytecode = true;
    opts.pipeline.register_bytecode(
        "function.lua",
        Box::new(|e: &mut Entry| {
            e.kind = "function.lua.bc".into();
            e.data.insert("hash", Value::str("abc"));
            Ok(())
        }),
    );
    let p = load_dir(dir.path(), &Config::defaults(), &opts).unwrap();
    assert_eq!(p.entries[0].entry.kind, "function.lua.bc");
    assert_eq!(p.entries[1].entry.kind, "registry.entry");
}
