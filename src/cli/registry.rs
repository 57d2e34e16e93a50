//! `wippy registry list|show|versions|rollback` — offline views of the project's registry.
//!
//! `list` and `show` load the project like `wippy run` does (lock file, files, pipeline),
//! replay the registry history onto it when a persistent history exists, and query the
//! result without booting anything: every kind is applied as plain data, so no kind manager
//! runs and nothing is started. What they print is the state the next `wippy run` starts
//! from.
//!
//! `list` filters with the finder: `--kind`, `--ns`, `--name` (globs with one `*`) and
//! `--meta` (repeatable, AND-combined): `field=value` (equality; `true`/`false` and numbers
//! are typed), `field~regex`, `field*substr`, `field^prefix`, `field$suffix`; the operator may
//! also follow `=` (`field=~regex`). Output: a table (`ID  KIND`, then `Total: N entries`),
//! `--json` or `--yaml`.
//!
//! `versions` and `rollback <version>` need `registry.history_type: sqlite`: the history in
//! memory ends with the process. `rollback` moves the head; the next boot comes up at that
//! version.

use std::path::Path;
use std::sync::Arc;

use clap::{Args, Subcommand};
use wippy_rt::Value;

use super::{GlobalArgs, ProjectArgs, fail, init_logging};
use crate::boot::BootError;
use crate::config::schema::coerce_cli;
use crate::config::{Config, HistoryType};
use crate::loader::{LoadOptions, load_project};
use crate::registry::open::{VersionRow, list_versions, rollback_offline};
use crate::registry::transition::DEFAULT_INTERNAL_KINDS;
use crate::registry::{
    DepResolver, Entry, History, NoHistory, Registry, RegistryOptions, SqliteHistory,
};

/// `wippy registry …`.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// List entries (optionally filtered).
    List(ListArgs),
    /// Show one entry.
    Show(ShowArgs),
    /// List the versions recorded in the SQLite history.
    Versions(VersionsArgs),
    /// Move the SQLite history head to a version (applied at the next boot).
    Rollback(RollbackArgs),
}

/// `wippy registry list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Project and configuration.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Kind glob (`function.lua*`).
    #[arg(short = 'k', long)]
    pub kind: Option<String>,
    /// Namespace glob.
    #[arg(short = 'n', long)]
    pub ns: Option<String>,
    /// Name glob.
    #[arg(long)]
    pub name: Option<String>,
    /// Metadata filter (repeatable): field=value, field~regex, field*substr, field^prefix,
    /// field$suffix.
    #[arg(long = "meta", value_name = "FILTER")]
    pub meta: Vec<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// YAML output.
    #[arg(long)]
    pub yaml: bool,
}

/// `wippy registry show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Entry id (`ns:name`, or a name that is unique).
    pub id: String,
    /// Project and configuration.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Show only this field of the entry data.
    #[arg(short = 'f', long)]
    pub field: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// YAML output.
    #[arg(long)]
    pub yaml: bool,
    /// Raw field value (with --field).
    #[arg(long)]
    pub raw: bool,
}

/// `wippy registry versions`.
#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// Project and configuration.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `wippy registry rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Target version.
    pub version: u64,
    /// Project and configuration.
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Run a registry command; returns the exit code.
pub fn run(g: &GlobalArgs, cmd: RegistryCommand) -> i32 {
    let project = match &cmd {
        RegistryCommand::List(a) => &a.project,
        RegistryCommand::Show(a) => &a.project,
        RegistryCommand::Versions(a) => &a.project,
        RegistryCommand::Rollback(a) => &a.project,
    };
    let dir = project.dir.clone();
    let cfg = match Config::load(&project.sources(g, &dir)) {
        Ok(c) => c,
        Err(e) => return fail(g, BootError::Config(e)),
    };
    init_logging(g, Some(&cfg), log::LevelFilter::Warn);
    let r = match cmd {
        RegistryCommand::List(a) => list(&dir, &cfg, &a),
        RegistryCommand::Show(a) => show(&dir, &cfg, &a),
        RegistryCommand::Versions(a) => versions(&dir, &cfg, a.json),
        RegistryCommand::Rollback(a) => rollback(&dir, &cfg, a.version),
    };
    match r {
        Ok(()) => 0,
        Err(e) => fail(g, e),
    }
}

fn sqlite_path(cfg: &Config, dir: &Path) -> std::path::PathBuf {
    let p = &cfg.registry.history_path;
    if p.is_absolute() {
        p.clone()
    } else {
        dir.join(p)
    }
}

