//! The structured error shared by every layer of wippy.
//!
//! This is the Rust twin of Wippy's error object (`errors` module, spec `lua-api.md` §3.5): a
//! message, a *kind* string (`"NotFound"`, `"Invalid"`, … or `""` for unknown), a tri-state
//! retryable flag, optional details and an optional wrap context. The same value is used for
//! runtime failures (a send to a dead PID), for process exit reasons and for Lua error objects
//! that cross a process boundary, so nothing is lost when an error travels.
//!
//! Display follows the original's "Go-side string": `"<context>: <message>"` when the error was
//! wrapped, else just the message.

use std::borrow::Cow;
use std::fmt;

use crate::value::Value;

/// An error kind: a short string compared by apps against the `errors.*` constants.
///
/// Any string is allowed (Lua code can create custom kinds); the well-known ones are
/// associated constants.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind(Cow<'static, str>);

impl Kind {
    /// `errors.UNKNOWN` — the empty string.
    pub const UNKNOWN: Kind = Kind(Cow::Borrowed(""));
    /// `errors.NOT_FOUND`.
    pub const NOT_FOUND: Kind = Kind(Cow::Borrowed("NotFound"));
    /// `errors.ALREADY_EXISTS`.
    pub const ALREADY_EXISTS: Kind = Kind(Cow::Borrowed("AlreadyExists"));
    /// `errors.INVALID`.
    pub const INVALID: Kind = Kind(Cow::Borrowed("Invalid"));
    /// `errors.PERMISSION_DENIED`.
    pub const PERMISSION_DENIED: Kind = Kind(Cow::Borrowed("PermissionDenied"));
    /// `errors.UNAVAILABLE`.
    pub const UNAVAILABLE: Kind = Kind(Cow::Borrowed("Unavailable"));
    /// `errors.INTERNAL`.
    pub const INTERNAL: Kind = Kind(Cow::Borrowed("Internal"));
    /// `errors.CANCELED`.
    pub const CANCELED: Kind = Kind(Cow::Borrowed("Canceled"));
    /// `errors.CONFLICT`.
    pub const CONFLICT: Kind = Kind(Cow::Borrowed("Conflict"));
    /// `errors.TIMEOUT`.
    pub const TIMEOUT: Kind = Kind(Cow::Borrowed("Timeout"));
    /// `errors.RATE_LIMITED`.
    pub const RATE_LIMITED: Kind = Kind(Cow::Borrowed("RateLimited"));
    /// Not a Wippy constant: used by the scheduler for "max processes limit exceeded".
    pub const LIMIT_EXCEEDED: Kind = Kind(Cow::Borrowed("LimitExceeded"));

    /// A kind from an arbitrary string (user-defined kinds).
    pub fn new(s: impl Into<String>) -> Kind {
        let s = s.into();
        match s.as_str() {
            "" => Kind::UNKNOWN,
            "NotFound" => Kind::NOT_FOUND,
            "AlreadyExists" => Kind::ALREADY_EXISTS,
            "Invalid" => Kind::INVALID,
            "PermissionDenied" => Kind::PERMISSION_DENIED,
            "Unavailable" => Kind::UNAVAILABLE,
            "Internal" => Kind::INTERNAL,
            "Canceled" => Kind::CANCELED,
            "Conflict" => Kind::CONFLICT,
            "Timeout" => Kind::TIMEOUT,
            "RateLimited" => Kind::RATE_LIMITED,
            _ => Kind(Cow::Owned(s)),
        }
    }

