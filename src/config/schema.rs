//! The known configuration keys of `.wippy.yaml` (spec `lua-api.md` §1.10): type, default,
//! and the conversion/validation of a raw value into the canonical [`Value`] of that type.
//!
//! Keys are dotted paths (`registry.history_type`). A key ending in `.*` accepts any nested
//! key below it (free-form subtrees such as `otel.http.*` or `cluster.*`).

use wippy_rt::Value;

use super::duration::parse_duration;

/// The type of a configuration value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// `true`/`false` (strings `"true"`/`"false"` accepted).
    Bool,
    /// Integer (integral floats and numeric strings accepted).
    Int,
    /// Number.
    Float,
    /// String (scalars are stringified).
    Str,
    /// Go duration string; stored as the string.
    Duration,
    /// List of strings (a single string becomes a one-element list; a comma list from
    /// env/`--set` is split).
    StrList,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// Anything.
    Any,
}

/// One schema row: key, type, default (`None` = unset).
pub type Row = (&'static str, Ty, Option<&'static str>);

/// Sections with special structure, kept raw (not flattened).
pub const RAW_SECTIONS: &[&str] = &["override", "disable", "vars", "profiles", "workspace"];

/// Every known key.
pub const SCHEMA: &[Row] = &[
    (
        "logger.encoding",
        Ty::Enum(&["console", "json"]),
        Some("console"),
    ),
    (
        "logger.mode",
        Ty::Enum(&["production", "development", "dev", "prod", ""]),
        Some("production"),
    ),
    (
        "logger.level",
        Ty::Enum(&[
            "debug", "info", "warn", "warning", "error", "dpanic", "panic", "fatal", "trace",
        ]),
        Some("info"),
    ),
    ("logmanager.propagate_downstream", Ty::Bool, Some("true")),
    ("logmanager.stream_to_events", Ty::Bool, Some("false")),
    ("logmanager.min_level", Ty::Int, Some("-1")),
    ("profiler.enabled", Ty::Bool, Some("false")),
    ("profiler.address", Ty::Str, Some("localhost:6060")),
    ("profiler.read_timeout", Ty::Duration, Some("15s")),
    ("profiler.write_timeout", Ty::Duration, Some("15s")),
    ("profiler.idle_timeout", Ty::Duration, Some("60s")),
    ("security.strict_mode", Ty::Bool, Some("false")),
    ("registry.enable_history", Ty::Bool, Some("true")),
    (
        "registry.history_type",
        Ty::Enum(&["memory", "sqlite", "postgres", "nil", "none"]),
        Some("memory"),
    ),
    ("registry.history_path", Ty::Str, Some(".wippy/registry.db")),
    ("registry.history_dsn", Ty::Str, None),
    ("registry.history_schema", Ty::Str, None),
    ("registry.event_wait_timeout", Ty::Duration, Some("30s")),
    (
        "registry.dependency_resolve_timeout",
        Ty::Duration,
        Some("30s"),
    ),
    (
        "registry.dependency_download_timeout",
        Ty::Duration,
        Some("5m"),
    ),
    ("registry.dispatch_internal_kinds", Ty::StrList, None),
    ("relay.node_name", Ty::Str, None),
    ("supervisor.host.buffer_size", Ty::Int, Some("1024")),
    ("supervisor.host.worker_count", Ty::Int, Some("16")),
    ("functions.host.buffer_size", Ty::Int, Some("1024")),
    ("functions.host.worker_count", Ty::Int, Some("16")),
    ("lua.proto_cache_size", Ty::Int, Some("60000")),
    ("lua.main_cache_size", Ty::Int, Some("10000")),
    ("lua.cache.enabled", Ty::Bool, None),
    ("lua.cache.dir", Ty::Str, Some(".wippy/cache/lua")),
    (
        "lua.cache.mode",
        Ty::Enum(&["readwrite", "readonly", "off"]),
        Some("readwrite"),
    ),
    ("lua.cache.compile.enabled", Ty::Bool, Some("true")),
    ("lua.cache.typecheck.enabled", Ty::Bool, Some("true")),
    ("lua.type_system.enabled", Ty::Bool, Some("false")),
    ("lua.type_system.strict", Ty::Bool, Some("false")),
    ("lua.invalidation_wait_timeout", Ty::Duration, Some("30s")),
    ("finder.query_cache_size", Ty::Int, Some("1000")),
    ("finder.regex_cache_size", Ty::Int, Some("100")),
    ("otel.enabled", Ty::Bool, Some("false")),
    ("otel.endpoint", Ty::Str, Some("localhost:4318")),
    (
        "otel.protocol",
        Ty::Enum(&["http/protobuf", "grpc", "http"]),
        Some("http/protobuf"),
    ),
    ("otel.service_name", Ty::Str, None),
    ("otel.service_version", Ty::Str, None),
    ("otel.insecure", Ty::Bool, Some("true")),
    ("otel.sample_rate", Ty::Float, Some("1.0")),
    ("otel.propagators", Ty::StrList, None),
    ("otel.traces_enabled", Ty::Bool, None),
    ("otel.metrics_enabled", Ty::Bool, None),
    ("otel.http.*", Ty::Any, None),
    ("otel.process.*", Ty::Any, None),
    ("otel.interceptor.*", Ty::Any, None),
    ("otel.queue.enabled", Ty::Bool, None),
    ("otel.temporal.enabled", Ty::Bool, None),
    ("shutdown.timeout", Ty::Duration, Some("30s")),
    ("metrics.buffer.size", Ty::Int, Some("10000")),
    ("metrics.interceptor.enabled", Ty::Bool, Some("false")),
    ("prometheus.enabled", Ty::Bool, Some("false")),
    ("prometheus.address", Ty::Str, None),
    ("cluster.enabled", Ty::Bool, Some("false")),
    ("cluster.name", Ty::Str, None),
    ("cluster.failure_domain", Ty::Str, None),
    ("cluster.membership.*", Ty::Any, None),
    ("cluster.internode.*", Ty::Any, None),
    ("cluster.raft.*", Ty::Any, None),
    ("lsp.enabled", Ty::Bool, Some("false")),
    ("lsp.address", Ty::Str, Some(":7777")),
    ("lsp.http_enabled", Ty::Bool, Some("false")),
    ("lsp.http_address", Ty::Str, Some(":7778")),
    ("lsp.http_path", Ty::Str, Some("/lsp")),
    ("lsp.http_allow_origin", Ty::Str, None),
    ("lsp.max_message_bytes", Ty::Int, None),
    ("network_service.state_dir", Ty::Str, Some(".wippy/net")),
    ("network_service.default_network", Ty::Str, None),
    ("dispatcher.http.timeout", Ty::Duration, None),
    ("dispatcher.http.max_idle_conns", Ty::Int, None),
    ("dispatcher.http.max_idle_per_host", Ty::Int, None),
    ("dispatcher.http.idle_conn_timeout", Ty::Duration, None),
    ("dispatcher.http.max_clients", Ty::Int, None),
    (
        "modules.registry_url",
        Ty::Str,
        Some("https://hub.wippy.ai"),
    ),
    ("extensions.enabled", Ty::Bool, Some("true")),
    ("extensions.paths", Ty::StrList, None),
];

