//! Recursive scan of a load path (spec `lua-api.md` §1.3): lexical order, `node_modules`
//! skipped, files ending in `.yaml`, `.yml` or `.json` collected. The original's test-only
//! skips are honoured: `SKIP_TEMPORAL_TESTS` (skips `temporal`, `_temporal`) and the comma
//! list `SKIP_TEST_DIRS`.

use std::path::{Path, PathBuf};

use super::definition::Format;

/// Directory names skipped, from the environment.
pub fn env_skips() -> Vec<String> {
    let mut v = vec!["node_modules".to_string()];
    if std::env::var_os("SKIP_TEMPORAL_TESTS").is_some() {
        v.extend(["temporal".into(), "_temporal".into()]);
    }
    if let Ok(list) = std::env::var("SKIP_TEST_DIRS") {
        v.extend(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    v
}

/// Definition files under `root`, in lexical walk order (a directory's contents appear
/// where its name sorts, as with Go's `fs.WalkDir`). Unreadable directories are reported in
/// `errors` and skipped; symlinked directories are not followed (no cycles).
pub fn scan(
    root: &Path,
    skip_dirs: &[String],
    errors: &mut Vec<(PathBuf, std::io::Error)>,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(root, skip_dirs, errors, &mut out);
    out
}

fn walk(
    dir: &Path,
    skip_dirs: &[String],
    errors: &mut Vec<(PathBuf, std::io::Error)>,
    out: &mut Vec<PathBuf>,
) {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            errors.push((dir.to_path_buf(), e));
            return;
        }
    };
    let mut items: Vec<(std::ffi::OsString, PathBuf, bool)> = rd
        .filter_map(Result::ok)
        .map(|e| {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            (e.file_name(), e.path(), is_dir)
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, path, is_dir) in items {
        if is_dir {
            if !skip_dirs.iter().any(|s| name.to_str() == Some(s.as_str())) {
                walk(&path, skip_dirs, errors, out);
            }
        } else if Format::of(&path).is_some() {
            out.push(path);
        }
    }
}
