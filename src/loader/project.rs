//! Loading a whole project: lock file → load paths → scan → parse → pipeline.
//!
//! Failure policy (spec §10.3, `lua-api.md` §1.3):
//! * a bad definition file (syntax, interpolation, validation) is **skipped with a warning**
//!   diagnostic naming file, line and entry; the rest loads;
//! * duplicate ids: warning, the last definition wins (src first, then replacements, then
//!   vendored modules);
//! * an unknown kind: warning, the entry is kept as plain data;
//! * a bad `wippy.lock`, a missing module, or a pipeline stage error (e.g. an override naming
//!   no entry) aborts: [`ProjectError`].

use std::path::{Path, PathBuf};

use fnv::FnvHashMap;
use wippy_rt::Value;

use super::definition::{Format, LoadedEntry, parse_definition};
use super::diag::{Diagnostic, Severity};
use super::interpolate::InterpolateCtx;
use super::kinds::is_known_kind;
use super::lock::{LoadPath, LockFile, Replacement};
use super::pipeline::{Pipeline, StageError};
use super::scan::{env_skips, scan};
use crate::config::Config;
use crate::registry::{Entry, Id};

/// Options of a load.
#[derive(Debug, Default)]
pub struct LoadOptions {
    /// The pipeline (bytecode hooks, embed patterns).
    pub pipeline: Pipeline,
    /// Extra known kind patterns (components that add kinds).
    pub extra_kinds: Vec<String>,
    /// Directory names to skip besides `node_modules` and the env-driven ones.
    pub skip_dirs: Vec<String>,
}

/// A loaded project.
#[derive(Debug, Default)]
pub struct Project {
    /// Entries in load order (duplicates resolved).
    pub entries: Vec<LoadedEntry>,
    /// Warnings (and skipped-file errors demoted to warnings).
    pub diagnostics: Vec<Diagnostic>,
    /// The lock file, when one was found.
    pub lock: Option<LockFile>,
}

impl Project {
    /// The bare entries (for `Registry::load_state`).
    pub fn into_entries(self) -> Vec<Entry> {
        self.entries.into_iter().map(|le| le.entry).collect()
    }
}

/// A fatal load failure.
#[derive(Debug)]
pub enum ProjectError {
    /// `wippy.lock` is unreadable or invalid, or a module is missing.
    Lock(Vec<Diagnostic>),
    /// A pipeline stage failed.
    Stage(StageError),
}

impl std::fmt::Display for ProjectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProjectError::Lock(d) => {
                for (i, x) in d.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{x}")?;
                }
                Ok(())
            }
            ProjectError::Stage(s) => s.fmt(f),
        }
    }
}

impl std::error::Error for ProjectError {}

/// Load the project in `dir`: `dir/wippy.lock` (none → empty registry), config overrides and
/// disables from `cfg`.
pub fn load_project(dir: &Path, cfg: &Config, opts: &LoadOptions) -> Result<Project, ProjectError> {
    let lock_path = dir.join("wippy.lock");
    if !lock_path.is_file() {
        log::info!(target: "wippy::loader", "no wippy.lock in {}: starting with empty registry", dir.display());
        let mut project = Project::default();
        let mut entries = Vec::new();
        opts.pipeline
            .run(&mut entries, cfg, &mut project.diagnostics)
            .map_err(ProjectError::Stage)?;
        return Ok(project);
    }
    let mut lock = LockFile::load(&lock_path).map_err(|d| ProjectError::Lock(vec![d]))?;
    workspace_replacements(&mut lock, dir, cfg)?;
    let (paths, problems) = lock.load_paths();
    if problems.iter().any(Diagnostic::is_error) {
        return Err(ProjectError::Lock(problems));
    }
    for d in &problems {
        log::warn!(target: "wippy::loader", "{d}");
    }
    let mut project = load_paths(&paths, cfg, opts)?;
    project.diagnostics.splice(0..0, problems);
    project.lock = Some(lock);
    Ok(project)
}

