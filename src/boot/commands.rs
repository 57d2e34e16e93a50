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
    /// `meta.command.use_case` (`run` when absent; `test` marks the `wippy test` entry).
    pub use_case: String,
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
        use_case: c
            .get("use_case")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or("run")
            .to_string(),
    })
}

/// The entrypoint of a use case (`test` for `wippy test`): the only command declaring it, or
/// the one of several marked `main: true`.
///
/// # Errors
/// `NotFound` "no test entrypoint found (declare meta.command.use_case: test on a process
/// entry)"; `Invalid` "several test entrypoints (a:x, a:y) and none is marked main" or
/// "several test entrypoints are marked main (a:x, a:y)".
pub fn entrypoint(entries: &[Arc<Entry>], use_case: &str) -> Result<CommandInfo, Error> {
    let all: Vec<CommandInfo> = entries
        .iter()
        .filter_map(|e| command_of(e))
        .filter(|c| c.use_case == use_case)
        .collect();
    let ids = |v: &[&CommandInfo]| {
        v.iter()
            .map(|c| c.entry.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match all.len() {
        0 => Err(Error::new(
            Kind::NOT_FOUND,
            format!(
                "no {use_case} entrypoint found (declare meta.command.use_case: {use_case} on a process entry)"
            ),
        )
        .with_retryable(Some(false))),
        1 => Ok(all.into_iter().next().expect("one")),
        _ => {
            let mains: Vec<&CommandInfo> = all.iter().filter(|c| c.main).collect();
            match mains.len() {
                1 => Ok(mains[0].clone()),
                0 => Err(Error::new(
                    Kind::INVALID,
                    format!(
                        "several {use_case} entrypoints ({}) and none is marked main",
                        ids(&all.iter().collect::<Vec<_>>())
                    ),
                )
                .with_retryable(Some(false))),
                _ => Err(Error::new(
                    Kind::INVALID,
                    format!("several {use_case} entrypoints are marked main ({})", ids(&mains)),
                )
                .with_retryable(Some(false))),
            }
        }
    }
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

    fn test_cmd(id: &str, main: bool) -> Arc<Entry> {
        Arc::new(Entry::new(id, "process.lua").with_meta(
            "command",
            Value::Map(vec![
                (Value::str("name"), Value::str(id)),
                (Value::str("use_case"), Value::str("test")),
                (Value::str("main"), Value::Bool(main)),
            ]),
        ))
    }

    #[test]
    fn test_entrypoint_selection() {
        let plain = cmd("a:cli", "process.lua", "hello");
        assert_eq!(
            entrypoint(std::slice::from_ref(&plain), "test")
                .unwrap_err()
                .to_string(),
            "no test entrypoint found (declare meta.command.use_case: test on a process entry)"
        );
        let one = vec![plain.clone(), test_cmd("a:t1", false)];
        assert_eq!(entrypoint(&one, "test").unwrap().entry.to_string(), "a:t1");
        let two = vec![test_cmd("a:t1", false), test_cmd("a:t2", false)];
        assert_eq!(
            entrypoint(&two, "test").unwrap_err().to_string(),
            "several test entrypoints (a:t1, a:t2) and none is marked main"
        );
        let main = vec![test_cmd("a:t1", false), test_cmd("a:t2", true)];
        assert_eq!(entrypoint(&main, "test").unwrap().entry.to_string(), "a:t2");
        let mains = vec![test_cmd("a:t1", true), test_cmd("a:t2", true)];
        assert_eq!(
            entrypoint(&mains, "test").unwrap_err().to_string(),
            "several test entrypoints are marked main (a:t1, a:t2)"
        );
    }
}
