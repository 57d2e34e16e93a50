//! Building the configuration from its layers: defaults < config files < `--profile` overlays
//! < environment < `--set`.
//!
//! * **Files.** `.wippy.yaml` (a missing file is no config, as the original) or the `--config`
//!   files, merged left to right leaf by leaf (each named file must exist). YAML; each must hold
//!   `version: "1.0"`. Every other top-level key is a section whose value must be a mapping;
//!   sections are flattened to dotted keys (`cluster.raft.enabled`). `override`, `disable`,
//!   `vars`, `profiles` and `workspace` keep their structure. Strings may use `${env:NAME}`
//!   (OS environment, `NAME` = `[A-Za-z_][A-Za-z0-9_]*`; missing → "missing OS environment
//!   variable") and `${name}` / `${vars.name}` (from the merged `vars:`; a value that is exactly
//!   one such reference keeps the variable's type); `$${` escapes.
//! * **Profiles.** `profiles: {<name>: {<section>: {…}}}`; each `--profile` (in order) overlays
//!   its sections leaf by leaf. In `disable`, `namespaces`/`entries` may be given as
//!   `{add: […], remove: […]}` to edit the list instead of replacing it. An unknown profile
//!   is an error (`profile "x" not found`).
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
    /// The default config file (`.wippy.yaml`); a missing file is no configuration. Ignored
    /// when [`files`](Self::files) is not empty.
    pub file: Option<PathBuf>,
    /// Explicit `--config` files, merged left to right (later files override matching leaves
    /// and keep everything else); every one of them must exist.
    pub files: Vec<PathBuf>,
    /// `--profile` names, applied in order after the files.
    pub profiles: Vec<String>,
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

/// True for an OS environment variable name (`[A-Za-z_][A-Za-z0-9_]*`), the only names a
/// `${env:NAME}` placeholder reads; anything else is looked up in `vars:` (and fails there).
fn is_env_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Resolve one `${…}` reference.
fn lookup(name: &str, vars: &Value, env: &dyn Fn(&str) -> Option<String>) -> Result<Value, String> {
    if let Some(var) = name.strip_prefix("env:").filter(|v| is_env_name(v)) {
        return env(var)
            .map(Value::from)
            .ok_or_else(|| format!("missing OS environment variable: {var}"));
    }
    let name = name.trim();
    if name.starts_with("env.") {
        return Err(format!(
            "OS environment interpolation {name:?} is not supported; use ${{env:NAME}}"
        ));
    }
    let name = name.strip_prefix("vars.").unwrap_or(name);
    if name.is_empty() {
        return Err("empty variable reference".into());
    }
    vars.get(name)
        .or_else(|| vars.get_path(name))
        .cloned()
        .ok_or_else(|| format!("variable {name:?} not found (define it under vars:)"))
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Str(b) => b.to_string_lossy().into_owned(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Nil => String::new(),
        other => format!("{other:?}"),
    }
}