/// Find the schema row for a key (exact, or a `prefix.*` row).
pub fn lookup(key: &str) -> Option<&'static Row> {
    SCHEMA.iter().find(|r| r.0 == key).or_else(|| {
        SCHEMA.iter().find(|r| {
            r.0.strip_suffix('*')
                .is_some_and(|pre| key.starts_with(pre) && key.len() > pre.len())
        })
    })
}

/// True when some schema row belongs to `section`.
pub fn known_section(section: &str) -> bool {
    RAW_SECTIONS.contains(&section)
        || SCHEMA
            .iter()
            .any(|r| r.0.split('.').next() == Some(section))
}

/// Convert a raw value to the canonical value of `ty`; the error says what was expected.
pub fn convert(ty: Ty, v: &Value) -> Result<Value, String> {
    let got = || format!("{} {}", v.type_name(), short(v));
    match ty {
        Ty::Any => Ok(v.clone()),
        Ty::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::Str(_) => match v.as_str() {
                Some("true") => Ok(Value::Bool(true)),
                Some("false") => Ok(Value::Bool(false)),
                _ => Err(format!("expected a boolean, got {}", got())),
            },
            _ => Err(format!("expected a boolean, got {}", got())),
        },
        Ty::Int => match v {
            Value::Int(_) => Ok(v.clone()),
            Value::Float(_) => v
                .as_i64()
                .map(Value::Int)
                .ok_or_else(|| format!("expected an integer, got {}", got())),
            Value::Str(_) => v
                .as_str()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .map(Value::Int)
                .ok_or_else(|| format!("expected an integer, got {}", got())),
            _ => Err(format!("expected an integer, got {}", got())),
        },
        Ty::Float => match v {
            Value::Int(i) => Ok(Value::Float(*i as f64)),
            Value::Float(_) => Ok(v.clone()),
            Value::Str(_) => v
                .as_str()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .map(Value::Float)
                .ok_or_else(|| format!("expected a number, got {}", got())),
            _ => Err(format!("expected a number, got {}", got())),
        },
        Ty::Str => match v {
            Value::Str(_) => Ok(v.clone()),
            Value::Int(i) => Ok(Value::from(i.to_string())),
            Value::Float(f) => Ok(Value::from(f.to_string())),
            Value::Bool(b) => Ok(Value::from(b.to_string())),
            Value::Nil => Ok(Value::str("")),
            _ => Err(format!("expected a string, got {}", got())),
        },
        Ty::Duration => match v {
            Value::Str(_) => {
                let s = v.as_str().unwrap_or("");
                parse_duration(s)
                    .map(|_| v.clone())
                    .map_err(|e| e.to_string())
            }
            Value::Int(0) => Ok(Value::str("0s")),
            Value::Int(_) | Value::Float(_) => Err(format!(
                "expected a duration string such as \"30s\" or \"1m30s\", got {} (a unit is required)",
                got()
            )),
            _ => Err(format!("expected a duration string, got {}", got())),
        },
        Ty::StrList => match v {
            Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for x in a {
                    out.push(
                        convert(Ty::Str, x)
                            .map_err(|_| format!("expected a list of strings, got {}", got()))?,
                    );
                }
                Ok(Value::Array(out))
            }
            Value::Str(_) => Ok(Value::Array(
                v.as_str()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(Value::str)
                    .collect(),
            )),
            Value::Nil => Ok(Value::Array(Vec::new())),
            _ => Err(format!("expected a list of strings, got {}", got())),
        },
        Ty::Enum(allowed) => match v.as_str() {
            Some(s) if allowed.contains(&s) => Ok(v.clone()),
            _ => Err(format!(
                "expected one of {}, got {}",
                allowed.join(", "),
                got()
            )),
        },
    }
}

