//! The normalisation pipeline (spec `runtime-internals.md` §10.4, `lua-api.md` §1.8):
//! `override → disable → link → override`, then optionally `bytecode` and `embedfs`
//! (pack flows). A stage error aborts with the stage name.
//!
//! * **override** — `namespace:entry:path` (split at the first two colons) → value. `kind` /
//!   `.kind` retypes (non-empty string), `meta.x.y` / `data.x.y` set nested values, a bare
//!   path sets inside data. A key naming no loaded entry is an error; all errors are
//!   collected. The stage runs twice, so targeting a disabled entry fails in the second run.
//! * **disable** — `namespaces` (wildcard patterns on the namespace), `entries` (patterns on
//!   the id; a pattern with `:` matches namespace and name separately, so `app.api:*` works),
//!   `meta` (field → values; any equal value, or list element, excludes).
//! * **link** — resolves `ns.requirement` entries from `ns.dependency` parameters and writes
//!   the value into each target (`path` ending in `+=` appends to a list).
//! * **bytecode** — per-kind hooks registered by the Lua engine
//!   ([`Pipeline::register_bytecode`]); runs only when enabled.
//! * **embedfs** — `fs.directory` entries matching the patterns get their files inlined and
//!   become `fs.embed`.

use std::path::{Path, PathBuf};

use wippy_rt::wildcard::Pattern;
use wippy_rt::{Bytes, Error, Value};

use super::definition::LoadedEntry;
use super::diag::Diagnostic;
use crate::config::{Config, DisableConfig, Override};
use crate::registry::{Entry, Id};

/// A per-entry transform (the bytecode hook).
pub type EntryHook = Box<dyn Fn(&mut Entry) -> Result<(), Error> + Send + Sync>;

/// A failed stage.
#[derive(Clone, Debug, PartialEq)]
pub struct StageError {
    /// `override`, `disable`, `link`, `bytecode`, `embedfs`.
    pub stage: &'static str,
    /// Every problem found.
    pub errors: Vec<Diagnostic>,
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pipeline stage {} failed: ", self.stage)?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StageError {}

/// The configured pipeline.
#[derive(Default)]
pub struct Pipeline {
    bytecode: Vec<(Pattern, EntryHook)>,
    /// Run the bytecode stage.
    pub run_bytecode: bool,
    /// `fs.directory` id patterns to embed (empty = stage off).
    pub embed_patterns: Vec<String>,
    /// Base for relative `fs.directory` paths in the embed stage.
    pub base_dir: PathBuf,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field(
                "bytecode",
                &self
                    .bytecode
                    .iter()
                    .map(|(p, _)| p.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("run_bytecode", &self.run_bytecode)
            .field("embed_patterns", &self.embed_patterns)
            .finish()
    }
}

impl Pipeline {
    /// A pipeline with only the runtime stages.
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// Register a bytecode hook for kinds matching `kind_pattern` (e.g. `function.lua`).
    pub fn register_bytecode(&mut self, kind_pattern: &str, hook: EntryHook) {
        self.bytecode.push((Pattern::new(kind_pattern), hook));
    }

    /// Run all stages over `entries`. Warnings go to `diags`.
    pub fn run(
        &self,
        entries: &mut Vec<LoadedEntry>,
        cfg: &Config,
        diags: &mut Vec<Diagnostic>,
    ) -> Result<(), StageError> {
        apply_overrides(entries, &cfg.overrides)?;
        apply_disable(entries, &cfg.disable);
        link(entries, diags)?;
        apply_overrides(entries, &cfg.overrides)?;
        if self.run_bytecode {
            let mut errors = Vec::new();
            for le in entries.iter_mut() {
                for (p, hook) in &self.bytecode {
                    if p.matches(&le.entry.kind)
                        && let Err(e) = hook(&mut le.entry)
                    {
                        errors.push(at(le, e.to_string()));
                    }
                }
            }
            if !errors.is_empty() {
                return Err(StageError {
                    stage: "bytecode",
                    errors,
                });
            }
        }
        if !self.embed_patterns.is_empty() {
            self.embed(entries)?;
        }
        Ok(())
    }