/// Interpolate one string. A value that is exactly one `${name}` vars reference keeps the
/// variable's type; `${env:NAME}` and mixed text always give a string; `$${` is a literal `${`.
fn interpolate(
    s: &str,
    vars: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, String> {
    if !s.contains("${") {
        return Ok(Value::from(s));
    }
    if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
        && !name.contains('}')
        && !name.contains("${")
        && !name.starts_with("env:")
    {
        return lookup(name, vars, env);
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
        out.push_str(&scalar_text(&lookup(&rest[i + 2..end], vars, env)?));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(Value::from(out))
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
                *v = interpolate(&s, vars, env)?;
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

/// Merge `over` into `base` leaf by leaf: mappings merge by key, anything else replaces.
fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Map(b), Value::Map(o)) => {
            for (k, v) in o {
                match b.iter_mut().find(|(bk, _)| bk == k) {
                    Some((_, bv)) => deep_merge(bv, v),
                    None => b.push((k.clone(), v.clone())),
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A parsed config file.
struct FileDoc {
    file: String,
    lines: LineMap,
    doc: Value,
}

impl FileDoc {
    fn at(&self, keys: &[&str]) -> String {
        file_line(&self.lines, &self.file, keys)
    }
}

/// `disable` overlay of a profile: `namespaces`/`entries` given as `{add: […], remove: […]}`
/// edit the current list; any other key replaces.
fn apply_disable_overlay(dst: &mut Value, overlay: &Value) -> Result<(), String> {
    if !matches!(dst, Value::Map(_)) {
        *dst = Value::Map(Vec::new());
    }
    let Some(pairs) = overlay.as_map() else {
        return Err(format!(
            "disable must be a mapping, got {}",
            overlay.type_name()
        ));
    };
    for (k, v) in pairs {
        let key = k.as_str().unwrap_or("");
        let ops = matches!(key, "namespaces" | "entries")
            && v.as_map().is_some_and(|m| {
                m.iter()
                    .all(|(o, _)| matches!(o.as_str(), Some("add" | "remove")))
            });
        if !ops {
            dst.insert(key, v.clone());
            continue;
        }
        let strings = |x: Option<&Value>, what: &str| -> Result<Vec<String>, String> {
            match x {
                None | Some(Value::Nil) => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_string).ok_or_else(|| {
                            format!(
                                "invalid {what}: expected string item, got {}",
                                i.type_name()
                            )
                        })
                    })
                    .collect(),
                Some(other) => Err(format!(
                    "invalid {what}: expected string list, got {}",
                    other.type_name()
                )),
            }
        };
        let mut list = strings(dst.get(key), &format!("disable.{key}"))?;
        for item in strings(v.get("add"), &format!("disable.{key}.add"))? {
            if !list.contains(&item) {
                list.push(item);
            }
        }
        let remove = strings(v.get("remove"), &format!("disable.{key}.remove"))?;
        list.retain(|i| !remove.contains(i));
        dst.insert(
            key,
            Value::Array(list.into_iter().map(Value::from).collect()),
        );
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

    /// Set one section (a mapping) of the file or a profile: raw sections merge into
    /// [`raw`](Self::raw), the others are flattened and validated leaf by leaf.
    fn set_section(
        &mut self,
        section: &str,
        v: &Value,
        at: &dyn Fn(&[&str]) -> String,
        errors: &mut Vec<ConfigError>,
    ) {
        if RAW_SECTIONS.contains(&section) {
            let slot = self.raw.entry(section.to_string()).or_insert(Value::Nil);
            if slot.is_nil() {
                *slot = v.clone();
            } else {
                deep_merge(slot, v);
            }
            return;
        }
        match v {
            Value::Map(_) => {}
            Value::Nil => return,
            other => {
                errors.push(ConfigError {
                    source: at(&[section]),
                    key: Some(section.to_string()),
                    message: format!("section must be a mapping, got {}", other.type_name()),
                });
                return;
            }
        }
        let mut flat = Vec::new();
        flatten(section, v, &mut flat);
        for (key, value) in flat {
            let parts: Vec<&str> = key.split('.').collect();
            self.set(&key, &value, at(&parts), errors);
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
        let mut docs = Vec::new();
        if src.files.is_empty() {
            if let Some(path) = &src.file
                && let Some(d) = parse_file(path, false, &mut errors)
            {
                docs.push(d);
            }
        } else {
            for path in &src.files {
                if let Some(d) = parse_file(path, true, &mut errors) {
                    docs.push(d);
                }
            }
        }
        // `vars` of every file (later files win), then of the selected profiles; `${env:…}`
        // inside them is resolved first.
        let no_vars = Value::Map(Vec::new());
        let mut vars = Value::Map(Vec::new());
        let mut profiles = Value::Map(Vec::new());
        for d in &docs {
            if let Some(v) = d.doc.get("vars") {
                let mut v = v.clone();
                match interpolate_tree(&mut v, &no_vars, &env_lookup) {
                    Ok(()) => deep_merge(&mut vars, &v),
                    Err(message) => errors.push(ConfigError {
                        source: d.at(&["vars"]),
                        key: Some("vars".into()),
                        message,
                    }),
                }
            }
            if let Some(p) = d.doc.get("profiles") {
                match p {
                    Value::Map(_) => deep_merge(&mut profiles, p),
                    Value::Nil => {}
                    other => errors.push(ConfigError {
                        source: d.at(&["profiles"]),
                        key: Some("profiles".into()),
                        message: format!(
                            "section must be a mapping of profile name → sections, got {}",
                            other.type_name()
                        ),
                    }),
                }
            }
        }
        for name in src.profiles.iter().map(|n| n.trim()) {
            if let Some(v) = profiles.get(name).and_then(|p| p.get("vars")) {
                let mut v = v.clone();
                if interpolate_tree(&mut v, &no_vars, &env_lookup).is_ok() {
                    deep_merge(&mut vars, &v);
                }
            }
        }
        for d in &docs {
            me.apply_file(d, &vars, &env_lookup, &mut errors);
        }
        me.apply_profiles(&profiles, &src.profiles, &vars, &env_lookup, &mut errors);
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

    fn apply_file(
        &mut self,
        d: &FileDoc,
        vars: &Value,
        env: &dyn Fn(&str) -> Option<String>,
        errors: &mut Vec<ConfigError>,
    ) {
        let Some(map) = d.doc.as_map() else { return };
        for (k, v) in map {
            let Some(section) = k.as_str() else { continue };
            if section == "version" || section == "profiles" {
                continue;
            }
            let mut v = v.clone();
            if let Err(message) = interpolate_tree(&mut v, vars, env) {
                errors.push(ConfigError {
                    source: d.at(&[section]),
                    key: Some(section.to_string()),
                    message,
                });
                continue;
            }
            self.set_section(section, &v, &|keys| d.at(keys), errors);
        }
    }

    /// Overlay the selected profiles in order (`profiles.<name>.<section>…`).
    fn apply_profiles(
        &mut self,
        profiles: &Value,
        selected: &[String],
        vars: &Value,
        env: &dyn Fn(&str) -> Option<String>,
        errors: &mut Vec<ConfigError>,
    ) {
        if profiles.as_map().is_some_and(|m| !m.is_empty()) {
            self.raw.insert("profiles".into(), profiles.clone());
        }
        for name in selected.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            let source = format!("--profile {name}");
            let Some(profile) = profiles.get(name) else {
                errors.push(ConfigError {
                    source,
                    key: None,
                    message: format!("profile {name:?} not found"),
                });
                continue;
            };
            let Some(sections) = profile.as_map() else {
                if !profile.is_nil() {
                    errors.push(ConfigError {
                        source,
                        key: Some(format!("profiles.{name}")),
                        message: format!(
                            "a profile must be a mapping of sections, got {}",
                            profile.type_name()
                        ),
                    });
                }
                continue;
            };
            for (k, v) in sections {
                let Some(section) = k.as_str() else { continue };
                let mut v = v.clone();
                if let Err(message) = interpolate_tree(&mut v, vars, env) {
                    errors.push(ConfigError {
                        source: source.clone(),
                        key: Some(format!("profiles.{name}.{section}")),
                        message: format!("apply profile {name:?}: {message}"),
                    });
                    continue;
                }
                if section == "disable" {
                    let slot = self.raw.entry("disable".into()).or_insert(Value::Nil);
                    if let Err(message) = apply_disable_overlay(slot, &v) {
                        errors.push(ConfigError {
                            source: source.clone(),
                            key: Some(format!("profiles.{name}.disable")),
                            message: format!("apply profile {name:?}: {message}"),
                        });
                    }
                    continue;
                }
                let src = source.clone();
                self.set_section(section, &v, &|_| src.clone(), errors);
            }
        }
    }
}

/// Read and check one config file: YAML, a mapping, `version: "1.0"`. A missing optional file
/// is no configuration; a missing required one (named with `--config`) is an error.
fn parse_file(path: &Path, required: bool, errors: &mut Vec<ConfigError>) -> Option<FileDoc> {
    let file = path.display().to_string();
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return None,
        Err(e) => {
            errors.push(ConfigError {
                source: file,
                key: None,
                message: format!("failed to read config file: {e}"),
            });
            return None;
        }
    };
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
                message: format!("failed to parse YAML: {e}"),
            });
            return None;
        }
    };
    let d = FileDoc {
        file,
        lines: line_map(&text),
        doc,
    };
    if d.doc.as_map().is_none() {
        if !d.doc.is_nil() {
            errors.push(ConfigError {
                source: d.file.clone(),
                key: None,
                message: "config must be a mapping".into(),
            });
        } else {
            errors.push(ConfigError {
                source: d.file.clone(),
                key: Some("version".into()),
                message: "missing version field (must be \"1.0\")".into(),
            });
        }
        return None;
    }
    match d.doc.get("version") {
        Some(v) if v.as_str() == Some("1.0") || v.as_f64() == Some(1.0) => {}
        Some(v) => {
            errors.push(ConfigError {
                source: d.at(&["version"]),
                key: Some("version".into()),
                message: format!("unsupported version: {} (expected \"1.0\")", scalar_text(v)),
            });
            return None;
        }
        None => {
            errors.push(ConfigError {
                source: d.file.clone(),
                key: Some("version".into()),
                message: "missing version field (must be \"1.0\")".into(),
            });
            return None;
        }
    }
    Some(d)
}

/// Helper for the line lookups of other modules.
pub fn file_line(lines: &LineMap, file: &str, keys: &[&str]) -> String {
    match lines.line(keys) {
        Some(l) => format!("{file}:{l}"),
        None => file.to_string(),
    }
}
