//! `io` (spec `lua-api.md` §3.8.17): the terminal of a process running on a `terminal.host`.
//!
//! `io.write(...)` (values `tostring`-ed, no separators) → `true`; `io.print(...)`
//! (tab-separated, newline) and `io.eprint(...)` (stderr) → `true`; `io.read([n = 1024])` →
//! up to `n` bytes; `io.readline()` → a line without `\r\n`, `nil, err` at end of input;
//! `io.flush()` → `true`; `io.raw([enable = true])` → reference-counted raw mode (only when
//! stdin is a terminal, else `Unavailable` "raw terminal control unavailable");
//! `io.args()` → the command's arguments. Reads suspend the task while a helper thread waits on
//! stdin; writes are synchronous (terminal output is the command's product).
//!
//! Outside a terminal process every function but `args` (empty table) returns `nil, err`
//! with kind `Unavailable`, message "no terminal context".

use std::io::{BufRead, Read, Write};
use std::sync::Arc;
use std::sync::Mutex;

use mlua::{Lua, MultiValue, Value as LuaValue};
use wippy_rt::{Error, Kind, ProcessCx, Value};

use super::super::core::{Conv, Op, with_core};
use super::super::rawfn;
use super::super::shared::Engine;
use super::super::yields::{self, ret1, ret2};
use crate::lua::modules::errors::{error_value, nil_err};

/// What a terminal process knows about its terminal.
#[derive(Debug, Default)]
pub struct TerminalCtx {
    /// The command's arguments.
    pub args: Vec<String>,
}

/// Attribute carrying the command's arguments (set by the terminal host).
pub const ATTR_TERMINAL_ARGS: &str = "terminal.args";

/// The terminal context of a process being initialised, if it runs on a terminal host.
pub(crate) fn terminal_for(engine: &Engine, cx: &ProcessCx<'_>) -> Option<Arc<TerminalCtx>> {
    if !crate::services::terminal::is_terminal_host(&engine.sys, cx.host()) {
        return None;
    }
    let args = match cx.options().attr(ATTR_TERMINAL_ARGS) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Some(Arc::new(TerminalCtx { args }))
}

fn no_terminal(lua: &Lua) -> mlua::Result<MultiValue> {
    nil_err(lua, Kind::UNAVAILABLE, "no terminal context")
}

fn has_terminal() -> bool {
    with_core(|c| c.terminal.is_some()).unwrap_or(false)
}

fn text(lua: &Lua, args: &MultiValue, sep: &str) -> mlua::Result<Vec<u8>> {
    let tostring: mlua::Function = lua.globals().get("tostring")?;
    let mut out = Vec::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(sep.as_bytes());
        }
        match v {
            LuaValue::String(s) => out.extend_from_slice(&s.as_bytes()),
            other => {
                let s: mlua::LuaString = tostring.call(other.clone())?;
                out.extend_from_slice(&s.as_bytes());
            }
        }
    }
    Ok(out)
}

fn write_to(lua: &Lua, bytes: &[u8], err: bool) -> mlua::Result<MultiValue> {
    let r = if err {
        let mut e = std::io::stderr().lock();
        e.write_all(bytes).and_then(|_| e.flush())
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(bytes)
    };
    match r {
        Ok(()) => Ok(ret1(LuaValue::Boolean(true))),
        Err(e) => nil_err(lua, Kind::INTERNAL, e.to_string()),
    }
}

fn string_or_error(lua: &Lua, r: Result<Value, Error>) -> mlua::Result<Vec<LuaValue>> {
    Ok(match r {
        Ok(Value::Str(b)) => vec![LuaValue::String(lua.create_string(b.as_bytes())?)],
        Ok(_) => vec![
            LuaValue::Nil,
            error_value(lua, Error::new(Kind::UNKNOWN, "EOF"))?,
        ],
        Err(e) => vec![LuaValue::Nil, error_value(lua, e)?],
    })
}

/// Raw mode reference count and the saved terminal settings.
static RAW: Mutex<(usize, Option<libc::termios>)> = Mutex::new((0, None));