    fn embed(&self, entries: &mut [LoadedEntry]) -> Result<(), StageError> {
        let pats: Vec<Pattern> = self
            .embed_patterns
            .iter()
            .map(|p| Pattern::new(p))
            .collect();
        let mut errors = Vec::new();
        for le in entries.iter_mut() {
            if le.entry.kind != "fs.directory"
                || !pats.iter().any(|p| id_matches(p.as_str(), &le.entry.id))
            {
                continue;
            }
            let Some(dir) = le.entry.data.get("directory").and_then(Value::as_str) else {
                errors.push(at(le, "fs.directory has no directory".into()));
                continue;
            };
            let root = if Path::new(dir).is_absolute() {
                PathBuf::from(dir)
            } else {
                self.base_dir.join(dir)
            };
            let mut files = Vec::new();
            if let Err(e) = collect_files(&root, &root, &mut files) {
                errors.push(at(le, format!("cannot embed {}: {e}", root.display())));
                continue;
            }
            le.entry.kind = "fs.embed".into();
            le.entry.data.insert("files", Value::Map(files));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(StageError {
                stage: "embedfs",
                errors,
            })
        }
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(Value, Value)>) -> std::io::Result<()> {
    let mut items: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).collect();
    items.sort_by_key(|e| e.file_name());
    for e in items {
        let p = e.path();
        if e.file_type()?.is_dir() {
            collect_files(root, &p, out)?;
        } else {
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((
                Value::from(rel),
                Value::Str(Bytes::from(std::fs::read(&p)?)),
            ));
        }
    }
    Ok(())
}

fn at(le: &LoadedEntry, msg: String) -> Diagnostic {
    Diagnostic::error(msg)
        .in_file(&le.file)
        .at_line(le.line)
        .for_entry(le.entry.id.to_string())
}

/// Split `ns:entry:path`.
pub fn split_override_key(key: &str) -> Option<(Id, &str)> {
    let mut it = key.splitn(3, ':');
    let (ns, name, path) = (it.next()?, it.next()?, it.next()?);
    if ns.is_empty() || name.is_empty() || path.is_empty() {
        return None;
    }
    Some((Id::new(ns, name), path))
}

/// Set `value` at a dotted `path` inside `root`, creating maps on the way. A final segment
/// ending in `+=` appends to a list.
pub fn set_path(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let (path, append) = match path.strip_suffix("+=") {
        Some(p) => (p, true),
        None => (path, false),
    };
    let segs: Vec<&str> = path.split('.').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(format!("invalid path {path:?}"));
    }
    let mut cur = root;
    for (i, seg) in segs.iter().enumerate() {
        if cur.is_nil() {
            *cur = Value::Map(Vec::new());
        }
        if cur.as_map().is_none() {
            return Err(format!(
                "cannot set {path}: {} is not a table",
                segs[..i].join(".")
            ));
        }
        if i == segs.len() - 1 {
            if append {
                match cur.get_mut(seg) {
                    Some(Value::Array(a)) => a.push(value),
                    Some(Value::Nil) | None => {
                        cur.insert(seg, Value::Array(vec![value]));
                    }
                    Some(other) => {
                        return Err(format!(
                            "cannot append to {path}: it is a {}",
                            other.type_name()
                        ));
                    }
                }
            } else {
                cur.insert(seg, value);
            }
            return Ok(());
        }
        if cur.get(seg).is_none() {
            cur.insert(seg, Value::Map(Vec::new()));
        }
        cur = cur.get_mut(seg).expect("just inserted");
    }
    Ok(())
}

/// Apply one override to an entry.
pub fn apply_override(entry: &mut Entry, path: &str, value: &Value) -> Result<(), String> {
    match path {
        "kind" | ".kind" => match value.as_str() {
            Some(k) if !k.is_empty() => {
                entry.kind = k.to_string();
                Ok(())
            }
            _ => Err("kind override must be a non-empty string".into()),
        },
        _ => {
            if let Some(p) = path.strip_prefix("meta.") {
                set_path(&mut entry.meta, p, value.clone())
            } else {
                let p = path.strip_prefix("data.").unwrap_or(path);
                set_path(&mut entry.data, p, value.clone())
            }
        }
    }
}

fn apply_overrides(entries: &mut [LoadedEntry], overrides: &[Override]) -> Result<(), StageError> {
    let mut errors = Vec::new();
    for ov in overrides {
        let Some((id, path)) = split_override_key(&ov.key) else {
            errors.push(Diagnostic::error(format!(
                "{}: invalid override key {:?} (expected namespace:entry:path)",
                ov.source, ov.key
            )));
            continue;
        };
        let Some(le) = entries.iter_mut().rev().find(|le| le.entry.id == id) else {
            errors.push(Diagnostic::error(format!(
                "{}: override {:?}: entry {id} not found",
                ov.source, ov.key
            )));
            continue;
        };
        if let Err(msg) = apply_override(&mut le.entry, path, &ov.value) {
            errors.push(at(le, format!("override {:?}: {msg}", ov.key)));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StageError {
            stage: "override",
            errors,
        })
    }
}

/// Entry-id pattern match: with `:` namespace and name are matched separately, else the
/// whole id string is matched.
fn id_matches(pattern: &str, id: &Id) -> bool {
    match pattern.split_once(':') {
        Some((nsp, namep)) => Pattern::new(nsp).matches(id.ns()) && name_matches(namep, id.name()),
        None => Pattern::new(pattern).matches(&id.to_string()),
    }
}

/// Name part of an entry pattern: `*`/`**` match any name; a `*` inside a segment
/// (`disabled_*`, `*_test`) is a simple glob; otherwise the §8.3 language.
fn name_matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" || pattern == "**" {
        return true;
    }
    let p = Pattern::new(pattern);
    if p.is_exact()
        && let Some((pre, suf)) = pattern.split_once('*')
    {
        return name.len() >= pre.len() + suf.len() && name.starts_with(pre) && name.ends_with(suf);
    }
    p.matches(name)
}

