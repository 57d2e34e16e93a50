//! Typed-Lua front end: the Wippy dialect (Lua 5.1/5.3 + type annotations) → plain Lua 5.4.
//!
//! Every `function.lua`, `process.lua` and `library.lua` source goes through [`translate`] (or the
//! [`TranslationCache`]) before it reaches the VM. The translation is *by erasure*: the output is
//! the input with annotations, generics, casts, `!`, `interface` blocks and `type` statements
//! replaced by spaces, so **every token keeps its line** and Lua's error messages and tracebacks
//! point at the user's file and line. Three things survive with run-time meaning (spec §4.4):
//!
//! 1. Top-level `type X = …` / `interface X … end` declarations become run-time type objects. Their
//!    source text is passed, as one string, to `__wippy_types(...)` in a prelude prepended to line
//!    1; at load time it creates the type objects (hoisted, order-independent, recursive references
//!    allowed) and sets each name as a global if that global is currently nil (built-in names are
//!    never injected) — exactly go-lua's `injectProtoTypes`.
//! 2. Calls on a type name — `X(v)`, `string(v)`, `X:is(v)`, `X.kind()` — where `X` is a built-in
//!    type name or a type declared at the top of this chunk and no local `X` is in scope, are
//!    rewritten to `__wippy_T.X(...)` (go-lua's `LOADTYPE`): `__wippy_T` is a chunk-level local
//!    holding this chunk's types plus the built-ins, so `string:is(v)` reaches the built-in type
//!    object while `string.format` still hits the string library.
//! 3. Quoted strings use the 5.1 escape set; escapes Lua 5.4 reads differently (`\x`, `\z`, `\u`,
//!    unknown ones) are rewritten to what the dialect means (backslash dropped).
//!
//! The engine installs the helpers with [`install_type_runtime`] on states that run a chunk whose
//! [`Translation::needs_type_runtime`] is true; others pay nothing.
//!
//! Layout: `lexer` (tokens) → `parser` (statements, scopes, edit list) + `expr` (value
//! expressions, type-call sites) + `types` (type grammar) → `emit` (assembly); `ast` (type syntax
//! tree); `cache`; `runtime` (type objects on mlua).
//! Design notes: `docs/frontend.md`.

mod ast;
mod cache;
mod emit;
mod error;
mod expr;
mod lexer;
mod parser;
mod runtime;
mod types;

use std::borrow::Cow;

pub use cache::TranslationCache;
pub use error::SyntaxError;
pub use runtime::{install_type_runtime, type_runtime_entry};

use error::RawError;
use parser::{Parser, is_builtin_type_name};

/// Name of the global function the prelude calls (installed by [`install_type_runtime`]).
pub const TYPES_ENTRY_GLOBAL: &str = "__wippy_types";
/// Name of the chunk-level local holding the chunk's type table.
pub const TYPE_TABLE_LOCAL: &str = "__wippy_T";

/// Result of translating one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    code: Vec<u8>,
    needs_type_runtime: bool,
    declared_types: Vec<String>,
    type_calls: usize,
}

impl Translation {
    /// Plain Lua 5.4 source with the same number of lines as the input; load it with the original
    /// chunk name (`lua.load(t.code()).set_name(name)`).
    pub fn code(&self) -> &[u8] {
        &self.code
    }

    /// [`code`](Self::code) as text (lossy only if the input was not UTF-8).
    pub fn code_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.code)
    }

    /// Consume into the Lua source bytes.
    pub fn into_code(self) -> Vec<u8> {
        self.code
    }

    /// True when the code references `__wippy_types` (declares top-level types or calls a type
    /// name): the state must have [`install_type_runtime`] applied before loading it.
    pub fn needs_type_runtime(&self) -> bool {
        self.needs_type_runtime
    }

    /// Names of the top-level `type`/`interface` declarations (run-time types), in source order.
    pub fn declared_types(&self) -> &[String] {
        &self.declared_types
    }

    /// Number of call sites rewritten to go through a type object.
    pub fn type_calls(&self) -> usize {
        self.type_calls
    }
}