/// The project's entries at the history head (files + persisted history), as plain data.
pub fn load_entries(dir: &Path, cfg: &Config) -> Result<Vec<Arc<Entry>>, String> {
    let project = load_project(dir, cfg, &LoadOptions::default())
        .map_err(|e| BootError::Project(e).to_string())?;
    let entries = project.into_entries();
    let history: Box<dyn History> = match cfg.registry.history_type {
        HistoryType::Sqlite if sqlite_path(cfg, dir).is_file() => Box::new(
            SqliteHistory::open(sqlite_path(cfg, dir)).map_err(|e| format!("registry: {e}"))?,
        ),
        _ => Box::new(NoHistory),
    };
    // Every kind is internal: applied directly, no listener involved.
    let mut kinds: Vec<String> = DEFAULT_INTERNAL_KINDS
        .iter()
        .map(|s| s.to_string())
        .collect();
    for e in &entries {
        if !kinds.contains(&e.kind) {
            kinds.push(e.kind.clone());
        }
    }
    if history.is_enabled() {
        for (v, _) in history.versions().map_err(|e| format!("registry: {e}"))? {
            if let Some(cs) = history.changeset(v).map_err(|e| format!("registry: {e}"))? {
                for op in cs.ops {
                    if !kinds.contains(&op.entry.kind) {
                        kinds.push(op.entry.kind.clone());
                    }
                }
            }
        }
    }
    let reg = Registry::new(RegistryOptions {
        history,
        internal_kinds: kinds,
        resolver: Arc::new(DepResolver::with_core_patterns()),
        ..RegistryOptions::default()
    })
    .map_err(|e| format!("registry: {e}"))?;
    reg.load_state(entries)
        .map_err(|e| format!("registry: {e}"))?;
    let mut out = reg.snapshot().entries();
    out.sort_by_key(|e| e.id.to_string());
    Ok(out)
}

/// Split a `--meta` filter into the finder key and value.
pub fn meta_criterion(filter: &str) -> Option<(String, Value)> {
    let i = filter.find(['=', '~', '*', '^', '$'])?;
    if i == 0 {
        return None;
    }
    let field = &filter[..i];
    let mut op = filter.as_bytes()[i];
    let mut rest = &filter[i + 1..];
    if op == b'='
        && let Some(&next) = rest.as_bytes().first()
        && matches!(next, b'~' | b'*' | b'^' | b'$')
    {
        op = next;
        rest = &rest[1..];
    }
    Some(match op {
        b'=' => (format!("meta.{field}"), coerce_cli(rest)),
        other => (format!("{}meta.{field}", other as char), Value::str(rest)),
    })
}

fn list(dir: &Path, cfg: &Config, a: &ListArgs) -> Result<(), String> {
    let entries = load_entries(dir, cfg)?;
    let mut crit: Vec<(Value, Value)> = Vec::new();
    for (k, v) in [(".kind", &a.kind), (".ns", &a.ns), (".name", &a.name)] {
        if let Some(v) = v {
            crit.push((Value::str(k), Value::str(v)));
        }
    }
    for m in &a.meta {
        let (k, v) = meta_criterion(m).ok_or_else(|| {
            format!("invalid --meta filter {m:?} (expected field=value, field~regex, field*substr, field^prefix or field$suffix)")
        })?;
        crit.push((Value::from(k), v));
    }
    let finder = crate::registry::Finder::default();
    let q = finder.compile_value(&Value::Map(crit));
    let found: Vec<&Arc<Entry>> = entries.iter().filter(|e| q.matches(e)).collect();
    if a.json || a.yaml {
        let rows: Vec<serde_json::Value> = found
            .iter()
            .map(|e| {
                let mut m = serde_json::Map::new();
                m.insert("id".into(), e.id.to_string().into());
                m.insert("kind".into(), e.kind.clone().into());
                if e.meta.as_map().is_some_and(|m| !m.is_empty()) {
                    m.insert(
                        "meta".into(),
                        serde_json::to_value(&e.meta).unwrap_or_default(),
                    );
                }
                serde_json::Value::Object(m)
            })
            .collect();
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
            );
        } else {
            print!(
                "{}",
                serde_yaml::to_string(&rows).map_err(|e| e.to_string())?
            );
        }
        return Ok(());
    }
    if found.is_empty() {
        println!("No entries found");
        return Ok(());
    }
    let w_id = found
        .iter()
        .map(|e| e.id.to_string().len())
        .max()
        .unwrap_or(0)
        .clamp(2, 50);
    let w_kind = found
        .iter()
        .map(|e| e.kind.len())
        .max()
        .unwrap_or(0)
        .clamp(4, 30);
    println!("{:<w_id$}  KIND", "ID");
    println!("{}  {}", "-".repeat(w_id), "-".repeat(w_kind));
    for e in &found {
        println!(
            "{:<w_id$}  {}",
            clip(&e.id.to_string(), w_id),
            clip(&e.kind, w_kind)
        );
    }
    println!("\nTotal: {} entries", found.len());
    Ok(())
}

fn clip(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let keep: String = s.chars().take(w.saturating_sub(3)).collect();
    format!("{keep}...")
}

