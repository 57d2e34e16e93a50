//! Runtime configuration: typed, validated, layered (spec `lua-api.md` §1.10).
//!
//! * [`duration`] — Go duration strings, the one parser everybody uses;
//! * [`schema`] — the known keys, their types and defaults, CLI value coercion;
//! * [`layers`] — defaults < `.wippy.yaml` (or `--config`) < env < `--set`, with errors that
//!   name the file and line, the env variable or the argument.
//!
//! [`Config::load`] returns the typed view; every value not modelled by a typed field is still
//! reachable with [`Config::get`].
//!
//! ```
//! use wippy::config::{Config, ConfigSources};
//! let cfg = Config::load(&ConfigSources { sets: vec!["shutdown.timeout=5s".into()], ..Default::default() }).unwrap();
//! assert_eq!(cfg.shutdown.timeout, std::time::Duration::from_secs(5));
//! assert_eq!(cfg.finder.query_cache_size, 1000);
//! ```

pub mod duration;
pub mod layers;
pub mod schema;

use std::path::PathBuf;
use std::time::Duration;

use wippy_rt::Value;

pub use duration::{DurationError, format_duration, parse_duration};
pub use layers::{ConfigError, ConfigSources, Layered};

/// `logger.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggerConfig {
    /// `console` or `json`.
    pub encoding: String,
    /// `production` / `development`.
    pub mode: String,
    /// Level name (`debug`, `info`, …).
    pub level: String,
}

/// `logmanager.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogManagerConfig {
    /// Forward to the downstream logger.
    pub propagate_downstream: bool,
    /// Publish log records on the event bus.
    pub stream_to_events: bool,
    /// -1 debug, 0 info, 1 warn, 2 error.
    pub min_level: i64,
}

/// The history backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryType {
    /// In memory (default).
    Memory,
    /// SQLite file at `history_path`.
    Sqlite,
    /// No history.
    None,
}

/// `registry.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct RegistryConfig {
    /// `enable_history` (false forces [`HistoryType::None`]).
    pub enable_history: bool,
    /// Effective backend (`postgres` is not implemented and falls back to memory with a warning).
    pub history_type: HistoryType,
    /// SQLite file (relative to the project directory unless absolute).
    pub history_path: PathBuf,
    /// How long to wait for a listener's answer.
    pub event_wait_timeout: Duration,
    /// Module dependency resolution timeout.
    pub dependency_resolve_timeout: Duration,
    /// Module download timeout.
    pub dependency_download_timeout: Duration,
    /// Kinds applied without events (`None` = the built-in list).
    pub dispatch_internal_kinds: Option<Vec<String>>,
}

/// A host pool (`supervisor.host.*`, `functions.host.*`).
#[derive(Clone, Debug, PartialEq)]
pub struct HostPoolConfig {
    /// Queue capacity.
    pub buffer_size: i64,
    /// Worker threads.
    pub worker_count: i64,
}

/// `lua.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct LuaConfig {
    /// Compiled prototype cache size.
    pub proto_cache_size: i64,
    /// Main chunk cache size.
    pub main_cache_size: i64,
    /// `cache.enabled` (defaults to `type_system.enabled`).
    pub cache_enabled: bool,
    /// `cache.dir`.
    pub cache_dir: PathBuf,
    /// `readwrite`, `readonly`, `off`.
    pub cache_mode: String,
    /// `cache.compile.enabled`.
    pub cache_compile: bool,
    /// `cache.typecheck.enabled`.
    pub cache_typecheck: bool,
    /// `type_system.enabled`.
    pub type_system: bool,
    /// `type_system.strict` (warnings become load errors).
    pub type_system_strict: bool,
    /// `invalidation_wait_timeout`.
    pub invalidation_wait_timeout: Duration,
}

/// `finder.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct FinderConfig {
    /// LRU result cache.
    pub query_cache_size: usize,
    /// LRU regex cache.
    pub regex_cache_size: usize,
}

/// `shutdown.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct ShutdownConfig {
    /// Max wait for components to stop.
    pub timeout: Duration,
}

