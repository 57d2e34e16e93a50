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
            "{}: version: missing version field (must be \"1.0\")",
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
            "{}:1: version: unsupported version: 2.0 (expected \"1.0\")",
            f.display()
        )]
    );
    let f = file(dir.path(), "version: \"1.0\"\nshutdown: [\n");
    let e = errors(&ConfigSources {
        file: Some(f.clone()),
        ..Default::default()
    });
    assert!(
        e[0].starts_with(&format!("{}:3: failed to parse YAML:", f.display())),
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
        e[0].ends_with("override: missing OS environment variable: TOKEN"),
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

#[test]
fn config_files_compose_left_to_right() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    std::fs::write(
        &a,
        "version: \"1.0\"\nvars: {port: 8080}\nshutdown: {timeout: 5s}\nfinder: {query_cache_size: 10, regex_cache_size: 20}\noverride:\n  \"app:x:port\": ${port}\n  \"app:x:host\": a\n",
    )
    .unwrap();
    let b = dir.path().join("b.yaml");
    std::fs::write(
        &b,
        "version: \"1.0\"\nvars: {port: 9090}\nfinder: {query_cache_size: 11}\noverride:\n  \"app:x:host\": b-${env:WHO}\n",
    )
    .unwrap();
    let c = Config::load(&ConfigSources {
        files: vec![a.clone(), b.clone()],
        env: vec![("WHO".into(), "me".into())],
        ..Default::default()
    })
    .unwrap();
    // Later files override matching leaves and keep the rest.
    assert_eq!(c.finder.query_cache_size, 11);
    assert_eq!(c.finder.regex_cache_size, 20);
    assert_eq!(c.shutdown.timeout, std::time::Duration::from_secs(5));
    let ov: Vec<(String, Value)> = c
        .overrides
        .iter()
        .map(|o| (o.key.clone(), o.value.clone()))
        .collect();
    // `vars` merge too, and a whole-value `${port}` keeps the integer type.
    assert!(
        ov.contains(&("app:x:port".into(), Value::Int(9090))),
        "{ov:?}"
    );
    assert!(
        ov.contains(&("app:x:host".into(), Value::str("b-me"))),
        "{ov:?}"
    );

    // Every named file must exist (the default .wippy.yaml stays optional).
    let missing = dir.path().join("nope.yaml");
    let e = errors(&ConfigSources {
        files: vec![a.clone(), missing.clone()],
        ..Default::default()
    });
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(&format!(
            "{}: failed to read config file:",
            missing.display()
        )),
        "{e:?}"
    );
    assert!(
        Config::load(&ConfigSources {
            file: Some(missing),
            ..Default::default()
        })
        .is_ok()
    );
    // A missing OS variable in any file fails the load, naming the file and line.
    let e = errors(&ConfigSources {
        files: vec![a, b.clone()],
        ..Default::default()
    });
    assert_eq!(
        e,
        vec![format!(
            "{}:4: override: missing OS environment variable: WHO",
            b.display()
        )]
    );
}

#[test]
fn profiles_overlay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(
        dir.path(),
        "version: \"1.0\"\nvars: {level: info}\nshutdown: {timeout: 30s}\nfinder: {query_cache_size: 1}\ndisable:\n  namespaces: [\"tests.**\", \"bench\"]\n  entries: [\"app:legacy\"]\noverride:\n  \"app:x:level\": ${level}\nprofiles:\n  dev:\n    vars: {level: debug}\n    shutdown: {timeout: 1s}\n    disable:\n      namespaces: {remove: [\"tests.**\"], add: [\"prod.**\"]}\n    override: {\"app:x:extra\": 1}\n  fast:\n    shutdown: {timeout: 2s}\n    finder: {query_cache_size: 7}\n    disable:\n      entries: [\"app:other\"]\n",
    );
    let load = |profiles: &[&str]| {
        Config::load(&ConfigSources {
            file: Some(f.clone()),
            profiles: profiles.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
    };
    let base = load(&[]).unwrap();
    assert_eq!(base.shutdown.timeout, std::time::Duration::from_secs(30));
    assert_eq!(base.disable.namespaces, vec!["tests.**", "bench"]);

    let dev = load(&["dev"]).unwrap();
    assert_eq!(dev.shutdown.timeout, std::time::Duration::from_secs(1));
    assert_eq!(dev.finder.query_cache_size, 1);
    assert_eq!(dev.disable.namespaces, vec!["bench", "prod.**"]);
    assert_eq!(dev.disable.entries, vec!["app:legacy"]);
    let ov: Vec<(String, Value)> = dev
        .overrides
        .iter()
        .map(|o| (o.key.clone(), o.value.clone()))
        .collect();
    assert!(
        ov.contains(&("app:x:level".into(), Value::str("debug"))),
        "{ov:?}"
    );
    assert!(
        ov.contains(&("app:x:extra".into(), Value::Int(1))),
        "{ov:?}"
    );

    // Applied in order: the later profile wins; a plain list replaces.
    let both = load(&["dev", "fast"]).unwrap();
    assert_eq!(both.shutdown.timeout, std::time::Duration::from_secs(2));
    assert_eq!(both.finder.query_cache_size, 7);
    assert_eq!(both.disable.entries, vec!["app:other"]);
    // `--set` stays above the profiles.
    let set = Config::load(&ConfigSources {
        file: Some(f.clone()),
        profiles: vec!["fast".into()],
        sets: vec!["shutdown.timeout=9s".into()],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(set.shutdown.timeout, std::time::Duration::from_secs(9));

    let e = load(&["prod"]).unwrap_err();
    assert_eq!(
        e.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        vec!["--profile prod: profile \"prod\" not found".to_string()]
    );
}

#[test]
fn variable_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(
        dir.path(),
        "version: \"1.0\"\noverride:\n  \"app:x:a\": \"${nope}\"\n",
    );
    let e = errors(&ConfigSources {
        file: Some(f.clone()),
        ..Default::default()
    });
    assert_eq!(
        e,
        vec![format!(
            "{}:2: override: variable \"nope\" not found (define it under vars:)",
            f.display()
        )]
    );
    let f = file(
        dir.path(),
        "version: \"1.0\"\noverride:\n  \"app:x:a\": \"${env.HOME}\"\n  \"app:x:b\": \"$${literal}\"\n",
    );
    let e = errors(&ConfigSources {
        file: Some(f.clone()),
        ..Default::default()
    });
    assert!(
        e[0].contains("OS environment interpolation \"env.HOME\" is not supported"),
        "{e:?}"
    );
}
