//! Lua source entries: parsing, compiling at accept time, the code store and import plans
//! (spec `lua-api.md` §1.7, §3.1; `runtime-internals.md` §10.5, §11.1, §11.9).
//!
//! * [`LuaEntry::parse`] reads a `process.lua` / `function.lua` / `library.lua` entry:
//!   `source` (required, already inlined by the loader), `method` (functions: required;
//!   processes: default `main`), `modules` (built-in module names, no `:`; unknown names are
//!   rejected), `imports` (`alias: id`; an id without namespace — `json`, `:json` — is a
//!   built-in module), `pool` (functions). The source goes through the typed-Lua front end
//!   ([`translate`]) and is compiled once in a scratch state, so a syntax error rejects the
//!   entry with `<entry id>:<line>: <message>`. Precompiled `*.lua.bc` kinds are rejected.
//! * [`CodeStore`] maps entry ids to their current [`LuaEntry`]; every change bumps an epoch
//!   (function pools retire workers built from older code).
//! * [`CodeStore::plan`] resolves an entry's transitive imports into a [`Plan`]: the built-in
//!   modules to install, and the library entries to run in dependency order with the aliases
//!   they are bound to — one flat global namespace per state, as upstream. A missing import is
//!   a `NotFound` error (the registry retries such rejections after the other entries of the
//!   change were applied), an import cycle or two targets under one alias are `Invalid`.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use fnv::FnvHashMap;
use mlua::Lua;
use wippy_rt::{Error, Kind, Value};

use crate::lua::frontend::TranslationCache;
use crate::lua::modules;
use crate::registry::{Entry, Id};

/// Which Lua kind an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LuaKind {
    /// `process.lua`.
    Process,
    /// `function.lua`.
    Function,
    /// `library.lua`.
    Library,
}

impl LuaKind {
    /// The kind of an entry kind string (`*.bc` variants included, to reject them).
    pub fn of(kind: &str) -> Option<LuaKind> {
        match kind.strip_suffix(".bc").unwrap_or(kind) {
            "process.lua" => Some(LuaKind::Process),
            "function.lua" => Some(LuaKind::Function),
            "library.lua" => Some(LuaKind::Library),
            _ => None,
        }
    }
}

/// One import: alias → built-in module or Lua entry.
#[derive(Clone, Debug, PartialEq)]
pub enum Import {
    /// A built-in module (`imports: {h: json}`).
    Module(String),
    /// Another Lua entry (usually a library).
    Entry(String),
}

/// A parsed and compiled Lua entry.
#[derive(Debug)]
pub struct LuaEntry {
    /// `ns:name`.
    pub id: String,
    /// The entry id as shared text (chunk name, `print` location).
    pub id_arc: Arc<str>,
    /// The kind.
    pub kind: LuaKind,
    /// Plain Lua 5.4 source (translated from the dialect).
    pub code: Arc<str>,
    /// The type runtime must be installed before loading [`code`](Self::code).
    pub needs_type_runtime: bool,
    /// The exported function (`main` for processes when absent).
    pub method: String,
    /// `modules:`.
    pub modules: Vec<String>,
    /// `imports:` in declaration order.
    pub imports: Vec<(String, Import)>,
    /// `pool:` (functions).
    pub pool: Value,
    /// The entry's meta (`meta.command`, `meta.options`).
    pub meta: Value,
}

impl LuaEntry {
    /// Parse, translate and compile `entry` (see the module docs).
    pub fn parse(entry: &Entry) -> Result<LuaEntry, Error> {
        let id = entry.id.to_string();
        let kind = LuaKind::of(&entry.kind)
            .ok_or_else(|| invalid(&id, format!("not a Lua entry kind: {}", entry.kind)))?;
        if entry.kind.ends_with(".bc") {
            return Err(invalid(
                &id,
                "precompiled bytecode entries are not supported (run from source)",
            ));
        }
        let data = &entry.data;
        let source = match data.get("source") {
            Some(Value::Str(s)) => s.to_string_lossy().into_owned(),
            Some(Value::Nil) | None => return Err(invalid(&id, "source is required")),
            Some(other) => {
                return Err(invalid(
                    &id,
                    format!("source must be a string, got {}", other.type_name()),
                ));
            }
        };
        let method = match data.get("method") {
            Some(Value::Str(s)) if !s.is_empty() => s.to_string_lossy().into_owned(),
            Some(Value::Str(_)) | Some(Value::Nil) | None => match kind {
                LuaKind::Function => return Err(invalid(&id, "method is required")),
                _ => "main".to_string(),
            },
            Some(other) => {
                return Err(invalid(
                    &id,
                    format!("method must be a string, got {}", other.type_name()),
                ));
            }
        };
        let modules = parse_modules(&id, data.get("modules"))?;
        let imports = parse_imports(&id, data.get("imports"))?;
        let (code, needs_type_runtime) = translate(&source, &id)?;
        compile_check(&id, &code)?;
        Ok(LuaEntry {
            id_arc: Arc::from(id.as_str()),
            id,
            kind,
            code: Arc::from(code),
            needs_type_runtime,
            method,
            modules,
            imports,
            pool: data.get("pool").cloned().unwrap_or(Value::Nil),
            meta: entry.meta.clone(),
        })
    }
}