/// `disable:` rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DisableConfig {
    /// Namespace wildcard patterns.
    pub namespaces: Vec<String>,
    /// Entry-id wildcard patterns.
    pub entries: Vec<String>,
    /// meta field → excluded values.
    pub meta: Vec<(String, Vec<Value>)>,
}

/// One `override` (config section or `-o`).
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// `namespace:entry:path`.
    pub key: String,
    /// The value to set.
    pub value: Value,
    /// Where it came from (`file:line` or `-o …`).
    pub source: String,
}

/// The typed configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `logger`.
    pub logger: LoggerConfig,
    /// `logmanager`.
    pub logmanager: LogManagerConfig,
    /// `registry`.
    pub registry: RegistryConfig,
    /// `supervisor.host`.
    pub supervisor_host: HostPoolConfig,
    /// `functions.host`.
    pub functions_host: HostPoolConfig,
    /// `lua`.
    pub lua: LuaConfig,
    /// `finder`.
    pub finder: FinderConfig,
    /// `shutdown`.
    pub shutdown: ShutdownConfig,
    /// `relay.node_name`.
    pub node_name: Option<String>,
    /// `security.strict_mode`.
    pub strict_security: bool,
    /// `override` section then `-o` arguments, in order.
    pub overrides: Vec<Override>,
    /// `disable` section.
    pub disable: DisableConfig,
    /// Warnings gathered while loading (unknown keys, ignored features).
    pub warnings: Vec<String>,
    layered: Layered,
}

impl Config {
    /// Load and validate from sources. All errors are returned together.
    pub fn load(src: &ConfigSources) -> Result<Config, Vec<ConfigError>> {
        let layered = Layered::build(src)?;
        Config::from_layered(layered)
    }

    /// Defaults only.
    pub fn defaults() -> Config {
        Config::load(&ConfigSources::default()).expect("defaults are valid")
    }