/// Is `entry` excluded by the disable rules?
pub fn is_disabled(entry: &Entry, d: &DisableConfig) -> bool {
    d.namespaces
        .iter()
        .any(|p| Pattern::new(p).matches(entry.id.ns()))
        || d.entries.iter().any(|p| id_matches(p, &entry.id))
        || d.meta
            .iter()
            .any(|(field, values)| match entry.meta(field) {
                Some(Value::Array(have)) => have.iter().any(|h| values.contains(h)),
                Some(v) => values.contains(v),
                None => false,
            })
}

fn apply_disable(entries: &mut Vec<LoadedEntry>, d: &DisableConfig) {
    if d.namespaces.is_empty() && d.entries.is_empty() && d.meta.is_empty() {
        return;
    }
    entries.retain(|le| !is_disabled(&le.entry, d));
}

fn link(entries: &mut [LoadedEntry], diags: &mut Vec<Diagnostic>) -> Result<(), StageError> {
    let deps: Vec<(String, Vec<(String, Value)>)> = entries
        .iter()
        .filter(|le| le.entry.kind == "ns.dependency")
        .map(|le| {
            let component = le
                .entry
                .data
                .get("component")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let params = le
                .entry
                .data
                .get("parameters")
                .and_then(Value::as_array)
                .unwrap_or(&[])
                .iter()
                .filter_map(|p| {
                    Some((
                        p.get("name")?.as_str()?.to_string(),
                        p.get("value").cloned().unwrap_or(Value::Nil),
                    ))
                })
                .collect();
            (component, params)
        })
        .collect();
    let reqs: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, le)| le.entry.kind == "ns.requirement")
        .map(|(i, _)| i)
        .collect();
    let mut errors = Vec::new();
    for ri in reqs {
        let req = entries[ri].entry.clone();
        let full = req.id.to_string();
        let module = req
            .meta("module")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut values: Vec<Value> = Vec::new();
        for (component, params) in &deps {
            let module_ns = component.replace('/', ".");
            for (name, value) in params {
                let hit = *name == full
                    || (name == req.id.name()
                        && (module_ns == req.id.ns()
                            || module.as_deref() == Some(component.as_str())));
                if hit && !values.contains(value) {
                    values.push(value.clone());
                }
            }
        }
        let value = match values.len() {
            0 => match req.data.get("default") {
                Some(d) => d.clone(),
                None => {
                    diags.push(
                        at(
                            &entries[ri],
                            "unresolved requirement: no dependency parameter and no default".into(),
                        )
                        .with_severity(super::diag::Severity::Warning),
                    );
                    continue;
                }
            },
            1 => values.pop().expect("one"),
            _ => {
                errors.push(at(
                    &entries[ri],
                    format!("conflicting values for requirement {full}: {values:?}"),
                ));
                continue;
            }
        };
        for t in req
            .data
            .get("targets")
            .and_then(Value::as_array)
            .unwrap_or(&[])
        {
            let (Some(target), Some(path)) = (
                t.get("entry").and_then(Value::as_str),
                t.get("path").and_then(Value::as_str),
            ) else {
                errors.push(at(&entries[ri], "target needs entry and path".into()));
                continue;
            };
            let tid = Id::parse_relative(target, req.id.ns());
            match entries.iter_mut().rev().find(|le| le.entry.id == tid) {
                Some(le) => {
                    if let Err(m) = apply_override(&mut le.entry, path, &value) {
                        errors.push(at(le, format!("requirement {full}: {m}")));
                    }
                }
                None => errors.push(at(
                    &entries[ri],
                    format!("requirement target {tid} not found"),
                )),
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StageError {
            stage: "link",
            errors,
        })
    }
}
