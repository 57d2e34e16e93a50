//! `wippy init` (spec `lua-api.md` §5.3): write a lock file with `directories` only.
//!
//! An existing lock file keeps everything else it holds (`modules`, `replacements`,
//! `options`, unknown keys); a lock file that is not valid YAML, or not a mapping, is an error
//! and is left untouched. The source directory is not created. The file is written to a
//! temporary sibling and renamed, so a crash never leaves half a lock file.

use std::path::{Path, PathBuf};

use clap::Args;
use wippy_rt::Value;

/// `wippy init` arguments.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Source directory recorded in the lock file.
    #[arg(
        short = 'd',
        long = "src-dir",
        value_name = "DIR",
        default_value = "./src"
    )]
    pub src_dir: String,
    /// Modules directory recorded in the lock file.
    #[arg(long = "modules-dir", value_name = "DIR", default_value = ".wippy")]
    pub modules_dir: String,
    /// Lock file to write.
    #[arg(
        short = 'l',
        long = "lock-file",
        value_name = "FILE",
        default_value = "wippy.lock"
    )]
    pub lock_file: PathBuf,
}

/// Run `wippy init`.
///
/// # Errors
/// The message to print after `Error: `.
pub fn run(a: &InitArgs) -> Result<(), String> {
    if a.src_dir.trim().is_empty() {
        return Err("--src-dir must not be empty".into());
    }
    if a.modules_dir.trim().is_empty() {
        return Err("--modules-dir must not be empty".into());
    }
    write_lock(&a.lock_file, &a.src_dir, &a.modules_dir)?;
    log::info!(target: "wippy::cli", "lock file initialized: {} (src: {}, modules: {})",
        a.lock_file.display(), a.src_dir, a.modules_dir);
    Ok(())
}

/// Create or update `path` with `directories: {modules, src}`.
///
/// # Errors
/// Unreadable/invalid existing file, write failures.
pub fn write_lock(path: &Path, src: &str, modules: &str) -> Result<(), String> {
    let mut doc = match std::fs::read(path) {
        Ok(bytes) => {
            let v: Value = serde_yaml::from_slice(&bytes)
                .map_err(|e| format!("{}: invalid lock file: {e}", path.display()))?;
            match v {
                Value::Map(_) => v,
                Value::Nil => Value::Map(Vec::new()),
                other => {
                    return Err(format!(
                        "{}: invalid lock file: expected a mapping, got {}",
                        path.display(),
                        other.type_name()
                    ));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Map(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let dirs = Value::Map(vec![
        (Value::str("modules"), Value::str(modules)),
        (Value::str("src"), Value::str(src)),
    ]);
    if !doc.insert("directories", dirs.clone()) {
        // `insert` only fails on non-maps, excluded above.
        return Err(format!("{}: cannot update directories", path.display()));
    }
    // Keep `directories` first, as the original writes it.
    if let Value::Map(m) = &mut doc
        && let Some(i) = m
            .iter()
            .position(|(k, _)| k.as_str() == Some("directories"))
    {
        let d = m.remove(i);
        m.insert(0, d);
    }
    let text = serde_yaml::to_string(&doc).map_err(|e| format!("cannot encode lock file: {e}"))?;
    let tmp = path.with_extension("lock.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}
