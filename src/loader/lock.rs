//! `wippy.lock`: source directories and pinned modules (spec `lua-api.md` §1.2).
//!
//! Load order ([`LockFile::load_paths`]): (1) `directories.src`; (2) each replacement
//! (`<to>/src` if that directory exists, else `<to>`); (3) each locked module that is not
//! replaced: `<vendor>/<org>/<module>/`, else `<vendor>/<org>/<module>-<version>.wapp`
//! (packs are not supported yet: reported), else the legacy `<vendor>/<org>/<module>-<version>/`.
//! `<vendor>` is `<directories.modules>/vendor` (not doubled). Relative paths resolve
//! against the lock file's directory. A module that is not installed is a warning: the project
//! loads without its entries (this runtime cannot download from the hub, and a lock often pins
//! modules an app does not use, e.g. `wippy/terminal` beside a locally declared
//! `terminal.host`); an entry that needs one of its entries fails with an error naming it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::diag::Diagnostic;

/// A pinned module.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct LockedModule {
    /// `org/module`.
    #[serde(default)]
    pub name: String,
    /// Version.
    #[serde(default)]
    pub version: String,
    /// Content hash.
    #[serde(default)]
    pub hash: Option<String>,
    /// Local hash.
    #[serde(default)]
    pub local_hash: Option<String>,
}

/// A local module replacement.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Replacement {
    /// `org/module`.
    #[serde(default)]
    pub from: String,
    /// Directory.
    #[serde(default)]
    pub to: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Directories {
    #[serde(default)]
    modules: String,
    #[serde(default)]
    src: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Options {
    #[serde(default)]
    unpack_modules: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Raw {
    #[serde(default)]
    directories: Directories,
    #[serde(default)]
    modules: Vec<LockedModule>,
    #[serde(default)]
    replacements: Vec<Replacement>,
    #[serde(default)]
    options: Options,
}

/// A parsed, validated lock file.
#[derive(Clone, Debug, PartialEq)]
pub struct LockFile {
    /// Directory holding the lock file (base of relative paths).
    pub dir: PathBuf,
    /// `directories.modules`, resolved.
    pub modules_dir: PathBuf,
    /// `directories.src`, resolved.
    pub src_dir: PathBuf,
    /// `modules`.
    pub modules: Vec<LockedModule>,
    /// `replacements`.
    pub replacements: Vec<Replacement>,
    /// `options.unpack_modules`.
    pub unpack_modules: bool,
}

/// Drop `.` components (keeps messages readable; `..` is kept as written).
fn clean(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// A directory to scan, with the module it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadPath {
    /// Root directory.
    pub root: PathBuf,
    /// `(org/module, version)` for module sources.
    pub module: Option<(String, String)>,
}

impl LockFile {
    /// Read and validate `path`.
    pub fn load(path: &Path) -> Result<LockFile, Diagnostic> {
        let text = std::fs::read(path)
            .map_err(|e| Diagnostic::error(format!("cannot read lock file: {e}")).in_file(path))?;
        let raw: Raw = serde_yaml::from_slice(&text).map_err(|e| {
            Diagnostic::error(format!("invalid lock file: {e}"))
                .in_file(path)
                .at_line(e.location().map(|l| l.line() as u32))
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let lines = super::lines::line_map(&text);
        let bad = |msg: &str, key: &[&str]| {
            Diagnostic::error(msg.to_string())
                .in_file(path)
                .at_line(lines.line(key))
        };
        if raw.directories.modules.trim().is_empty() {
            return Err(bad(
                "directories.modules must not be empty",
                &["directories"],
            ));
        }
        if raw.directories.src.trim().is_empty() {
            return Err(bad("directories.src must not be empty", &["directories"]));
        }
        for (i, m) in raw.modules.iter().enumerate() {
            let idx = i.to_string();
            if !m.name.contains('/') {
                return Err(bad(
                    &format!("modules[{i}].name must be org/module, got {:?}", m.name),
                    &["modules", &idx],
                ));
            }
            if m.version.trim().is_empty() {
                return Err(bad(
                    &format!("modules[{i}] ({}): version is required", m.name),
                    &["modules", &idx],
                ));
            }
        }
        for (i, r) in raw.replacements.iter().enumerate() {
            let to = dir.join(&r.to);
            if r.from.is_empty() || !to.is_dir() {
                let idx = i.to_string();
                return Err(bad(
                    &format!(
                        "replacements[{i}]: {:?} → {:?}: target directory does not exist",
                        r.from, r.to
                    ),
                    &["replacements", &idx],
                ));
            }
        }
        Ok(LockFile {
            modules_dir: clean(&dir.join(&raw.directories.modules)),
            src_dir: clean(&dir.join(&raw.directories.src)),
            dir,
            modules: raw.modules,
            replacements: raw.replacements,
            unpack_modules: raw.options.unpack_modules,
        })
    }

    /// The vendor directory.
    pub fn vendor_dir(&self) -> PathBuf {
        if self.modules_dir.file_name().is_some_and(|n| n == "vendor") {
            self.modules_dir.clone()
        } else {
            self.modules_dir.join("vendor")
        }
    }

    /// Directories to scan in load order, plus problems (missing modules).
    pub fn load_paths(&self) -> (Vec<LoadPath>, Vec<Diagnostic>) {
        let mut out = vec![LoadPath {
            root: self.src_dir.clone(),
            module: None,
        }];
        let mut diags = Vec::new();
        for r in &self.replacements {
            let to = self.dir.join(&r.to);
            let src = to.join("src");
            let version = self
                .modules
                .iter()
                .find(|m| m.name == r.from)
                .map(|m| m.version.clone())
                .unwrap_or_default();
            out.push(LoadPath {
                root: if src.is_dir() { src } else { to },
                module: Some((r.from.clone(), version)),
            });
        }
        let vendor = self.vendor_dir();
        for m in &self.modules {
            if self.replacements.iter().any(|r| r.from == m.name) {
                continue;
            }
            let dir = vendor.join(&m.name);
            let (org, module) = m.name.split_once('/').unwrap_or(("", &m.name));
            let pack = vendor
                .join(org)
                .join(format!("{module}-{}.wapp", m.version));
            let legacy = vendor.join(org).join(format!("{module}-{}", m.version));
            let module_id = Some((m.name.clone(), m.version.clone()));
            if dir.is_dir() {
                out.push(LoadPath {
                    root: dir,
                    module: module_id,
                });
            } else if pack.is_file() {
                diags.push(
                    Diagnostic::error(format!(
                        "module {}@{}: .wapp packs are not supported yet",
                        m.name, m.version
                    ))
                    .in_file(pack),
                );
            } else if legacy.is_dir() {
                out.push(LoadPath {
                    root: legacy,
                    module: module_id,
                });
            } else {
                diags.push(Diagnostic::warning(format!(
                    "module {}@{} is not installed under {}: its entries are not loaded \
                     (this runtime cannot download from the hub; vendor the module to use it)",
                    m.name,
                    m.version,
                    vendor.display()
                )));
            }
        }
        (out, diags)
    }
}