    /// A flat value by dotted key (after layering and conversion).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.layered.values.get(key)
    }

    /// Where a key's value came from (`default`, `file:line`, `env X`, `--set …`).
    pub fn origin(&self, key: &str) -> Option<&str> {
        self.layered.origin.get(key).map(String::as_str)
    }

    /// A raw special section (`override`, `disable`, `vars`, `profiles`, `workspace`).
    pub fn raw_section(&self, name: &str) -> Option<&Value> {
        self.layered.raw.get(name)
    }

    /// All flat values.
    pub fn values(&self) -> &std::collections::BTreeMap<String, Value> {
        &self.layered.values
    }

    fn from_layered(layered: Layered) -> Result<Config, Vec<ConfigError>> {
        let v = &layered.values;
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let b = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let i = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
        let d = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .and_then(|x| parse_duration(x).ok())
                .unwrap_or_default()
        };
        let mut warnings = layered.warnings.clone();
        let mut errors = Vec::new();

        let history_type = if !b("registry.enable_history") {
            HistoryType::None
        } else {
            match s("registry.history_type").as_str() {
                "sqlite" => HistoryType::Sqlite,
                "nil" | "none" => HistoryType::None,
                "postgres" => {
                    warnings.push(
                        "registry.history_type postgres is not supported; using memory".into(),
                    );
                    HistoryType::Memory
                }
                _ => HistoryType::Memory,
            }
        };
        let type_system = b("lua.type_system.enabled");

        let mut overrides = Vec::new();
        if let Some(ov) = layered.raw.get("override") {
            match ov {
                Value::Map(m) => {
                    for (k, val) in m {
                        let key = k
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("{k:?}"));
                        overrides.push(Override {
                            key,
                            value: val.clone(),
                            source: "config override".into(),
                        });
                    }
                }
                Value::Nil => {}
                other => errors.push(ConfigError {
                    source: "config".into(),
                    key: Some("override".into()),
                    message: format!("section must be a mapping, got {}", other.type_name()),
                }),
            }
        }
        for (k, val) in &layered.cli_overrides {
            overrides.push(Override {
                key: k.clone(),
                value: val.clone(),
                source: format!("-o {k}"),
            });
        }

        let mut disable = DisableConfig::default();
        if let Some(dv) = layered.raw.get("disable") {
            let list =
                |x: Option<&Value>, key: &str, errors: &mut Vec<ConfigError>| -> Vec<String> {
                    match x.map(|x| schema::convert(schema::Ty::StrList, x)) {
                        None => Vec::new(),
                        Some(Ok(Value::Array(a))) => a
                            .iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect(),
                        Some(Ok(_)) => Vec::new(),
                        Some(Err(message)) => {
                            errors.push(ConfigError {
                                source: "config".into(),
                                key: Some(format!("disable.{key}")),
                                message,
                            });
                            Vec::new()
                        }
                    }
                };
            disable.namespaces = list(dv.get("namespaces"), "namespaces", &mut errors);
            disable.entries = list(dv.get("entries"), "entries", &mut errors);
            match dv.get("meta") {
                None | Some(Value::Nil) => {}
                Some(Value::Map(m)) => {
                    for (k, vals) in m {
                        let vals = match vals {
                            Value::Array(a) => a.clone(),
                            other => vec![other.clone()],
                        };
                        disable
                            .meta
                            .push((k.as_str().unwrap_or("").to_string(), vals));
                    }
                }
                Some(other) => errors.push(ConfigError {
                    source: "config".into(),
                    key: Some("disable.meta".into()),
                    message: format!(
                        "expected a mapping of field → values, got {}",
                        other.type_name()
                    ),
                }),
            }
            if let Some(m) = dv.as_map() {
                for (k, _) in m {
                    if !matches!(k.as_str(), Some("namespaces" | "entries" | "meta")) {
                        warnings.push(format!(
                            "config: unknown key {:?} in section \"disable\" ignored",
                            k
                        ));
                    }
                }
            }
        }
        if let Some(ws) = layered.raw.get("workspace").and_then(Value::as_map) {
            for (k, _) in ws {
                if k.as_str() != Some("replacements") {
                    warnings.push(format!(
                        "config: unknown key {k:?} in section \"workspace\" ignored"
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        Ok(Config {
            logger: LoggerConfig {
                encoding: s("logger.encoding"),
                mode: s("logger.mode"),
                level: s("logger.level"),
            },
            logmanager: LogManagerConfig {
                propagate_downstream: b("logmanager.propagate_downstream"),
                stream_to_events: b("logmanager.stream_to_events"),
                min_level: i("logmanager.min_level"),
            },
            registry: RegistryConfig {
                enable_history: b("registry.enable_history"),
                history_type,
                history_path: PathBuf::from(s("registry.history_path")),
                event_wait_timeout: d("registry.event_wait_timeout"),
                dependency_resolve_timeout: d("registry.dependency_resolve_timeout"),
                dependency_download_timeout: d("registry.dependency_download_timeout"),
                dispatch_internal_kinds: v
                    .get("registry.dispatch_internal_kinds")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    }),
            },
            supervisor_host: HostPoolConfig {
                buffer_size: i("supervisor.host.buffer_size"),
                worker_count: i("supervisor.host.worker_count"),
            },
            functions_host: HostPoolConfig {
                buffer_size: i("functions.host.buffer_size"),
                worker_count: i("functions.host.worker_count"),
            },
            lua: LuaConfig {
                proto_cache_size: i("lua.proto_cache_size"),
                main_cache_size: i("lua.main_cache_size"),
                cache_enabled: v
                    .get("lua.cache.enabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(type_system),
                cache_dir: PathBuf::from(s("lua.cache.dir")),
                cache_mode: s("lua.cache.mode"),
                cache_compile: b("lua.cache.compile.enabled"),
                cache_typecheck: b("lua.cache.typecheck.enabled"),
                type_system,
                type_system_strict: b("lua.type_system.strict"),
                invalidation_wait_timeout: d("lua.invalidation_wait_timeout"),
            },
            finder: FinderConfig {
                query_cache_size: i("finder.query_cache_size").max(0) as usize,
                regex_cache_size: i("finder.regex_cache_size").max(0) as usize,
            },
            shutdown: ShutdownConfig {
                timeout: d("shutdown.timeout"),
            },
            node_name: v
                .get("relay.node_name")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            strict_security: b("security.strict_mode"),
            overrides,
            disable,
            warnings,
            layered,
        })
    }
}