fn show(dir: &Path, cfg: &Config, a: &ShowArgs) -> Result<(), String> {
    let entries = load_entries(dir, cfg)?;
    let mut hit: Option<&Arc<Entry>> = entries.iter().find(|e| e.id.to_string() == a.id);
    if hit.is_none() {
        let by_name: Vec<&Arc<Entry>> = entries.iter().filter(|e| e.id.name() == a.id).collect();
        if by_name.len() > 1 {
            return Err(format!(
                "ambiguous entry name {:?}, use full ID (namespace:name)",
                a.id
            ));
        }
        hit = by_name.first().copied();
    }
    let e = hit.ok_or_else(|| format!("entry not found: {}", a.id))?;
    if let Some(f) = &a.field {
        let v = e
            .data
            .get(f)
            .ok_or_else(|| format!("field {f:?} not found in entry data"))?;
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(v).map_err(|e| e.to_string())?
            );
        } else if a.raw || (!a.yaml && v.as_str().is_some()) {
            match v.as_str() {
                Some(s) if a.raw => print!("{s}"),
                Some(s) => println!("{s}"),
                None => print!("{}", scalar(v)),
            }
        } else {
            print!("{}", serde_yaml::to_string(v).map_err(|e| e.to_string())?);
        }
        return Ok(());
    }
    let view = crate::registry::entry::EntryView(e);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&view).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    if a.yaml || a.raw {
        print!(
            "{}",
            serde_yaml::to_string(&view).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!("ID:   {}", e.id);
    println!("Kind: {}", e.kind);
    if let Some(m) = e.meta.as_map().filter(|m| !m.is_empty()) {
        println!("\nMetadata:");
        let mut rows: Vec<(String, String)> = m
            .iter()
            .map(|(k, v)| (k.as_str().unwrap_or("?").to_string(), scalar(v)))
            .collect();
        rows.sort();
        for (k, v) in rows {
            println!("  {k}: {v}");
        }
    }
    if !e.data.is_nil() {
        println!("\nData:");
        let text = serde_yaml::to_string(&e.data).map_err(|e| e.to_string())?;
        for line in text.lines().filter(|l| !l.is_empty()) {
            println!("  {line}");
        }
    }
    Ok(())
}

/// A value on one line: strings bare, everything else as compact JSON.
fn scalar(v: &Value) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None => serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}")),
    }
}

fn sqlite_history(dir: &Path, cfg: &Config) -> Result<SqliteHistory, String> {
    if cfg.registry.history_type != HistoryType::Sqlite {
        let t = match cfg.registry.history_type {
            HistoryType::Memory => "memory",
            HistoryType::None => "none",
            HistoryType::Sqlite => "sqlite",
        };
        return Err(format!(
            "registry versions are only kept with registry.history_type: sqlite (current: {t})"
        ));
    }
    let p = sqlite_path(cfg, dir);
    if !p.is_file() {
        return Err(format!("no registry history at {}", p.display()));
    }
    SqliteHistory::open(&p).map_err(|e| format!("registry: {e}"))
}

fn versions(dir: &Path, cfg: &Config, json: bool) -> Result<(), String> {
    let h = sqlite_history(dir, cfg)?;
    let rows: Vec<VersionRow> = list_versions(&h).map_err(|e| format!("registry: {e}"))?;
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "version": r.version.id,
                    "parent": r.version.parent,
                    "ops": r.ops,
                    "current": r.current,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!("{:<8}  {:<8}  {:>5}  CURRENT", "VERSION", "PARENT", "OPS");
    for r in rows {
        let parent = r
            .version
            .parent
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        let line = format!(
            "{:<8}  {:<8}  {:>5}  {}",
            r.version.id,
            parent,
            r.ops,
            if r.current { "*" } else { "" }
        );
        println!("{}", line.trim_end());
    }
    Ok(())
}

fn rollback(dir: &Path, cfg: &Config, version: u64) -> Result<(), String> {
    let h = sqlite_history(dir, cfg)?;
    let before = h.head().map_err(|e| format!("registry: {e}"))?;
    rollback_offline(&h, version).map_err(|e| format!("rollback: {e}"))?;
    println!("registry head moved from version {before} to {version}; the next run starts there");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_filters() {
        let c = |s: &str| meta_criterion(s).map(|(k, v)| format!("{k} {v:?}"));
        assert_eq!(c("type=api").as_deref(), Some("meta.type \"api\""));
        assert_eq!(c("enabled=true").as_deref(), Some("meta.enabled true"));
        assert_eq!(c("name~^a.*$").as_deref(), Some("~meta.name \"^a.*$\""));
        assert_eq!(c("name=~^a").as_deref(), Some("~meta.name \"^a\""));
        assert_eq!(c("tags*web").as_deref(), Some("*meta.tags \"web\""));
        assert_eq!(c("path^/api").as_deref(), Some("^meta.path \"/api\""));
        assert_eq!(c("file$.lua").as_deref(), Some("$meta.file \".lua\""));
        assert_eq!(c("glob=a*b").as_deref(), Some("meta.glob \"a*b\""));
        assert_eq!(c("=x"), None);
        assert_eq!(c("novalue"), None);
    }
}
