//! CLI commands declared by process entries (`meta.command`, spec `lua-api.md` §5.2).
//!
//! A command is a `process.*` entry whose `meta.command` is a mapping with a non-empty
//! `name` (`short`: description for `wippy run list`; `main`: default command of a module).
//! Names should be unique; when two entries claim one name the first in registry order wins
//! and the others are reported by [`duplicates`].

use std::sync::Arc;

use wippy_rt::{Error, Kind, Value};

use crate::registry::{Entry, Id};

/// One command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandInfo {
    /// `meta.command.name`.
    pub name: String,
    /// `meta.command.short`.
    pub short: String,
    /// The process entry.
    pub entry: Id,
    /// `meta.command.main`.
    pub main: bool,
}

fn command_of(e: &Entry) -> Option<CommandInfo> {
    if !e.kind.starts_with("process.") {
        return None;
    }
    let c = e.meta.get("command")?;
    let name = c.get("name").and_then(Value::as_str)?.trim();
    if name.is_empty() {
        return None;
    }
    Some(CommandInfo {
        name: name.to_string(),
        short: c
            .get("short")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        entry: e.id.clone(),
        main: c.get("main").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// Every command in entry order (as the original lists them: duplicates included, the first
/// of a duplicated name being the one that runs).
pub fn list(entries: &[Arc<Entry>]) -> Vec<CommandInfo> {
    entries.iter().filter_map(|e| command_of(e)).collect()
}

/// Names claimed by more than one entry, with the ids.
pub fn duplicates(entries: &[Arc<Entry>]) -> Vec<(String, Vec<Id>)> {
    let mut all: Vec<CommandInfo> = entries.iter().filter_map(|e| command_of(e)).collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out: Vec<(String, Vec<Id>)> = Vec::new();
    for c in all {
        match out.last_mut() {
            Some((n, ids)) if *n == c.name => ids.push(c.entry),
            _ => out.push((c.name, vec![c.entry])),
        }
    }
    out.retain(|(_, ids)| ids.len() > 1);
    out
}

/// The command named `name`.
///
/// # Errors
/// `NotFound` `command "<name>" not found. Use 'wippy run list' to see available commands`
/// (the original's text).
pub fn find(entries: &[Arc<Entry>], name: &str) -> Result<CommandInfo, Error> {
    entries
        .iter()
        .filter_map(|e| command_of(e))
        .find(|c| c.name == name)
        .ok_or_else(|| {
            Error::new(
                Kind::NOT_FOUND,
                format!(
                    "command \"{name}\" not found. Use 'wippy run list' to see available commands"
                ),
            )
            .with_retryable(Some(false))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(id: &str, kind: &str, name: &str) -> Arc<Entry> {
        Arc::new(Entry::new(id, kind).with_meta(
            "command",
            Value::Map(vec![
                (Value::str("name"), Value::str(name)),
                (Value::str("short"), Value::str("does things")),
            ]),
        ))
    }

    #[test]
    fn finds_process_commands_only() {
        let es = vec![
            cmd("a:cli", "process.lua", "hello"),
            cmd("a:fn", "function.lua", "nope"),
            cmd("a:other", "process.lua", "hello"),
            cmd("a:z", "process.lua", "alpha"),
        ];
        let l = list(&es);
        assert_eq!(
            l.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["hello", "hello", "alpha"]
        );
        assert_eq!(find(&es, "hello").unwrap().entry.to_string(), "a:cli");
        assert_eq!(
            find(&es, "nope").unwrap_err().to_string(),
            "command \"nope\" not found. Use 'wippy run list' to see available commands"
        );
        assert_eq!(duplicates(&es).len(), 1);
    }
}
