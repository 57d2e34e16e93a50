//! The environment registry: `env.storage.*` and `env.variable` entries behind the `env` Lua
//! module (spec `lua-api.md` §2.10, §3.8.11; `[docs] en/system/env.md`).
//!
//! # Model
//!
//! * **Storages** hold raw key/value strings: `env.storage.memory` (volatile, writable),
//!   `env.storage.file` (`file_path`, `.env` lines `KEY=VALUE`; blank lines and `#` comments
//!   skipped, text after `#` on a value line dropped, no quote processing; `auto_create`
//!   creates a missing file, otherwise a missing file rejects the entry; writes rewrite the
//!   file), `env.storage.os` (the process environment, read-only), `env.storage.static`
//!   (`values`, read-only), `env.storage.router` (`storages: [ids]`: reads try each in order
//!   until one has the key — a `NotFound` continues, any other error stops; writes go to the
//!   first).
//! * **Variables** (`env.variable`: `storage` required, `variable` optional public name of
//!   `[A-Za-z0-9_]`, `default`, `readonly`) map a name onto a storage key: the public name when
//!   given, else the entry's name. The first variable to claim a public name keeps it.
//!
//! # Resolution (`env.get(key)`)
//!
//! `key` is looked up as a public variable name, then as an entry id, then (without `:`) as
//! `<caller's namespace>:<key>`. There is no fallback to the OS environment. An empty stored
//! value counts as unset; an unset variable gives its non-empty `default`, else `NotFound`
//! "environment variable not found". `env.set` on a `readonly` variable or a read-only storage
//! is `PermissionDenied`. `env.get_all()` lists the raw keys of every storage.
//!
//! Storages and variables are looked up when used, so entries may arrive in any order.
//! Placeholders `${env:NAME}` inside other kinds' data are resolved by those kinds at decode
//! time through [`EnvRegistry::lookup`]; this module does not rewrite entries.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use wippy_rt::{Error, Kind, Value};

use super::component::{BootCx, Component};
use crate::lua::modules::env::{EnvProvider, set_provider};
use crate::lua::vm::ProcessInfo;
use crate::registry::{Entry, Id, OpKind};

/// One storage.
enum Storage {
    Memory(Mutex<BTreeMap<String, String>>),
    File {
        path: PathBuf,
        values: Mutex<BTreeMap<String, String>>,
    },
    Os,
    Static(BTreeMap<String, String>),
    Router(Vec<Id>),
}

/// One `env.variable`.
#[derive(Clone, Debug)]
struct Variable {
    key: String,
    storage: Id,
    default: Option<String>,
    readonly: bool,
}

#[derive(Default)]
struct State {
    storages: HashMap<Id, Arc<Storage>>,
    variables: HashMap<Id, Variable>,
    /// Public name → variable id (first claim wins).
    public: HashMap<String, Id>,
}

/// The environment registry (one per application; installed as the `env` module provider).
#[derive(Default)]
pub struct EnvRegistry {
    state: RwLock<State>,
}

/// Maximum router nesting followed before giving up (a cycle of routers).
const MAX_ROUTER_DEPTH: usize = 16;

fn not_found() -> Error {
    Error::not_found("environment variable not found").with_retryable(Some(false))
}

fn denied(msg: &str) -> Error {
    Error::new(Kind::PERMISSION_DENIED, msg).with_retryable(Some(false))
}

/// Parse `.env` text (see the module docs).
fn parse_dotenv(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.split_once('#').map_or(v, |(v, _)| v);
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    out
}

