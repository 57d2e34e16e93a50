//! Project loading: from a directory of YAML/JSON definition files to registry entries
//! (spec `lua-api.md` §1.2–§1.8, `runtime-internals.md` §10.3–§10.4).
//!
//! * [`lock`] — `wippy.lock` and the load-path order;
//! * [`scan`] — recursive discovery of `.yaml`/`.yml`/`.json` files;
//! * [`definition`] — one file → entries (batch / single / `data:` forms, file meta);
//! * [`interpolate`] — `file://` inlining with traversal checks;
//! * [`lines`] — line numbers of entries and keys (libyaml event pass);
//! * [`kinds`] — known kinds and relative-reference rules;
//! * [`pipeline`] — override → disable → link → override (+ bytecode, embedfs);
//! * [`project`] — the whole load with its failure policy;
//! * [`diag`] — diagnostics naming file, line and entry.
//!
//! ```no_run
//! use wippy::config::Config;
//! use wippy::loader::{LoadOptions, load_project};
//! let project = load_project(std::path::Path::new("."), &Config::defaults(), &LoadOptions::default()).unwrap();
//! for d in &project.diagnostics { eprintln!("{d}"); }
//! println!("{} entries", project.entries.len());
//! ```

pub mod definition;
pub mod diag;
pub mod interpolate;
pub mod kinds;
pub mod lines;
pub mod lock;
pub mod pipeline;
pub mod project;
pub mod scan;

pub use definition::{Format, LoadedEntry, parse_definition};
pub use diag::{Diagnostic, Severity};
pub use lock::{LoadPath, LockFile};
pub use pipeline::{EntryHook, Pipeline, StageError};
pub use project::{LoadOptions, Project, ProjectError, load_dir, load_file, load_project};

/// Parse a definition text for fuzzing and robustness tests: never panics, never touches the
/// file system outside `root` (interpolation is confined to it).
pub fn parse_bytes(
    text: &[u8],
    format: Format,
    root: &std::path::Path,
) -> Result<Option<Vec<LoadedEntry>>, Diagnostic> {
    let ctx = interpolate::InterpolateCtx {
        root,
        file_dir: std::path::Path::new(""),
    };
    parse_definition(text, format, std::path::Path::new("input.yaml"), &ctx)
}
