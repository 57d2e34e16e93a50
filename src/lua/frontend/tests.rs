//! Unit tests of the translation (corpus and VM tests live in `tests/frontend*.rs`).

use super::*;

fn tr(src: &str) -> String {
    match translate(src, "t") {
        Ok(t) => t.code_lossy().into_owned(),
        Err(e) => panic!("{e}"),
    }
}

fn err(src: &str) -> String {
    translate(src, "t").unwrap_err().to_string()
}

#[test]
fn plain_lua_is_unchanged() {
    let src = "local a, b = 1, 2\nfor i = 1, 10 do a = a + i end\nreturn a // b";
    assert_eq!(tr(src), src);
}

/// Same length and the expected tokens once whitespace is collapsed.
fn erased(src: &str, expect: &str) {
    let out = tr(src);
    assert_eq!(out.len(), src.len(), "{out}");
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(squash(&out), squash(expect), "{out}");
}

#[test]
fn annotations_are_blanked() {
    assert_eq!(tr("local x: number = 1"), "local x         = 1");
    erased(
        "local function f(a: number, ...: string): (boolean, string?) return true end",
        "local function f(a , ... ) return true end",
    );
    erased(
        "local function id<T>(x: T): T return x end",
        "local function id (x ) return x end",
    );
}

#[test]
fn casts_and_bang() {
    assert_eq!(
        tr("local y = (x as number) + z!"),
        "local y = (x          ) + z "
    );
    assert_eq!(tr("local y = x :: Point"), "local y = x         ");
}

#[test]
fn type_decl_becomes_prelude() {
    let out = tr("type P = {x: number}\nlocal p = P(v)");
    assert_eq!(
        out,
        format!(
            "local __wippy_T=__wippy_types(\"type P = {{x: number}}\",_ENV,{});;                   \nlocal p = __wippy_T.P(v)",
            runtime::CALL_FACTORY
        )
    );
}

#[test]
fn builtin_casts_and_library_calls() {
    let out = tr("local s = string(v)\nlocal f = string.format('%d', 1)\nlocal ok = string:is(v)");
    assert_eq!(
        out,
        format!(
            "local __wippy_T=__wippy_types(nil,_ENV,{});local s = __wippy_T.string(v)\nlocal f = string.format('%d', 1)\nlocal ok = __wippy_T[1](__wippy_T.string,v)",
            runtime::CALL_FACTORY
        )
    );
}

#[test]
fn locals_shadow_type_names() {
    let out = tr("local string = require('string')\nlocal s = string(v)");
    assert!(!out.contains("__wippy"), "{out}");
}

#[test]
fn error_format() {
    assert_eq!(err("local x = "), "t:1:11: unexpected symbol near <eof>");
    assert_eq!(
        err("if x then\n"),
        "t:2:1: 'end' expected (to close 'if' at line 1) near <eof>"
    );
}

#[test]
fn method_call_shapes_become_direct_calls() {
    let decl = "type P = {x: number}\n";
    let cases = [
        ("P:is(v)", "__wippy_T[1](__wippy_T.P,v)"),
        ("P.is(v)", "__wippy_T[1](__wippy_T.P,v)"),
        ("P[\"is\"](v)", "__wippy_T[1](__wippy_T.P,v)"),
        ("P:kind()", "__wippy_T[2](__wippy_T.P)"),
        ("P:is{x = 1}", "__wippy_T[1](__wippy_T.P,{x = 1})"),
        ("P:is\"s\"", "__wippy_T[1](__wippy_T.P,\"s\")"),
        ("P:is(v).x", "__wippy_T[1](__wippy_T.P,v).x"),
        ("P:other(v)", "P:other(v)"),
        ("P.x", "P.x"),
    ];
    for (call, want) in cases {
        let out = tr(&format!("{decl}local r = {call}"));
        let got = out.rsplit("local r = ").next().unwrap();
        assert_eq!(got, want, "{call}");
    }
}

#[test]
fn byte_order_mark_is_whitespace() {
    let t = translate_bytes(b"\xEF\xBB\xBFlocal x: number = 1", "b").unwrap();
    assert_eq!(t.code(), b"   local x         = 1");
    let lua = mlua::Lua::new();
    lua.load(t.code()).exec().unwrap();
}
