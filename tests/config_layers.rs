//! Configuration layering, validation and error texts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wippy::config::{Config, ConfigSources, HistoryType, parse_duration};
use wippy::rt::Value;

fn file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join(".wippy.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn errors(src: &ConfigSources) -> Vec<String> {
    Config::load(src)
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn defaults() {
    let c = Config::defaults();
    assert_eq!(c.shutdown.timeout, Duration::from_secs(30));
    assert_eq!(c.registry.history_type, HistoryType::Memory);
    assert_eq!(c.registry.event_wait_timeout, Duration::from_secs(30));
    assert_eq!(c.registry.history_path, PathBuf::from(".wippy/registry.db"));
    assert_eq!(
        (
            c.supervisor_host.buffer_size,
            c.supervisor_host.worker_count
        ),
        (1024, 16)
    );
    assert_eq!(
        (c.finder.query_cache_size, c.finder.regex_cache_size),
        (1000, 100)
    );
    assert_eq!(c.lua.proto_cache_size, 60000);
    assert!(!c.lua.cache_enabled);
    assert_eq!(c.logger.encoding, "console");
    assert_eq!(c.origin("shutdown.timeout"), Some("default"));
}

#[test]
fn layering_defaults_file_env_set() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(
        dir.path(),
        "version: \"1.0\"\nshutdown:\n  timeout: 1m30s\nregistry:\n  history_type: sqlite\n  event_wait_timeout: 5s\nsupervisor:\n  host:\n    worker_count: 4\nlua:\n  type_system:\n    enabled: true\n",
    );
    let src = ConfigSources {
        file: Some(f.clone()),
        env: vec![
            ("WIPPY_REGISTRY__EVENT_WAIT_TIMEOUT".into(), "7s".into()),
            ("WIPPY_SUPERVISOR__HOST__WORKER_COUNT".into(), "6".into()),
            ("WIPPY_NODE_ID".into(), "node-a".into()),
            ("WIPPY_TOKEN".into(), "not config".into()),
            ("PATH".into(), "/bin".into()),
        ],
        sets: vec![
            "supervisor.host.worker_count=8".into(),
            "finder.query_cache_size=5".into(),
        ],
        ..Default::default()
    };
    let c = Config::load(&src).unwrap();
    assert_eq!(
        c.shutdown.timeout,
        Duration::from_secs(90),
        "file beats default"
    );
    assert_eq!(c.registry.history_type, HistoryType::Sqlite);
    assert_eq!(
        c.registry.event_wait_timeout,
        Duration::from_secs(7),
        "env beats file"
    );
    assert_eq!(c.supervisor_host.worker_count, 8, "--set beats env");
    assert_eq!(c.finder.query_cache_size, 5);
    assert_eq!(c.node_name.as_deref(), Some("node-a"));
    assert!(
        c.lua.cache_enabled,
        "cache.enabled defaults to type_system.enabled"
    );
    assert_eq!(
        c.origin("shutdown.timeout"),
        Some(format!("{}:3", f.display()).as_str())
    );
    assert_eq!(
        c.origin("supervisor.host.worker_count"),
        Some("--set supervisor.host.worker_count=8")
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn bad_config_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(
        dir.path(),
        "version: \"1.0\"\nregistry:\n  history_type: mongo\nshutdown:\n  timeout: 30\nsupervisor:\n  host:\n    worker_count: many\nlogger: verbose\n",
    );
    let d = f.display();
    assert_eq!(
        errors(&ConfigSources {
            file: Some(f.clone()),
            ..Default::default()
        }),
        vec![
            format!(
                "{d}:3: registry.history_type: expected one of memory, sqlite, postgres, nil, none, got string \"mongo\""
            ),
            format!(
                "{d}:5: shutdown.timeout: expected a duration string such as \"30s\" or \"1m30s\", got number 30 (a unit is required)"
            ),
            format!(
                "{d}:8: supervisor.host.worker_count: expected an integer, got string \"many\""
            ),
            format!("{d}:9: logger: section must be a mapping, got string"),
        ]
    );
}

#[test]
fn version_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(dir.path(), "shutdown: {timeout: 1s}\n");
    assert_eq!(
        errors(&ConfigSources {
            file: Some(f.clone()),
            ..Default::default()
        }),
        vec![format!(
            "{}: version: version is required and must be \"1.0\"",
            f.display()
        )]
    );
    let f = file(dir.path(), "version: \"2.0\"\n");
    assert_eq!(
        errors(&ConfigSources {
            file: Some(f.clone()),
            ..Default::default()
        }),
        vec![format!(
            "{}:1: version: unsupported config version \"2.0\" (expected \"1.0\")",
            f.display()
        )]
    );
    let f = file(dir.path(), "version: \"1.0\"\nshutdown: [\n");
    let e = errors(&ConfigSources {
        file: Some(f.clone()),
        ..Default::default()
    });
    assert!(
        e[0].starts_with(&format!("{}:3: invalid YAML:", f.display())),
        "{e:?}"
    );
    // A missing file is no config at all.
    assert!(
        Config::load(&ConfigSources {
            file: Some(dir.path().join("absent.yaml")),
            ..Default::default()
        })
        .is_ok()
    );
}

