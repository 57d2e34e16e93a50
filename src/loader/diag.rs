//! Load diagnostics: every problem names the file, the line and the entry when known.
//!
//! Display form: `<file>:<line>: entry <ns:name>: <message>` (parts that are unknown are
//! left out).

use std::fmt;
use std::path::PathBuf;

/// How bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Loading went on (file or entry skipped, unknown kind kept, …).
    Warning,
    /// Loading failed.
    Error,
}

/// One problem found while loading.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Warning or error.
    pub severity: Severity,
    /// The file.
    pub file: Option<PathBuf>,
    /// 1-based line.
    pub line: Option<u32>,
    /// The entry id (`ns:name`), or `entry[i]` when the entry has no valid name.
    pub entry: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// A warning.
    pub fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            file: None,
            line: None,
            entry: None,
            message: message.into(),
        }
    }
    /// An error.
    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            ..Diagnostic::warning(message)
        }
    }
    /// Builder: file.
    pub fn in_file(mut self, file: impl Into<PathBuf>) -> Diagnostic {
        self.file = Some(file.into());
        self
    }
    /// Builder: line.
    pub fn at_line(mut self, line: Option<u32>) -> Diagnostic {
        self.line = line;
        self
    }
    /// Builder: entry.
    pub fn for_entry(mut self, entry: impl Into<String>) -> Diagnostic {
        self.entry = Some(entry.into());
        self
    }
    /// Builder: severity.
    pub fn with_severity(mut self, s: Severity) -> Diagnostic {
        self.severity = s;
        self
    }
    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(l) = self.line {
                write!(f, ":{l}")?;
            }
            f.write_str(": ")?;
        }
        if let Some(e) = &self.entry {
            write!(f, "entry {e}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}