/// Translate a dialect chunk into plain Lua. `chunk_name` is only used in errors.
///
/// Errors display as `chunk:line:col: message` (Lua wording); nothing is produced for a chunk
/// with a syntax error.
pub fn translate(source: &str, chunk_name: &str) -> Result<Translation, SyntaxError> {
    translate_bytes(source.as_bytes(), chunk_name)
}

/// [`translate`] for sources that are not necessarily UTF-8 (Lua strings may hold any bytes).
pub fn translate_bytes(source: &[u8], chunk_name: &str) -> Result<Translation, SyntaxError> {
    translate_raw(source).map_err(|e| e.with_chunk(chunk_name))
}

pub(crate) fn translate_raw(src: &[u8]) -> Result<Translation, RawError> {
    let toks = lexer::tokenize(src)?;
    let mut p = Parser::new(src, toks);
    p.chunk()?;

    let declared: Vec<&[u8]> = p.decls.iter().map(|d| d.decl.name().text(src)).collect();
    let mut edits = std::mem::take(&mut p.edits);
    if src.starts_with(lexer::UTF8_BOM) {
        // Lua 5.4's loadbuffer does not skip a byte order mark: blank it (first edit).
        edits.insert(
            0,
            emit::Edit::Blank {
                start: 0,
                end: lexer::UTF8_BOM.len() as u32,
                semi: false,
            },
        );
    }
    let mut type_calls = 0usize;
    for c in std::mem::take(&mut p.call_sites) {
        if !(is_builtin_type_name(c.name) || declared.contains(&c.name)) {
            continue;
        }
        type_calls += 1;
        match c.method {
            None => edits.push(emit::Edit::Insert {
                at: c.at,
                text: emit::TYPE_TABLE_PREFIX,
            }),
            Some(m) => {
                // `X:m(a)` → `__wippy_T[k](__wippy_T.X,a)`; see `parser::MethodCall`.
                let head = format!("{TYPE_TABLE_LOCAL}[{}]({TYPE_TABLE_LOCAL}.", m.index);
                edits.push(emit::Edit::Replace {
                    start: c.at,
                    end: c.at,
                    text: head.into_bytes(),
                });
                let sep: &[u8] = if m.empty_args { b"" } else { b"," };
                edits.push(emit::Edit::Replace {
                    start: m.cut_start,
                    end: m.cut_end,
                    text: sep.to_vec(),
                });
                if let Some(at) = m.close_at {
                    edits.push(emit::Edit::Insert { at, text: ")" });
                }
            }
        }
    }
    if type_calls > 0 {
        // Parser edits are sorted; the stable sort merges the call edits in (nearly linear).
        // A `)` closing a rewritten call goes before any edit starting at the same offset.
        edits.sort_by_key(|e| (emit::edit_start(e), !matches!(e, emit::Edit::Insert { .. })));
    }

    let mut prelude = Vec::new();
    let needs_type_runtime = !declared.is_empty() || type_calls > 0;
    if needs_type_runtime {
        if type_calls > 0 {
            prelude.extend_from_slice(b"local ");
            prelude.extend_from_slice(TYPE_TABLE_LOCAL.as_bytes());
            prelude.push(b'=');
        }
        prelude.extend_from_slice(TYPES_ENTRY_GLOBAL.as_bytes());
        prelude.push(b'(');
        if p.decls.is_empty() {
            prelude.extend_from_slice(b"nil");
        } else {
            let mut desc = Vec::new();
            for d in &p.decls {
                if !desc.is_empty() {
                    desc.push(b'\n');
                }
                desc.extend_from_slice(&src[d.start as usize..d.end as usize]);
            }
            emit::lua_quote(&desc, &mut prelude);
        }
        prelude.extend_from_slice(b",_ENV,");
        prelude.extend_from_slice(runtime::CALL_FACTORY.as_bytes());
        prelude.extend_from_slice(b");");
    }

    let code = emit::assemble(src, &prelude, &edits);
    Ok(Translation {
        code,
        needs_type_runtime,
        declared_types: declared
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect(),
        type_calls,
    })
}

#[cfg(test)]
mod tests;
