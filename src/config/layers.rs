//! Building the configuration from its layers: defaults < `.wippy.yaml` (or `--config`) <
//! environment < `--set`.
//!
//! * **File.** YAML; if present it must hold `version: "1.0"`. Every other top-level key is a
//!   section whose value must be a mapping; sections are flattened to dotted keys
//!   (`cluster.raft.enabled`). `override`, `disable`, `vars`, `profiles` and `workspace` keep
//!   their structure. Strings may use `${env:NAME}` (OS environment; missing → error) and
//!   `${name}` (from `vars:`); `$${` escapes. A missing file is no config (as the original).
//! * **Environment.** `WIPPY_<SECTION>__<KEY>[__<SUBKEY>…]` sets `section.key.subkey` (double
//!   underscore = dot; lowercased), e.g. `WIPPY_REGISTRY__HISTORY_TYPE=sqlite`,
//!   `WIPPY_SHUTDOWN__TIMEOUT=10s`. `WIPPY_NODE_ID` / `WIPPY_RELAY_NODE_NAME` set
//!   `relay.node_name`. Variables without `__` (`WIPPY_TOKEN`, …) are not config.
//! * **`--set section.path=value`.** Values are coerced (`true`/`false`, integers, floats,
//!   else string) then converted to the key's schema type.
//!
//! Every key is checked against [`super::schema`]: a wrong type is an error naming the source
//! (file and line, env variable, or the `--set` argument); an unknown key or section is a
//! warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wippy_rt::Value;

use super::schema::{self, RAW_SECTIONS, coerce_cli};
use crate::loader::lines::{LineMap, line_map};

/// A configuration problem. `Display`: `<source>: <key>: <message>`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    /// Where: `path/.wippy.yaml:12`, `env WIPPY_X__Y`, `--set a.b=c`.
    pub source: String,
    /// The dotted key, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{}: {}: {}", self.source, k, self.message),
            None => write!(f, "{}: {}", self.source, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Inputs of a configuration build.
#[derive(Clone, Debug, Default)]
pub struct ConfigSources {
    /// The config file (`.wippy.yaml` or `--config`); a missing file is ignored.
    pub file: Option<PathBuf>,
    /// Environment variables to consider (usually `std::env::vars()`).
    pub env: Vec<(String, String)>,
    /// `--set section.path=value` arguments.
    pub sets: Vec<String>,
    /// `-o ns:entry:path=value` arguments.
    pub overrides: Vec<String>,
}

impl ConfigSources {
    /// `.wippy.yaml` in `dir` plus the process environment.
    pub fn for_dir(dir: &Path) -> ConfigSources {
        ConfigSources {
            file: Some(dir.join(".wippy.yaml")),
            env: std::env::vars().collect(),
            ..Default::default()
        }
    }
}

/// The merged, validated layers.
#[derive(Clone, Debug, Default)]
pub struct Layered {
    /// Flat `dotted.key → value`, already converted to schema types.
    pub values: BTreeMap<String, Value>,
    /// Raw special sections (`override`, `disable`, `vars`, `profiles`, `workspace`).
    pub raw: BTreeMap<String, Value>,
    /// Where each key's value came from (for diagnostics).
    pub origin: BTreeMap<String, String>,
    /// `-o` overrides in order (`ns:entry:path`, value).
    pub cli_overrides: Vec<(String, Value)>,
    /// Warnings (unknown keys/sections).
    pub warnings: Vec<String>,
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Map(m) if !m.is_empty() => {
            for (k, x) in m {
                let k = match k {
                    Value::Str(_) => k.as_str().unwrap_or("").to_string(),
                    other => format!("{other:?}"),
                };
                flatten(&format!("{prefix}.{k}"), x, out);
            }
        }
        _ => out.push((prefix.to_string(), v.clone())),
    }
}

