//! One definition file → entries (spec `lua-api.md` §1.4, `runtime-internals.md` §10.3).
//!
//! Forms:
//! * **batch** — `namespace`, optional `version`, optional file-level `meta` (merged under
//!   every entry's meta, entry keys win), `entries: [...]`;
//! * **single entry** — `namespace` + `name` + `kind` at top level; every other top-level
//!   key except `namespace, name, kind, meta, version, requirements, entries` is data. Used
//!   only when `entries` is absent or empty.
//!
//! In an entry, `name`, `kind`, `meta` and `data` are structural; if `data:` is present its
//! value is the data (any type) and sibling keys are dropped, else all other keys form the
//! data map. A file without a non-blank string `namespace` is not a Wippy file and is skipped
//! silently. Any error (syntax, interpolation, validation) rejects the **whole file**; the
//! caller logs it and goes on (as the original does).
//!
//! Errors carry the file, the 1-based line (serde's location for syntax errors, the
//! [`LineMap`] for everything else) and the entry id.

use std::path::{Path, PathBuf};

use wippy_rt::Value;

use super::diag::Diagnostic;
use super::interpolate::{InterpolateCtx, interpolate};
use super::lines::{LineMap, line_map};
use crate::registry::{Entry, Id};

/// An entry with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedEntry {
    /// The entry.
    pub entry: Entry,
    /// The definition file (as given to the parser).
    pub file: PathBuf,
    /// Line where the entry starts.
    pub line: Option<u32>,
}

/// Top-level keys that never become single-entry data.
const SINGLE_RESERVED: &[&str] = &[
    "namespace",
    "name",
    "kind",
    "meta",
    "version",
    "requirements",
    "entries",
];

/// Document format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.yaml` / `.yml`.
    Yaml,
    /// `.json`.
    Json,
}

impl Format {
    /// By extension.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Parse one file's text. `file` is used in messages; `ctx` resolves `file://`.
/// `Ok(None)` = not a Wippy file (no namespace).
pub fn parse_definition(
    text: &[u8],
    format: Format,
    file: &Path,
    ctx: &InterpolateCtx<'_>,
) -> Result<Option<Vec<LoadedEntry>>, Diagnostic> {
    let err = |line: Option<u32>, msg: String| Diagnostic::error(msg).in_file(file).at_line(line);
    let doc: Value = match format {
        Format::Yaml => serde_yaml::from_slice(text).map_err(|e| {
            let line = e.location().map(|l| l.line() as u32);
            err(line, format!("invalid YAML: {e}"))
        })?,
        Format::Json => serde_json::from_slice(text).map_err(|e| {
            err(
                Some(e.line() as u32).filter(|l| *l > 0),
                format!("invalid JSON: {e}"),
            )
        })?,
    };
    let Some(map) = doc.as_map() else {
        return Ok(None);
    };
    let ns = match doc.get("namespace") {
        None | Some(Value::Nil) => return Ok(None),
        Some(v) => match v.as_str() {
            Some(s) if s.trim().is_empty() => return Ok(None),
            Some(s) => s.to_string(),
            None => {
                let lines = line_map(text);
                return Err(err(
                    lines.line(&["namespace"]),
                    format!("namespace must be a string, got {}", v.type_name()),
                ));
            }
        },
    };
    let lines = line_map(text);
    let at = |path: &[&str]| lines.line(path);

    let mut file_meta = doc.get("meta").cloned().unwrap_or(Value::Nil);
    match &file_meta {
        Value::Nil | Value::Map(_) => {}
        other => {
            return Err(err(
                at(&["meta"]),
                format!("meta must be a mapping, got {}", other.type_name()),
            ));
        }
    }
    interp(&mut file_meta, ctx, &lines, file, None, at(&["meta"]))?;

    let entries_v = doc.get("entries");
    let batch = match entries_v {
        None | Some(Value::Nil) => None,
        Some(Value::Array(a)) => Some(a.as_slice()),
        Some(other) => {
            return Err(err(
                at(&["entries"]),
                format!("entries must be a list, got {}", other.type_name()),
            ));
        }
    };
    let mut out = Vec::new();
    match batch {
        Some(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                let idx = i.to_string();
                let line = at(&["entries", &idx]);
                out.push(build_entry(
                    item, i, &ns, &file_meta, ctx, &lines, file, line,
                )?);
            }
        }
        _ => {
            let has_single = doc.get("name").is_some() || doc.get("kind").is_some();
            if has_single {
                let mut item: Vec<(Value, Value)> = Vec::new();
                let mut data: Vec<(Value, Value)> = Vec::new();
                for (k, v) in map {
                    match k.as_str() {
                        Some("name" | "kind") => item.push((k.clone(), v.clone())),
                        Some(key) if SINGLE_RESERVED.contains(&key) => {}
                        _ => data.push((k.clone(), v.clone())),
                    }
                }
                item.push((Value::str("data"), Value::Map(data)));
                let line = at(&["name"]).or(at(&["kind"]));
                let e = build_entry(
                    &Value::Map(item),
                    0,
                    &ns,
                    &file_meta,
                    ctx,
                    &lines,
                    file,
                    line,
                )
                .map_err(|mut d| {
                    // The single form has no `entry[0]` in the file; keep the message honest.
                    d.message = d.message.replace("entry[0].", "");
                    d
                })?;
                out.push(e);
            } else if batch.is_none() {
                return Err(err(
                    None,
                    "either entries array or single entry (name/kind) must be provided".into(),
                ));
            }
        }
    }
    Ok(Some(out))
}

