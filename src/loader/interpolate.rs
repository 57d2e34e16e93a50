//! `file://` interpolation (spec `lua-api.md` §1.6).
//!
//! Every string value anywhere in a definition document that *starts* with `file://` is
//! replaced by the contents of that file (bytes, binary safe):
//! * `file://rel/path` — relative to the directory of the YAML file;
//! * `file:///abs/path` — relative to the **root of the load path** (the scanned directory).
//!
//! Paths are cleaned lexically; a path that escapes the load root with `..` is a "path
//! traversal" error; an empty path or an unreadable file is an error. Mapping keys are not
//! interpolated.

use std::path::{Component, Path, PathBuf};

use wippy_rt::{Bytes, Value};

/// Where relative and rooted paths resolve.
#[derive(Clone, Debug)]
pub struct InterpolateCtx<'a> {
    /// The load-path root.
    pub root: &'a Path,
    /// The YAML file's directory, relative to `root`.
    pub file_dir: &'a Path,
}

/// A failed interpolation: the offending string and the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct InterpolateError {
    /// The `file://…` text.
    pub reference: String,
    /// Why it failed.
    pub message: String,
}

/// Resolve a `file://` reference to a path under `root` (lexically cleaned).
pub fn resolve(ctx: &InterpolateCtx<'_>, reference: &str) -> Result<PathBuf, String> {
    let rest = reference.strip_prefix("file://").unwrap_or(reference);
    let (base, rel): (&Path, &str) = match rest.strip_prefix('/') {
        Some(abs) => (Path::new(""), abs),
        None => (ctx.file_dir, rest),
    };
    if rel.trim().is_empty() {
        return Err("empty file path".into());
    }
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    for c in base.components().chain(Path::new(rel).components()) {
        match c {
            Component::Normal(p) => parts.push(p.to_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "path traversal: {reference} escapes the load root {}",
                        ctx.root.display()
                    ));
                }
            }
            Component::RootDir | Component::Prefix(_) => {}
        }
    }
    if parts.is_empty() {
        return Err("empty file path".into());
    }
    let mut p = ctx.root.to_path_buf();
    p.extend(parts);
    Ok(p)
}

/// Interpolate every string of `v` in place.
pub fn interpolate(v: &mut Value, ctx: &InterpolateCtx<'_>) -> Result<(), InterpolateError> {
    match v {
        Value::Str(s) if s.as_bytes().starts_with(b"file://") => {
            let reference = s.to_string_lossy().into_owned();
            let path = resolve(ctx, &reference).map_err(|message| InterpolateError {
                reference: reference.clone(),
                message,
            })?;
            let data = std::fs::read(&path).map_err(|e| InterpolateError {
                reference: reference.clone(),
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            *v = Value::Str(Bytes::from(data));
            Ok(())
        }
        Value::Array(a) => a.iter_mut().try_for_each(|x| interpolate(x, ctx)),
        Value::Map(m) => m.iter_mut().try_for_each(|(_, x)| interpolate(x, ctx)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_rules() {
        let ctx = InterpolateCtx {
            root: Path::new("/proj/src"),
            file_dir: Path::new("api/v1"),
        };
        assert_eq!(
            resolve(&ctx, "file://h.lua").unwrap(),
            Path::new("/proj/src/api/v1/h.lua")
        );
        assert_eq!(
            resolve(&ctx, "file://../x/./h.lua").unwrap(),
            Path::new("/proj/src/api/x/h.lua")
        );
        assert_eq!(
            resolve(&ctx, "file:///lib/a.lua").unwrap(),
            Path::new("/proj/src/lib/a.lua")
        );
        assert!(
            resolve(&ctx, "file://../../../etc/passwd")
                .unwrap_err()
                .starts_with("path traversal")
        );
        assert!(
            resolve(&ctx, "file:///../x")
                .unwrap_err()
                .starts_with("path traversal")
        );
        assert_eq!(resolve(&ctx, "file://").unwrap_err(), "empty file path");
    }
}