fn short(v: &Value) -> String {
    let s = format!("{v:?}");
    if s.len() > 60 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(57).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

/// Coerce a CLI/env string (`--set`, `-o`, environment): `true`/`false` → bool, an integer
/// literal → int, anything else that parses as a float and contains `.`, `e` or `E` → float,
/// else the string itself.
pub fn coerce_cli(s: &str) -> Value {
    match s {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = s.parse::<i64>() {
        return Value::Int(i);
    }
    if s.contains(['.', 'e', 'E'])
        && !s
            .chars()
            .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        && let Ok(f) = s.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::str(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coercion() {
        assert_eq!(coerce_cli("true"), Value::Bool(true));
        assert_eq!(coerce_cli("42"), Value::Int(42));
        assert!(matches!(coerce_cli("1.5"), Value::Float(_)));
        assert!(matches!(coerce_cli("2e3"), Value::Float(_)));
        assert_eq!(coerce_cli("30s"), Value::str("30s"));
        assert_eq!(coerce_cli("inf"), Value::str("inf"));
        assert_eq!(coerce_cli("1.2.3"), Value::str("1.2.3"));
    }

    #[test]
    fn every_default_converts() {
        for (k, ty, d) in SCHEMA {
            if let Some(d) = d {
                convert(*ty, &coerce_cli(d)).unwrap_or_else(|e| panic!("{k}: {e}"));
            }
        }
    }
}
