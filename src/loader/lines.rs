//! Line numbers for YAML/JSON documents: a light second pass over the libyaml event stream.
//!
//! serde gives us values without positions. To name the **line** of an entry or key in an
//! error, [`LineMap::build`] parses the same text again with `unsafe-libyaml` (the parser
//! `serde_yaml_ng` itself uses, so positions agree exactly) and records, for every mapping
//! key and sequence item, the 1-based line where it starts, keyed by its path from the
//! document root (`["entries", "3", "source"]`). Scalars that start with `file://` are also
//! recorded by value so interpolation errors can be located.
//!
//! The pass is iterative (no recursion, any nesting depth) and best-effort: if the parser
//! fails, the map keeps whatever was recorded up to that point (the caller reports the parse
//! error itself, with serde's location).

use std::collections::HashMap;
use std::mem::MaybeUninit;

use unsafe_libyaml as unsafe_yaml;

/// Path-to-line index of one document.
#[derive(Debug, Default, Clone)]
pub struct LineMap {
    lines: HashMap<String, u32>,
    file_refs: Vec<(String, u32)>,
}

const SEP: char = '\u{1f}';

fn key_of(path: &[String]) -> String {
    path.join(&SEP.to_string())
}

enum Kind {
    /// In a mapping: `Some(key)` after reading a key (awaiting its value).
    Map(Option<String>),
    /// In a sequence: next item index.
    Seq(usize),
}

struct Frame {
    kind: Kind,
    /// Whether this collection pushed a path segment (the root does not).
    pushed: bool,
}

impl LineMap {
    /// The line where the node at `path` starts (mapping keys: the key's line; sequence
    /// items: the item's first line).
    pub fn line(&self, path: &[&str]) -> Option<u32> {
        self.lines.get(&path.join(&SEP.to_string())).copied()
    }

    /// The line of the first `file://` scalar with exactly this text.
    pub fn file_ref_line(&self, text: &str) -> Option<u32> {
        self.file_refs
            .iter()
            .find(|(t, _)| t == text)
            .map(|(_, l)| *l)
    }

    /// Parse `input` (first document only) and record positions.
    pub fn build(input: &[u8]) -> LineMap {
        let mut out = LineMap::default();
        let mut parser = Parser::new(input);
        let mut stack: Vec<Frame> = Vec::new();
        let mut path: Vec<String> = Vec::new();
        while let Some((ev, line, scalar)) = parser.next() {
            match ev {
                Ev::StreamEnd | Ev::DocumentEnd => break,
                Ev::Other => {}
                Ev::MapEnd | Ev::SeqEnd => {
                    if let Some(f) = stack.pop()
                        && f.pushed
                    {
                        path.pop();
                    }
                }
                Ev::Scalar | Ev::Alias | Ev::MapStart | Ev::SeqStart => {
                    let is_collection = matches!(ev, Ev::MapStart | Ev::SeqStart);
                    let new_kind = || {
                        if ev == Ev::MapStart {
                            Kind::Map(None)
                        } else {
                            Kind::Seq(0)
                        }
                    };
                    // A mapping key?
                    if let Some(Frame {
                        kind: Kind::Map(pending @ None),
                        ..
                    }) = stack.last_mut()
                    {
                        if ev == Ev::Scalar {
                            let k = String::from_utf8_lossy(&scalar).into_owned();
                            path.push(k.clone());
                            out.lines.entry(key_of(&path)).or_insert(line);
                            path.pop();
                            *pending = Some(k);
                        } else if is_collection {
                            // Complex key: its contents are recorded under "?".
                            *pending = Some("?".into());
                            path.push("?".into());
                            stack.push(Frame {
                                kind: new_kind(),
                                pushed: true,
                            });
                        } else {
                            *pending = Some("*".into());
                        }
                        continue;
                    }
                    // A value: under a mapping key, a sequence item, or the root.
                    let (seg, is_item) = match stack.last_mut() {
                        Some(Frame {
                            kind: Kind::Map(pending),
                            ..
                        }) => (pending.take(), false),
                        Some(Frame {
                            kind: Kind::Seq(i), ..
                        }) => {
                            *i += 1;
                            (Some((*i - 1).to_string()), true)
                        }
                        None => (None, false),
                    };
                    if let Some(s) = &seg {
                        path.push(s.clone());
                        if is_item {
                            out.lines.insert(key_of(&path), line);
                        } else {
                            out.lines.entry(key_of(&path)).or_insert(line);
                        }
                    }
                    if ev == Ev::Scalar && scalar.starts_with(b"file://") {
                        out.file_refs
                            .push((String::from_utf8_lossy(&scalar).into_owned(), line));
                    }
                    if is_collection {
                        stack.push(Frame {
                            kind: new_kind(),
                            pushed: seg.is_some(),
                        });
                    } else if seg.is_some() {
                        path.pop();
                    }
                }
            }
        }
        out
    }
}