fn interp(
    v: &mut Value,
    ctx: &InterpolateCtx<'_>,
    lines: &LineMap,
    file: &Path,
    entry: Option<&str>,
    fallback_line: Option<u32>,
) -> Result<(), Diagnostic> {
    interpolate(v, ctx).map_err(|e| {
        let d = Diagnostic::error(format!("{}: {}", e.reference, e.message))
            .in_file(file)
            .at_line(lines.file_ref_line(&e.reference).or(fallback_line));
        match entry {
            Some(id) => d.for_entry(id),
            None => d,
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn build_entry(
    item: &Value,
    index: usize,
    ns: &str,
    file_meta: &Value,
    ctx: &InterpolateCtx<'_>,
    lines: &LineMap,
    file: &Path,
    line: Option<u32>,
) -> Result<LoadedEntry, Diagnostic> {
    let fail = |entry: String, msg: String| {
        Diagnostic::error(msg)
            .in_file(file)
            .at_line(line)
            .for_entry(entry)
    };
    let label = format!("entry[{index}]");
    if item.as_map().is_none() {
        return Err(fail(
            label,
            format!("must be a mapping, got {}", item.type_name()),
        ));
    }
    let name = match item.get("name") {
        Some(v) => match v.as_str() {
            Some(s) if !s.trim().is_empty() => s.to_string(),
            _ => {
                return Err(fail(
                    label,
                    format!("entry[{index}].name: must be a non-empty string"),
                ));
            }
        },
        None => return Err(fail(label, format!("entry[{index}].name: missing name"))),
    };
    let id = Id::new(ns, &name);
    let id_s = id.to_string();
    let kind = match item.get("kind") {
        Some(v) => match v.as_str() {
            Some(s) if !s.trim().is_empty() => s.to_string(),
            _ => {
                return Err(fail(
                    id_s,
                    format!("entry[{index}].kind: must be a non-empty string"),
                ));
            }
        },
        None => return Err(fail(id_s, format!("entry[{index}].kind: missing kind"))),
    };
    let mut meta = match item.get("meta") {
        None | Some(Value::Nil) => Value::Nil,
        Some(m @ Value::Map(_)) => m.clone(),
        Some(other) => {
            return Err(fail(
                id_s,
                format!(
                    "entry[{index}].meta: must be a mapping, got {}",
                    other.type_name()
                ),
            ));
        }
    };
    if let Value::Map(fm) = file_meta {
        for (k, v) in fm {
            if let Some(key) = k.as_str()
                && meta.get(key).is_none()
            {
                meta.insert(key, v.clone());
            }
        }
    }
    let mut data = match item.get("data") {
        Some(d) => d.clone(),
        None => Value::Map(
            item.as_map()
                .unwrap_or(&[])
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), Some("name" | "kind" | "meta" | "data")))
                .cloned()
                .collect(),
        ),
    };
    interp(&mut meta, ctx, lines, file, Some(&id_s), line)?;
    interp(&mut data, ctx, lines, file, Some(&id_s), line)?;
    Ok(LoadedEntry {
        entry: Entry {
            id,
            kind,
            meta,
            data,
        },
        file: file.to_path_buf(),
        line,
    })
}