fn render_dotenv(values: &BTreeMap<String, String>) -> String {
    values.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

fn str_field(e: &Entry, key: &str) -> Option<String> {
    e.data
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `0600` written as a YAML integer (600) or a string: read the digits as octal.
fn mode_field(e: &Entry, key: &str, default: u32) -> u32 {
    let digits = match e.data.get(key) {
        Some(Value::Int(i)) => i.to_string(),
        Some(v) => v.as_str().unwrap_or("").to_string(),
        None => return default,
    };
    u32::from_str_radix(digits.trim_start_matches("0o"), 8).unwrap_or(default)
}

fn build_storage(e: &Entry, dir: &std::path::Path) -> Result<Storage, Error> {
    let kind = e.kind.as_str();
    Ok(match kind {
        "env.storage.memory" => Storage::Memory(Mutex::default()),
        "env.storage.os" => Storage::Os,
        "env.storage.static" => {
            let mut values = BTreeMap::new();
            match e.data.get("values") {
                None | Some(Value::Nil) => {}
                Some(Value::Map(m)) => {
                    for (k, v) in m {
                        let text = match v {
                            Value::Str(_) => v.as_str().unwrap_or("").to_string(),
                            Value::Int(i) => i.to_string(),
                            Value::Float(f) => f.to_string(),
                            Value::Bool(b) => b.to_string(),
                            _ => {
                                return Err(Error::invalid(format!(
                                    "values.{}: expected a string",
                                    k.as_str().unwrap_or("?")
                                )));
                            }
                        };
                        values.insert(k.as_str().unwrap_or("").to_string(), text);
                    }
                }
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "values must be a mapping, got {}",
                        other.type_name()
                    )));
                }
            }
            Storage::Static(values)
        }
        "env.storage.router" => {
            let list = e
                .data
                .get("storages")
                .and_then(Value::as_array)
                .unwrap_or(&[]);
            if list.is_empty() {
                return Err(Error::invalid(
                    "storages must be a non-empty list of storage ids",
                ));
            }
            let ids = list
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(|s| Id::parse_relative(s, e.id.ns()))
                        .ok_or_else(|| Error::invalid("storages must be a list of storage ids"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Storage::Router(ids)
        }
        "env.storage.file" => {
            let Some(p) = str_field(e, "file_path") else {
                return Err(Error::invalid("file_path is required"));
            };
            let path = dir.join(p);
            let auto = e.data.get("auto_create").and_then(Value::as_bool) == Some(true);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound && auto => {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(|err| {
                            Error::internal(format!("cannot create {}: {err}", parent.display()))
                        })?;
                        set_mode(parent, mode_field(e, "dir_mode", 0o755));
                    }
                    std::fs::write(&path, "").map_err(|err| {
                        Error::internal(format!("cannot create {}: {err}", path.display()))
                    })?;
                    set_mode(&path, mode_field(e, "file_mode", 0o644));
                    String::new()
                }
                Err(err) => {
                    return Err(Error::invalid(format!(
                        "cannot read env file {}: {err}",
                        path.display()
                    )));
                }
            };
            Storage::File {
                path,
                values: Mutex::new(parse_dotenv(&text)),
            }
        }
        other => return Err(Error::invalid(format!("unknown env storage kind {other}"))),
    })
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

fn build_variable(e: &Entry) -> Result<(Variable, Option<String>), Error> {
    let Some(storage) = str_field(e, "storage") else {
        return Err(Error::invalid("storage is required"));
    };
    let public = str_field(e, "variable");
    if let Some(p) = &public
        && !p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
    {
        return Err(Error::invalid(format!(
            "invalid variable name {p:?}: only A-Z, a-z, 0-9 and _ are allowed"
        )));
    }
    let default = match e.data.get("default") {
        None | Some(Value::Nil) => None,
        Some(Value::Int(i)) => Some(i.to_string()),
        Some(Value::Float(f)) => Some(f.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(v) => v.as_str().map(str::to_string),
    };
    Ok((
        Variable {
            key: public.clone().unwrap_or_else(|| e.id.name().to_string()),
            storage: Id::parse_relative(&storage, e.id.ns()),
            default,
            readonly: e.data.get("readonly").and_then(Value::as_bool) == Some(true),
        },
        public,
    ))
}

impl EnvRegistry {
    /// Apply one registry operation on an `env.*` entry.
    ///
    /// # Errors
    /// The entry's configuration problem (the registry rejects the entry).
    pub fn apply(&self, op: OpKind, e: &Entry, dir: &std::path::Path) -> Result<(), Error> {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        if e.kind == "env.variable" {
            if let Some(old) = st.variables.remove(&e.id) {
                let _ = old;
                st.public.retain(|_, id| *id != e.id);
            }
            if op == OpKind::Delete {
                return Ok(());
            }
            let (var, public) = build_variable(e)?;
            if let Some(p) = public {
                st.public.entry(p).or_insert_with(|| e.id.clone());
            }
            st.variables.insert(e.id.clone(), var);
        } else {
            st.storages.remove(&e.id);
            if op == OpKind::Delete {
                return Ok(());
            }
            let s = build_storage(e, dir)?;
            st.storages.insert(e.id.clone(), Arc::new(s));
        }
        Ok(())
    }

    fn variable(&self, caller_ns: &str, key: &str) -> Option<Variable> {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = st.public.get(key) {
            return st.variables.get(id).cloned();
        }
        if key.contains(':') {
            return st.variables.get(&Id::parse(key)).cloned();
        }
        st.variables
            .get(&Id::parse_relative(key, caller_ns))
            .cloned()
    }

    fn storage(&self, id: &Id) -> Option<Arc<Storage>> {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        st.storages.get(id).cloned()
    }

    fn read(&self, storage: &Id, key: &str, depth: usize) -> Result<Option<String>, Error> {
        let Some(s) = self.storage(storage) else {
            return Err(Error::not_found(format!(
                "env storage not found: {storage}"
            )));
        };
        Ok(match &*s {
            Storage::Memory(m) => m
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(key)
                .cloned(),
            Storage::File { values, .. } => values
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(key)
                .cloned(),
            Storage::Os => std::env::var(key).ok(),
            Storage::Static(v) => v.get(key).cloned(),
            Storage::Router(list) => {
                if depth >= MAX_ROUTER_DEPTH {
                    return Err(Error::invalid(format!(
                        "env storage router cycle at {storage}"
                    )));
                }
                for id in list {
                    match self.read(id, key, depth + 1) {
                        Ok(Some(v)) if !v.is_empty() => return Ok(Some(v)),
                        Ok(_) => {}
                        Err(e) if *e.kind() == Kind::NOT_FOUND => {}
                        Err(e) => return Err(e),
                    }
                }
                None
            }
        })
    }

    fn write(&self, storage: &Id, key: &str, value: &str, depth: usize) -> Result<(), Error> {
        let Some(s) = self.storage(storage) else {
            return Err(Error::not_found(format!(
                "env storage not found: {storage}"
            )));
        };
        match &*s {
            Storage::Memory(m) => {
                m.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.to_string(), value.to_string());
                Ok(())
            }
            Storage::File { path, values } => {
                let mut v = values.lock().unwrap_or_else(|p| p.into_inner());
                v.insert(key.to_string(), value.to_string());
                std::fs::write(path, render_dotenv(&v))
                    .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))
            }
            Storage::Os | Storage::Static(_) => Err(denied("storage is read-only")),
            Storage::Router(list) => match list.first() {
                Some(first) if depth < MAX_ROUTER_DEPTH => self.write(first, key, value, depth + 1),
                _ => Err(Error::invalid(format!(
                    "env storage router {storage} cannot be written"
                ))),
            },
        }
    }

    /// The value of `key` as seen from namespace `caller_ns` (see the module docs).
    ///
    /// # Errors
    /// `NotFound` "environment variable not found"; storage errors.
    pub fn lookup(&self, caller_ns: &str, key: &str) -> Result<String, Error> {
        let var = self.variable(caller_ns, key).ok_or_else(not_found)?;
        match self.read(&var.storage, &var.key, 0)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => var.default.filter(|d| !d.is_empty()).ok_or_else(not_found),
        }
    }
}