#[test]
fn unknown_keys_warn_and_bad_cli_values_fail() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(
        dir.path(),
        "version: \"1.0\"\nregistry:\n  histroy_type: sqlite\nmystery:\n  a: 1\notel:\n  http:\n    anything: 1\n",
    );
    let c = Config::load(&ConfigSources {
        file: Some(f.clone()),
        ..Default::default()
    })
    .unwrap();
    let d = f.display();
    assert_eq!(
        c.warnings,
        vec![
            format!("{d}:3: unknown key \"registry.histroy_type\" in section \"registry\" ignored"),
            format!("{d}:5: unknown section \"mystery\" ignored"),
        ]
    );
    assert_eq!(c.get("otel.http.anything"), Some(&Value::Int(1)));
    assert_eq!(
        errors(&ConfigSources { sets: vec!["shutdown.timeout=soon".into(), "noequals".into()], ..Default::default() }),
        vec![
            "--set shutdown.timeout=soon: shutdown.timeout: invalid duration \"soon\": expected a number".to_string(),
            "--set noequals: expected section.path=value".to_string(),
        ]
    );
    assert_eq!(
        errors(&ConfigSources { env: vec![("WIPPY_FINDER__QUERY_CACHE_SIZE".into(), "big".into())], ..Default::default() }),
        vec!["env WIPPY_FINDER__QUERY_CACHE_SIZE: finder.query_cache_size: expected an integer, got string \"big\"".to_string()]
    );
    assert_eq!(
        errors(&ConfigSources {
            overrides: vec!["app:x=1".into()],
            ..Default::default()
        }),
        vec!["-o app:x=1: expected namespace:entry:path=value".to_string()]
    );
}

#[test]
fn overrides_placeholders_and_disable() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(
        dir.path(),
        "version: \"1.0\"\nvars:\n  port: 9090\noverride:\n  \"app.api:server:data.addr\": \":${port}\"\n  \"app:svc:meta.token\": \"${env:TOKEN}\"\ndisable:\n  namespaces: [\"tests.**\"]\n  entries: [\"app:legacy\"]\n  meta: {env: [dev, staging]}\n",
    );
    let c = Config::load(&ConfigSources {
        file: Some(f.clone()),
        env: vec![("TOKEN".into(), "s3cret".into())],
        overrides: vec!["app:svc:enabled=true".into(), "app:svc:ratio=0.5".into()],
        ..Default::default()
    })
    .unwrap();
    let ov: Vec<(String, Value)> = c
        .overrides
        .iter()
        .map(|o| (o.key.clone(), o.value.clone()))
        .collect();
    assert_eq!(
        ov,
        vec![
            ("app.api:server:data.addr".into(), Value::str(":9090")),
            ("app:svc:meta.token".into(), Value::str("s3cret")),
            ("app:svc:enabled".into(), Value::Bool(true)),
            ("app:svc:ratio".into(), Value::Float(0.5)),
        ]
    );
    assert_eq!(c.disable.namespaces, vec!["tests.**"]);
    assert_eq!(
        c.disable.meta,
        vec![(
            "env".to_string(),
            vec![Value::str("dev"), Value::str("staging")]
        )]
    );
    let e = errors(&ConfigSources {
        file: Some(f),
        ..Default::default()
    });
    assert!(
        e[0].ends_with("override: environment variable TOKEN is not set"),
        "{e:?}"
    );
}

#[test]
fn go_durations() {
    assert_eq!(
        parse_duration("1h2m3.5s").unwrap(),
        Duration::from_millis(3_723_500)
    );
    assert!(parse_duration("-5s").is_err());
}