fn set_raw(enable: bool) -> Result<(), Error> {
    let mut g = RAW.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: isatty/tcgetattr/tcsetattr on fd 0 with a properly sized termios buffer.
    unsafe {
        if libc::isatty(0) != 1 {
            return Err(Error::new(
                Kind::UNAVAILABLE,
                "raw terminal control unavailable",
            ));
        }
        if enable {
            if g.0 == 0 {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut t) != 0 {
                    return Err(Error::new(
                        Kind::UNAVAILABLE,
                        "raw terminal control unavailable",
                    ));
                }
                g.1 = Some(t);
                let mut raw = t;
                libc::cfmakeraw(&mut raw);
                libc::tcsetattr(0, libc::TCSANOW, &raw);
            }
            g.0 += 1;
        } else if g.0 > 0 {
            g.0 -= 1;
            if g.0 == 0
                && let Some(t) = g.1.take()
            {
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
    Ok(())
}

/// The `io` table (light C functions, see [`rawfn`]).
pub(crate) fn build(lua: &Lua) -> mlua::Result<LuaValue> {
    let t = lua.create_table_with_capacity(0, 8)?;
    rawfn::set(lua, &t, "write", crate::lua_fn!(write))?;
    rawfn::set(lua, &t, "print", crate::lua_fn!(print))?;
    rawfn::set(lua, &t, "eprint", crate::lua_fn!(eprint))?;
    rawfn::set(lua, &t, "flush", crate::lua_fn!(flush))?;
    rawfn::set(lua, &t, "read", crate::lua_fn!(read))?;
    rawfn::set(lua, &t, "readline", crate::lua_fn!(readline))?;
    rawfn::set(lua, &t, "raw", crate::lua_fn!(raw))?;
    rawfn::set(lua, &t, "args", crate::lua_fn!(args))?;
    Ok(LuaValue::Table(t))
}

fn write(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    if !has_terminal() {
        return no_terminal(lua);
    }
    let b = text(lua, &args, "")?;
    write_to(lua, &b, false)
}

fn print(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    if !has_terminal() {
        return no_terminal(lua);
    }
    let mut b = text(lua, &args, "\t")?;
    b.push(b'\n');
    write_to(lua, &b, false)
}

fn eprint(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    if !has_terminal() {
        return no_terminal(lua);
    }
    let mut b = text(lua, &args, "\t")?;
    b.push(b'\n');
    write_to(lua, &b, true)
}

fn flush(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    if !has_terminal() {
        return no_terminal(lua);
    }
    match std::io::stdout().flush() {
        Ok(()) => Ok(ret1(LuaValue::Boolean(true))),
        Err(e) => nil_err(lua, Kind::INTERNAL, e.to_string()),
    }
}

fn read(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    if !has_terminal() {
        return no_terminal(lua);
    }
    let n = match args.front() {
        Some(LuaValue::Integer(n)) if *n > 0 => *n as usize,
        Some(LuaValue::Number(n)) if *n >= 1.0 => *n as usize,
        _ => 1024,
    };
    let job = move || -> Result<Value, Error> {
        let _ = std::io::stdout().flush();
        let mut buf = vec![0u8; n];
        match std::io::stdin().lock().read(&mut buf) {
            Ok(0) => Ok(Value::Nil),
            Ok(k) => {
                buf.truncate(k);
                Ok(Value::Str(buf.into()))
            }
            Err(e) => Err(Error::internal(e.to_string())),
        }
    };
    yields::suspend(
        lua,
        Op::Job(Box::new(job), Conv::Custom(Box::new(string_or_error))),
    )
}

fn readline(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    if !has_terminal() {
        return no_terminal(lua);
    }
    let job = || -> Result<Value, Error> {
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) => Ok(Value::Nil),
            Ok(_) => {
                while line.ends_with('\n') || line.ends_with('\r') {
                    line.pop();
                }
                Ok(Value::from(line))
            }
            Err(e) => Err(Error::internal(e.to_string())),
        }
    };
    yields::suspend(
        lua,
        Op::Job(Box::new(job), Conv::Custom(Box::new(string_or_error))),
    )
}

fn raw(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    if !has_terminal() {
        return no_terminal(lua);
    }
    let enable = match args.front() {
        None | Some(LuaValue::Nil) => true,
        Some(LuaValue::Boolean(b)) => *b,
        Some(other) => {
            return Err(mlua::Error::runtime(format!(
                "bad argument #1 to 'raw' (boolean expected, got {})",
                rawfn::arg_type(Some(other))
            )));
        }
    };
    match set_raw(enable) {
        Ok(()) => Ok(ret1(LuaValue::Boolean(true))),
        Err(e) => Ok(ret2(LuaValue::Nil, error_value(lua, e)?)),
    }
}

fn args(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    let args = with_core(|c| c.terminal.as_ref().map(|t| t.args.clone()))
        .ok()
        .flatten()
        .unwrap_or_default();
    let t = lua.create_table_with_capacity(args.len(), 0)?;
    for (i, a) in args.iter().enumerate() {
        t.raw_set(i + 1, a.as_str())?;
    }
    Ok(ret1(LuaValue::Table(t)))
}