fn caller_ns(caller: &ProcessInfo) -> &str {
    caller
        .entry
        .as_deref()
        .and_then(|e| e.split_once(':'))
        .map_or("", |(ns, _)| ns)
}

impl EnvProvider for EnvRegistry {
    fn get(&self, caller: &ProcessInfo, key: &str) -> Result<String, Error> {
        self.lookup(caller_ns(caller), key)
    }

    fn set(&self, caller: &ProcessInfo, key: &str, value: &str) -> Result<(), Error> {
        let var = self
            .variable(caller_ns(caller), key)
            .ok_or_else(not_found)?;
        if var.readonly {
            return Err(denied("environment variable is read-only"));
        }
        self.write(&var.storage, &var.key, value, 0)
    }

    fn get_all(&self, _caller: &ProcessInfo) -> Result<Vec<(String, String)>, Error> {
        let storages: Vec<Arc<Storage>> = {
            let st = self.state.read().unwrap_or_else(|p| p.into_inner());
            st.storages.values().cloned().collect()
        };
        let mut all = BTreeMap::new();
        for s in storages {
            match &*s {
                Storage::Memory(m) => {
                    all.extend(m.lock().unwrap_or_else(|p| p.into_inner()).clone())
                }
                Storage::File { values, .. } => {
                    all.extend(values.lock().unwrap_or_else(|p| p.into_inner()).clone())
                }
                Storage::Os => all.extend(std::env::vars()),
                Storage::Static(v) => all.extend(v.clone()),
                Storage::Router(_) => {}
            }
        }
        Ok(all.into_iter().collect())
    }
}

/// `env`: the environment registry component (listens to `env.storage.*` and `env.variable`
/// and installs itself as the `env` module's provider).
#[derive(Debug, Default)]
pub struct EnvComponent;

impl Component for EnvComponent {
    fn name(&self) -> &'static str {
        "env"
    }
    fn depends_on(&self) -> &'static [&'static str] {
        &["registry"]
    }
    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        let reg = Arc::new(EnvRegistry::default());
        let dir = std::path::absolute(cx.dir).unwrap_or_else(|_| cx.dir.to_path_buf());
        for pattern in ["env.storage.*", "env.variable"] {
            let (r, d) = (Arc::clone(&reg), dir.clone());
            cx.system
                .registry
                .handlers()
                .add_listener_fn(pattern, "env", move |ev| r.apply(ev.op, &ev.entry, &d));
        }
        set_provider(reg);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_parsing() {
        let m = parse_dotenv("# c\n\nA=1\nB = two # note\nbad\nC=\"q\"\n");
        assert_eq!(m.get("A").map(String::as_str), Some("1"));
        assert_eq!(m.get("B").map(String::as_str), Some("two"));
        assert_eq!(m.get("C").map(String::as_str), Some("\"q\""));
        assert!(!m.contains_key("bad"));
    }
}