/// Build the line map of a document.
pub fn line_map(input: &[u8]) -> LineMap {
    LineMap::build(input)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ev {
    StreamEnd,
    DocumentEnd,
    Scalar,
    Alias,
    MapStart,
    MapEnd,
    SeqStart,
    SeqEnd,
    Other,
}

/// Owns a libyaml parser reading from a borrowed buffer.
struct Parser<'a> {
    raw: Box<MaybeUninit<unsafe_yaml::yaml_parser_t>>,
    failed: bool,
    _input: &'a [u8],
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8]) -> Parser<'a> {
        let mut raw: Box<MaybeUninit<unsafe_yaml::yaml_parser_t>> = Box::new(MaybeUninit::uninit());
        // SAFETY: `yaml_parser_initialize` fully initialises the struct behind the pointer
        // (it zeroes it first). The parser lives in a Box, so its address is stable for the
        // whole life of `Parser` (libyaml keeps internal pointers into itself). The input
        // pointer/length describe `input`, which outlives `Parser` through the `'a` borrow
        // held in `_input`, and libyaml only reads from it.
        let failed = unsafe {
            let p = raw.as_mut_ptr();
            if unsafe_yaml::yaml_parser_initialize(p).fail {
                true
            } else {
                unsafe_yaml::yaml_parser_set_encoding(p, unsafe_yaml::YAML_UTF8_ENCODING);
                unsafe_yaml::yaml_parser_set_input_string(p, input.as_ptr(), input.len() as u64);
                false
            }
        };
        Parser {
            raw,
            failed,
            _input: input,
        }
    }

    /// Next event: kind, 1-based line, scalar bytes (empty for non-scalars). `None` on error
    /// or after the stream ended.
    fn next(&mut self) -> Option<(Ev, u32, Vec<u8>)> {
        if self.failed {
            return None;
        }
        let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
        // SAFETY: the parser was initialised in `new` (`failed` is false) and is only used
        // from this `&mut self`. `yaml_parser_parse` writes a complete event on success; we
        // read its plain fields (type, mark, and for scalars the value pointer/length, which
        // libyaml guarantees valid until `yaml_event_delete`), copy the scalar bytes out,
        // then free the event exactly once. On failure no event is produced and nothing is
        // read or freed.
        unsafe {
            let p = self.raw.as_mut_ptr();
            if unsafe_yaml::yaml_parser_parse(p, event.as_mut_ptr()).fail {
                self.failed = true;
                return None;
            }
            let ev = &*event.as_ptr();
            let line = (ev.start_mark.line as u32).saturating_add(1);
            let (kind, scalar) = match ev.type_ {
                unsafe_yaml::YAML_STREAM_END_EVENT => (Ev::StreamEnd, Vec::new()),
                unsafe_yaml::YAML_DOCUMENT_END_EVENT => (Ev::DocumentEnd, Vec::new()),
                unsafe_yaml::YAML_SCALAR_EVENT => {
                    let s = ev.data.scalar;
                    let bytes = if s.value.is_null() {
                        Vec::new()
                    } else {
                        std::slice::from_raw_parts(s.value, s.length as usize).to_vec()
                    };
                    (Ev::Scalar, bytes)
                }
                unsafe_yaml::YAML_ALIAS_EVENT => (Ev::Alias, Vec::new()),
                unsafe_yaml::YAML_MAPPING_START_EVENT => (Ev::MapStart, Vec::new()),
                unsafe_yaml::YAML_MAPPING_END_EVENT => (Ev::MapEnd, Vec::new()),
                unsafe_yaml::YAML_SEQUENCE_START_EVENT => (Ev::SeqStart, Vec::new()),
                unsafe_yaml::YAML_SEQUENCE_END_EVENT => (Ev::SeqEnd, Vec::new()),
                _ => (Ev::Other, Vec::new()),
            };
            unsafe_yaml::yaml_event_delete(event.as_mut_ptr());
            Some((kind, line, scalar))
        }
    }
}

impl Drop for Parser<'_> {
    fn drop(&mut self) {
        // SAFETY: when `failed` is false from `new` onwards or became true only after a parse
        // error, the struct was initialised by `yaml_parser_initialize`; an initialisation
        // failure leaves it zeroed by libyaml, for which `yaml_parser_delete` is also safe
        // (it frees null buffers). It is deleted exactly once, here.
        unsafe { unsafe_yaml::yaml_parser_delete(self.raw.as_mut_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_and_key_lines() {
        let y = "version: \"1.0\"\nnamespace: app\nentries:\n  # comment\n  - name: a\n    kind: k\n    source: file://a.lua\n  - name: b\n    kind: k\n    nested:\n      deep: [1, 2]\n  - {name: c, kind: k}\n";
        let m = line_map(y.as_bytes());
        assert_eq!(m.line(&["namespace"]), Some(2));
        assert_eq!(m.line(&["entries", "0"]), Some(5));
        assert_eq!(m.line(&["entries", "0", "source"]), Some(7));
        assert_eq!(m.line(&["entries", "1"]), Some(8));
        assert_eq!(m.line(&["entries", "1", "nested", "deep"]), Some(11));
        assert_eq!(m.line(&["entries", "2"]), Some(12));
        assert_eq!(m.file_ref_line("file://a.lua"), Some(7));
    }

    #[test]
    fn json_lines() {
        let j = "{\n \"namespace\": \"x\",\n \"entries\": [\n  {\"name\": \"a\"},\n  {\"name\": \"b\"}\n ]\n}";
        let m = line_map(j.as_bytes());
        assert_eq!(m.line(&["entries", "1"]), Some(5));
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            "",
            "[",
            "a: [b, {c: d",
            "- - - -",
            "? [a]: b\n",
            "&a [*a]",
            "\u{0}\u{1}",
        ] {
            let _ = line_map(s.as_bytes());
        }
    }
}