fn interpolate(
    s: &str,
    vars: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if !s.contains("${") {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if i > 0 && rest.as_bytes()[i - 1] == b'$' {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| format!("unterminated placeholder in {s:?}"))?
            + i;
        let name = &rest[i + 2..end];
        let value = if let Some(var) = name.strip_prefix("env:") {
            env(var).ok_or_else(|| format!("environment variable {var} is not set"))?
        } else {
            match vars.get(name) {
                Some(Value::Str(b)) => b.to_string_lossy().into_owned(),
                Some(Value::Int(i)) => i.to_string(),
                Some(Value::Float(f)) => f.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => {
                    return Err(format!(
                        "unknown variable ${{{name}}} (define it under vars:)"
                    ));
                }
            }
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn interpolate_tree(
    v: &mut Value,
    vars: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    match v {
        Value::Str(_) => {
            let s = v.as_str().unwrap_or("").to_string();
            if s.contains("${") {
                *v = Value::from(interpolate(&s, vars, env)?);
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .try_for_each(|x| interpolate_tree(x, vars, env))?,
        Value::Map(m) => m
            .iter_mut()
            .try_for_each(|(_, x)| interpolate_tree(x, vars, env))?,
        _ => {}
    }
    Ok(())
}

impl Layered {
    fn set(&mut self, key: &str, raw: &Value, source: String, errors: &mut Vec<ConfigError>) {
        let section = key.split('.').next().unwrap_or("");
        match schema::lookup(key) {
            Some((_, ty, _)) => match schema::convert(*ty, raw) {
                Ok(v) => {
                    self.values.insert(key.to_string(), v);
                    self.origin.insert(key.to_string(), source);
                }
                Err(message) => errors.push(ConfigError {
                    source,
                    key: Some(key.to_string()),
                    message,
                }),
            },
            None if schema::known_section(section) => {
                self.warnings.push(format!(
                    "{source}: unknown key {key:?} in section {section:?} ignored"
                ));
            }
            None => self
                .warnings
                .push(format!("{source}: unknown section {section:?} ignored")),
        }
    }

    /// Build from the sources; all errors are collected.
    pub fn build(src: &ConfigSources) -> Result<Layered, Vec<ConfigError>> {
        let mut me = Layered::default();
        let mut errors = Vec::new();
        for (key, ty, default) in schema::SCHEMA {
            if let Some(d) = default
                && let Ok(v) = schema::convert(*ty, &coerce_cli(d))
            {
                me.values.insert(key.to_string(), v);
                me.origin.insert(key.to_string(), "default".into());
            }
        }
        let env_lookup = |name: &str| {
            src.env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if let Some(path) = &src.file {
            me.load_file(path, &env_lookup, &mut errors);
        }
        for (name, value) in &src.env {
            let key = if name == "WIPPY_NODE_ID" || name == "WIPPY_RELAY_NODE_NAME" {
                "relay.node_name".to_string()
            } else if let Some(rest) = name.strip_prefix("WIPPY_").filter(|r| r.contains("__")) {
                rest.split("__")
                    .map(str::to_ascii_lowercase)
                    .collect::<Vec<_>>()
                    .join(".")
            } else {
                continue;
            };
            me.set(&key, &coerce_cli(value), format!("env {name}"), &mut errors);
        }
        for arg in &src.sets {
            match arg.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() && k.contains('.') => {
                    me.set(
                        k.trim(),
                        &coerce_cli(v),
                        format!("--set {arg}"),
                        &mut errors,
                    );
                }
                _ => errors.push(ConfigError {
                    source: format!("--set {arg}"),
                    key: None,
                    message: "expected section.path=value".into(),
                }),
            }
        }
        for arg in &src.overrides {
            match arg.split_once('=') {
                Some((k, v)) if k.splitn(3, ':').count() == 3 => {
                    me.cli_overrides.push((k.to_string(), coerce_cli(v)))
                }
                _ => errors.push(ConfigError {
                    source: format!("-o {arg}"),
                    key: None,
                    message: "expected namespace:entry:path=value".into(),
                }),
            }
        }
        if errors.is_empty() {
            Ok(me)
        } else {
            Err(errors)
        }
    }

    fn load_file(
        &mut self,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        errors: &mut Vec<ConfigError>,
    ) {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                errors.push(ConfigError {
                    source: path.display().to_string(),
                    key: None,
                    message: e.to_string(),
                });
                return;
            }
        };
        let file = path.display().to_string();
        let doc: Value = match serde_yaml::from_slice(&text) {
            Ok(v) => v,
            Err(e) => {
                let source = match e.location() {
                    Some(l) => format!("{file}:{}", l.line()),
                    None => file,
                };
                errors.push(ConfigError {
                    source,
                    key: None,
                    message: format!("invalid YAML: {e}"),
                });
                return;
            }
        };
        let lines = line_map(&text);
        let at = |keys: &[&str]| match lines.line(keys) {
            Some(l) => format!("{file}:{l}"),
            None => file.clone(),
        };
        let Some(map) = doc.as_map() else {
            if !doc.is_nil() {
                errors.push(ConfigError {
                    source: file.clone(),
                    key: None,
                    message: "config must be a mapping".into(),
                });
            } else {
                errors.push(ConfigError {
                    source: file.clone(),
                    key: Some("version".into()),
                    message: "version is required and must be \"1.0\"".into(),
                });
            }
            return;
        };
        match doc.get("version") {
            Some(v) if v.as_str() == Some("1.0") || v.as_f64() == Some(1.0) => {}
            Some(v) => errors.push(ConfigError {
                source: at(&["version"]),
                key: Some("version".into()),
                message: format!("unsupported config version {v:?} (expected \"1.0\")"),
            }),
            None => errors.push(ConfigError {
                source: file.clone(),
                key: Some("version".into()),
                message: "version is required and must be \"1.0\"".into(),
            }),
        }
        let vars = doc.get("vars").cloned().unwrap_or(Value::Nil);
        for (k, v) in map {
            let Some(section) = k.as_str() else { continue };
            if section == "version" {
                continue;
            }
            let mut v = v.clone();
            if let Err(message) = interpolate_tree(&mut v, &vars, env) {
                errors.push(ConfigError {
                    source: at(&[section]),
                    key: Some(section.to_string()),
                    message,
                });
                continue;
            }
            if RAW_SECTIONS.contains(&section) {
                self.raw.insert(section.to_string(), v);
                continue;
            }
            match &v {
                Value::Map(_) => {}
                Value::Nil => continue,
                other => {
                    errors.push(ConfigError {
                        source: at(&[section]),
                        key: Some(section.to_string()),
                        message: format!("section must be a mapping, got {}", other.type_name()),
                    });
                    continue;
                }
            }
            let mut flat = Vec::new();
            flatten(section, &v, &mut flat);
            for (key, value) in flat {
                let parts: Vec<&str> = key.split('.').collect();
                self.set(&key, &value, at(&parts), errors);
            }
        }
    }
}

/// Helper for the line lookups of other modules.
pub fn file_line(lines: &LineMap, file: &str, keys: &[&str]) -> String {
    match lines.line(keys) {
        Some(l) => format!("{file}:{l}"),
        None => file.to_string(),
    }
}