    /// The kind string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the empty (unknown) kind.
    pub fn is_unknown(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Inner {
    kind: Kind,
    message: String,
    context: Option<String>,
    retryable: Option<bool>,
    details: Vec<(String, Value)>,
    stack: Option<String>,
}

/// A structured error. Cheap to move (one pointer); cloning copies.
#[derive(Clone, PartialEq)]
pub struct Error(Box<Inner>);

/// Result alias used across wippy.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with a kind and message, retryable unspecified, no details.
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            context: None,
            retryable: None,
            details: Vec::new(),
            stack: None,
        }))
    }

    /// Shorthand for [`Kind::INTERNAL`].
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(Kind::INTERNAL, message)
    }
    /// Shorthand for [`Kind::INVALID`].
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Kind::INVALID, message)
    }
    /// Shorthand for [`Kind::NOT_FOUND`].
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(Kind::NOT_FOUND, message)
    }
    /// Shorthand for [`Kind::UNAVAILABLE`].
    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(Kind::UNAVAILABLE, message)
    }

    /// Builder: set the retryable flag.
    pub fn with_retryable(mut self, retryable: Option<bool>) -> Error {
        self.0.retryable = retryable;
        self
    }
    /// Builder: add one detail (key/value).
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Error {
        self.0.details.push((key.into(), value.into()));
        self
    }
    /// Builder: replace the details.
    pub fn with_details(mut self, details: Vec<(String, Value)>) -> Error {
        self.0.details = details;
        self
    }
    /// Builder: set the wrap context.
    pub fn with_context(mut self, context: impl Into<String>) -> Error {
        self.0.context = Some(context.into());
        self
    }
    /// Builder: attach a stack trace text.
    pub fn with_stack(mut self, stack: impl Into<String>) -> Error {
        self.0.stack = Some(stack.into());
        self
    }
    /// Builder: replace the kind.
    pub fn with_kind(mut self, kind: Kind) -> Error {
        self.0.kind = kind;
        self
    }

    /// Wrap `self` with a context, as `errors.wrap(self, ctx)` does: the new error's message is
    /// `self`'s full display string, `ctx` becomes the context, kind/retryable/details are kept.
    pub fn wrap(&self, context: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            kind: self.0.kind.clone(),
            message: self.to_string(),
            context: Some(context.into()),
            retryable: self.0.retryable,
            details: self.0.details.clone(),
            stack: self.0.stack.clone(),
        }))
    }

    /// The kind.
    pub fn kind(&self) -> &Kind {
        &self.0.kind
    }
    /// The message (without the wrap context).
    pub fn message(&self) -> &str {
        &self.0.message
    }
    /// The wrap context, if any.
    pub fn context(&self) -> Option<&str> {
        self.0.context.as_deref()
    }
    /// Tri-state retryable flag.
    pub fn retryable(&self) -> Option<bool> {
        self.0.retryable
    }
    /// Details (empty when none).
    pub fn details(&self) -> &[(String, Value)] {
        &self.0.details
    }
    /// Stack text, if captured.
    pub fn stack(&self) -> Option<&str> {
        self.0.stack.as_deref()
    }
    /// Look up one detail by key.
    pub fn detail(&self, key: &str) -> Option<&Value> {
        self.0
            .details
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.context {
            Some(ctx) => write!(f, "{}: {}", ctx, self.0.message),
            None => f.write_str(&self.0.message),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind)
            .field("message", &self.0.message);
        if let Some(c) = &self.0.context {
            d.field("context", c);
        }
        if let Some(r) = self.0.retryable {
            d.field("retryable", &r);
        }
        if !self.0.details.is_empty() {
            d.field("details", &self.0.details);
        }
        d.finish()
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            K::NotFound => Kind::NOT_FOUND,
            K::PermissionDenied => Kind::PERMISSION_DENIED,
            K::AlreadyExists => Kind::ALREADY_EXISTS,
            K::InvalidInput | K::InvalidData => Kind::INVALID,
            K::TimedOut => Kind::TIMEOUT,
            _ => Kind::INTERNAL,
        };
        Error::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_kind_and_composes_message() {
        let e = Error::new(Kind::NOT_FOUND, "a").with_retryable(Some(false));
        let w = e.wrap("b");
        assert_eq!(w.message(), "a");
        assert_eq!(w.to_string(), "b: a");
        assert_eq!(w.kind(), &Kind::NOT_FOUND);
        assert_eq!(w.retryable(), Some(false));
        let w2 = w.wrap("c");
        assert_eq!(w2.message(), "b: a");
        assert_eq!(w2.to_string(), "c: b: a");
    }

    #[test]
    fn kind_new_interns_well_known() {
        assert_eq!(Kind::new("Invalid"), Kind::INVALID);
        assert_eq!(Kind::new("custom").as_str(), "custom");
        assert!(Kind::new("").is_unknown());
    }
}