#[cold]
fn invalid(id: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{id}: {msg}")).with_detail("entry", id)
}

fn parse_modules(id: &str, v: Option<&Value>) -> Result<Vec<String>, Error> {
    let items = match v {
        None | Some(Value::Nil) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(Value::Map(m)) if m.is_empty() => return Ok(Vec::new()),
        Some(other) => {
            return Err(invalid(
                id,
                format!("modules must be a list, got {}", other.type_name()),
            ));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(name) = item.as_str() else {
            return Err(invalid(id, "modules must be a list of strings"));
        };
        if name.contains(':') {
            return Err(invalid(
                id,
                format!("invalid module name '{name}' (modules are names without a namespace)"),
            ));
        }
        if !modules::is_registered(name) {
            return Err(invalid(id, format!("unknown module '{name}'")));
        }
        if !out.iter().any(|m| m == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

fn parse_imports(id: &str, v: Option<&Value>) -> Result<Vec<(String, Import)>, Error> {
    let items = match v {
        None | Some(Value::Nil) => return Ok(Vec::new()),
        Some(Value::Map(m)) => m,
        Some(Value::Array(a)) if a.is_empty() => return Ok(Vec::new()),
        Some(other) => {
            return Err(invalid(
                id,
                format!(
                    "imports must be a map of alias: id, got {}",
                    other.type_name()
                ),
            ));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items {
        let (Some(alias), Some(target)) = (k.as_str(), v.as_str()) else {
            return Err(invalid(id, "imports must map alias strings to id strings"));
        };
        let tid = Id::parse(target);
        let imp = if tid.ns().is_empty() {
            if !modules::is_registered(tid.name()) {
                return Err(invalid(
                    id,
                    format!("unknown module '{}' imported as '{alias}'", tid.name()),
                ));
            }
            Import::Module(tid.name().to_string())
        } else {
            Import::Entry(tid.to_string())
        };
        out.push((alias.to_string(), imp));
    }
    Ok(out)
}

/// The typed-Lua front end: plain Lua text with identical line numbers, and whether the type
/// runtime is needed.
pub fn translate(source: &str, chunk: &str) -> Result<(String, bool), Error> {
    frontend_translate(source, chunk)
}

/// The one place that knows how sources reach the front end (a process-wide translation
/// cache: re-registering an unchanged source costs a hash and a compare).
fn frontend_translate(source: &str, chunk: &str) -> Result<(String, bool), Error> {
    static CACHE: LazyLock<TranslationCache> = LazyLock::new(TranslationCache::default);
    match CACHE.get(source, chunk) {
        Ok(t) => Ok((t.code_lossy().into_owned(), t.needs_type_runtime())),
        Err(e) => Err(Error::invalid(format!("syntax error: {e}")).with_detail("entry", chunk)),
    }
}

thread_local! {
    /// A bare state used only to compile-check sources at accept time.
    static SCRATCH: RefCell<Option<Lua>> = const { RefCell::new(None) };
}

/// Compile `code` once to report syntax errors as `Invalid` `"<id>:<line>: <message>"`.
fn compile_check(id: &str, code: &str) -> Result<(), Error> {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let lua = s.get_or_insert_with(|| {
            Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::new())
                .expect("creating a bare Lua state")
        });
        match lua.load(code).set_name(format!("={id}")).into_function() {
            Ok(_) => Ok(()),
            Err(mlua::Error::SyntaxError { message, .. }) => {
                Err(Error::invalid(format!("syntax error: {message}")).with_detail("entry", id))
            }
            Err(e) => Err(Error::invalid(format!("{id}: {e}")).with_detail("entry", id)),
        }
    })
}

/// What a state needs before an entry runs: modules, libraries in dependency order, aliases.
#[derive(Debug, Default)]
pub struct Plan {
    /// Built-in modules installed under their own names.
    pub modules: Vec<String>,
    /// Built-in modules bound under another alias: `(alias, module)`.
    pub module_aliases: Vec<(String, String)>,
    /// Libraries to run, dependencies first, each with the aliases it is bound to.
    pub libraries: Vec<(Arc<LuaEntry>, Vec<String>)>,
    /// Some chunk in the closure needs the type runtime.
    pub needs_type_runtime: bool,
}

/// Current Lua entries by id.
#[derive(Default)]
pub struct CodeStore {
    entries: RwLock<FnvHashMap<String, Arc<LuaEntry>>>,
    epoch: AtomicU64,
    plans: RwLock<FnvHashMap<String, (u64, Arc<Plan>)>>,
}

impl CodeStore {
    /// Store (or replace) an entry.
    pub fn put(&self, e: Arc<LuaEntry>) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(e.id.clone(), e);
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Remove an entry.
    pub fn remove(&self, id: &str) -> Option<Arc<LuaEntry>> {
        let r = self
            .entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        r
    }

    /// The current entry `id`.
    pub fn get(&self, id: &str) -> Option<Arc<LuaEntry>> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Changes so far (bumped by every put/remove).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// All entries (sorted by id).
    pub fn entries(&self) -> Vec<Arc<LuaEntry>> {
        let mut v: Vec<_> = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The load plan of `entry` (cached until the next change).
    pub fn plan(&self, entry: &LuaEntry) -> Result<Arc<Plan>, Error> {
        let epoch = self.epoch();
        if let Some((e, p)) = self
            .plans
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&entry.id)
            && *e == epoch
        {
            return Ok(p.clone());
        }
        let plan = Arc::new(self.build_plan(entry)?);
        self.plans
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(entry.id.clone(), (epoch, plan.clone()));
        Ok(plan)
    }

    fn build_plan(&self, root: &LuaEntry) -> Result<Plan, Error> {
        let mut plan = Plan::default();
        let mut aliases: FnvHashMap<String, String> = FnvHashMap::default();
        let mut lib_index: FnvHashMap<String, usize> = FnvHashMap::default();
        let mut visiting: Vec<String> = Vec::new();
        self.visit(root, &mut plan, &mut aliases, &mut lib_index, &mut visiting)?;
        plan.needs_type_runtime |= root.needs_type_runtime;
        Ok(plan)
    }

    fn visit(
        &self,
        e: &LuaEntry,
        plan: &mut Plan,
        aliases: &mut FnvHashMap<String, String>,
        lib_index: &mut FnvHashMap<String, usize>,
        visiting: &mut Vec<String>,
    ) -> Result<(), Error> {
        visiting.push(e.id.clone());
        for m in &e.modules {
            if !plan.modules.contains(m) {
                plan.modules.push(m.clone());
            }
        }
        for (alias, imp) in &e.imports {
            let target_key = match imp {
                Import::Module(m) => format!(":{m}"),
                Import::Entry(id) => id.clone(),
            };
            if let Some(prev) = aliases.get(alias)
                && *prev != target_key
            {
                return Err(Error::invalid(format!(
                    "{}: import alias '{alias}' refers to both {prev} and {target_key}",
                    e.id
                ))
                .with_detail("entry", e.id.as_str()));
            }
            aliases.insert(alias.clone(), target_key);
            match imp {
                Import::Module(m) => {
                    if alias == m {
                        if !plan.modules.contains(m) {
                            plan.modules.push(m.clone());
                        }
                    } else if !plan.module_aliases.iter().any(|(a, _)| a == alias) {
                        plan.module_aliases.push((alias.clone(), m.clone()));
                    }
                }
                Import::Entry(id) => {
                    if visiting.contains(id) {
                        return Err(
                            Error::invalid(format!("{}: import cycle through {id}", e.id))
                                .with_detail("entry", e.id.as_str()),
                        );
                    }
                    if let Some(&i) = lib_index.get(id) {
                        if !plan.libraries[i].1.contains(alias) {
                            plan.libraries[i].1.push(alias.clone());
                        }
                        continue;
                    }
                    let lib = self.get(id).ok_or_else(|| {
                        Error::new(Kind::NOT_FOUND, format!("{}: import not found: {id}", e.id))
                            .with_detail("entry", e.id.as_str())
                            .with_detail("import", id.as_str())
                    })?;
                    self.visit(&lib, plan, aliases, lib_index, visiting)?;
                    plan.needs_type_runtime |= lib.needs_type_runtime;
                    lib_index.insert(id.clone(), plan.libraries.len());
                    plan.libraries.push((lib, vec![alias.clone()]));
                }
            }
        }
        visiting.pop();
        Ok(())
    }
}

impl std::fmt::Debug for CodeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeStore")
            .field("epoch", &self.epoch())
            .finish_non_exhaustive()
    }
}

/// The id of a meta command entry (`meta.command.name`), if the entry is a command.
pub fn command_name(e: &LuaEntry) -> Option<&str> {
    e.meta
        .get("command")
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
}