/// Apply the configuration's `workspace.replacements: {org/module: dir}` to the lock's
/// replacements (a config entry wins over a lock entry for the same module). Relative
/// directories resolve against the project directory; a missing directory is an error.
/// Replacements never change `wippy.lock`.
fn workspace_replacements(
    lock: &mut LockFile,
    dir: &Path,
    cfg: &Config,
) -> Result<(), ProjectError> {
    let Some(ws) = cfg.raw_section("workspace") else {
        return Ok(());
    };
    let reps = match ws.get("replacements") {
        None | Some(Value::Nil) => return Ok(()),
        Some(Value::Map(m)) => m,
        Some(other) => {
            return Err(ProjectError::Lock(vec![Diagnostic::error(format!(
                "workspace.replacements must be a mapping of org/module → directory, got {}",
                other.type_name()
            ))]));
        }
    };
    let mut problems = Vec::new();
    for (k, v) in reps {
        let from = k.as_str().unwrap_or("").to_string();
        let Some(to) = v.as_str().filter(|t| !t.trim().is_empty()) else {
            problems.push(Diagnostic::error(format!(
                "workspace.replacements[{from:?}]: expected a directory, got {}",
                v.type_name()
            )));
            continue;
        };
        let target = dir.join(to);
        if !from.contains('/') || !target.is_dir() {
            problems.push(Diagnostic::error(format!(
                "workspace.replacements: {from:?} → {to:?}: {}",
                if from.contains('/') {
                    "target directory does not exist"
                } else {
                    "module must be org/module"
                }
            )));
            continue;
        }
        lock.replacements.retain(|r| r.from != from);
        lock.replacements.push(Replacement {
            from,
            to: std::path::absolute(&target)
                .unwrap_or(target)
                .display()
                .to_string(),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ProjectError::Lock(problems))
    }
}

/// Load one source directory without a lock file (tests, `wippy registry list <dir>`).
pub fn load_dir(src: &Path, cfg: &Config, opts: &LoadOptions) -> Result<Project, ProjectError> {
    load_paths(
        &[LoadPath {
            root: src.to_path_buf(),
            module: None,
        }],
        cfg,
        opts,
    )
}

/// Load the given paths in order and run the pipeline.
pub fn load_paths(
    paths: &[LoadPath],
    cfg: &Config,
    opts: &LoadOptions,
) -> Result<Project, ProjectError> {
    let mut diags = Vec::new();
    let mut entries: Vec<LoadedEntry> = Vec::new();
    let mut index: FnvHashMap<Id, usize> = FnvHashMap::default();
    let mut skips = env_skips();
    skips.extend(opts.skip_dirs.iter().cloned());
    for lp in paths {
        for le in load_root(&lp.root, &skips, &mut diags) {
            let mut le = le;
            if let Some((module, version)) = &lp.module {
                le.entry.meta.insert("module", Value::str(module));
                le.entry.meta.insert("module_version", Value::str(version));
            }
            match index.get(&le.entry.id) {
                Some(&i) => {
                    diags.push(
                        Diagnostic::warning(format!(
                            "duplicate entries detected (will use last definition); previous definition in {}{}",
                            entries[i].file.display(),
                            entries[i].line.map(|l| format!(":{l}")).unwrap_or_default()
                        ))
                        .in_file(&le.file)
                        .at_line(le.line)
                        .for_entry(le.entry.id.to_string()),
                    );
                    entries[i] = le;
                }
                None => {
                    index.insert(le.entry.id.clone(), entries.len());
                    entries.push(le);
                }
            }
        }
    }
    for le in &entries {
        if !is_known_kind(&le.entry.kind, &opts.extra_kinds) {
            diags.push(
                Diagnostic::warning(format!(
                    "unknown kind {:?}: kept as a plain entry",
                    le.entry.kind
                ))
                .in_file(&le.file)
                .at_line(le.line)
                .for_entry(le.entry.id.to_string()),
            );
        }
    }
    opts.pipeline
        .run(&mut entries, cfg, &mut diags)
        .map_err(ProjectError::Stage)?;
    for d in &diags {
        log::warn!(target: "wippy::loader", "{d}");
    }
    Ok(Project {
        entries,
        diagnostics: diags,
        lock: None,
    })
}

/// Scan and parse one load root; bad files become warning diagnostics.
pub fn load_root(root: &Path, skips: &[String], diags: &mut Vec<Diagnostic>) -> Vec<LoadedEntry> {
    let mut io_errors = Vec::new();
    let files = scan(root, skips, &mut io_errors);
    for (p, e) in io_errors {
        diags.push(Diagnostic::warning(format!("cannot read directory: {e}")).in_file(p));
    }
    let mut out = Vec::new();
    for file in files {
        out.extend(load_file(root, &file, diags));
    }
    out
}

/// Parse one file under `root`; on error a warning diagnostic is recorded and nothing is
/// returned for the file.
pub fn load_file(root: &Path, file: &Path, diags: &mut Vec<Diagnostic>) -> Vec<LoadedEntry> {
    let Some(format) = Format::of(file) else {
        return Vec::new();
    };
    let text = match std::fs::read(file) {
        Ok(t) => t,
        Err(e) => {
            diags.push(
                Diagnostic::warning(format!("cannot read file: {e}; file skipped")).in_file(file),
            );
            return Vec::new();
        }
    };
    let rel_dir: PathBuf = file
        .parent()
        .and_then(|d| d.strip_prefix(root).ok())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let ctx = InterpolateCtx {
        root,
        file_dir: &rel_dir,
    };
    match parse_definition(&text, format, file, &ctx) {
        Ok(Some(v)) => v,
        Ok(None) => Vec::new(),
        Err(mut d) => {
            d.severity = Severity::Warning;
            d.message.push_str("; file skipped");
            diags.push(d);
            Vec::new()
        }
    }
}
