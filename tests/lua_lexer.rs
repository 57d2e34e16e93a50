//! The patched lexer recognizes reserved words by their text instead of by a mark on 22
//! strings interned in every state (`vendor/lua-src/PATCHES.md` §8). These tests check that
//! keywords, names that resemble them, strings spelling them and the error messages that
//! name them behave as in stock Lua 5.4.

use mlua::{Lua, Value};

fn eval(lua: &Lua, code: &str) -> Value {
    lua.load(code).eval().unwrap()
}

fn load_error(lua: &Lua, code: &str) -> String {
    match lua.load(code).set_name("=t").into_function() {
        Ok(_) => panic!("{code:?} compiled"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_keyword_still_parses() {
    let lua = Lua::new();
    let code = r#"
        local r = {}
        for i = 1, 2 do r[#r + 1] = i end
        local t = true and not false or nil
        if t then r[#r + 1] = "if" elseif false then r[#r + 1] = "no" else r[#r + 1] = "no" end
        while #r < 4 do r[#r + 1] = "while" end
        repeat r[#r + 1] = "repeat" until true
        do goto skip end
        r[#r + 1] = "skipped"
        ::skip::
        local function f() return "function" end
        for _, v in ipairs({f()}) do r[#r + 1] = v; break end
        return table.concat(r, ",")
    "#;
    assert_eq!(
        eval(&lua, code).to_string().unwrap(),
        "1,2,if,while,repeat,function"
    );
}

#[test]
fn names_resembling_keywords_are_names() {
    let lua = Lua::new();
    let code = r#"
        local endx, doo, iff, functions, And, _end, whiles = 1, 2, 3, 4, 5, 6, 7
        local e, o, i, n, a = 8, 9, 10, 11, 12
        local untill, returned, localx = 13, 14, 15
        return endx + doo + iff + functions + And + _end + whiles + e + o + i + n + a
            + untill + returned + localx
    "#;
    assert_eq!(eval(&lua, code).as_i64(), Some(120));
}

#[test]
fn strings_spelling_keywords_are_plain_strings() {
    let lua = Lua::new();
    // Made (and collected) before any source that uses them as keywords is lexed.
    let t = lua.create_table().unwrap();
    for w in ["end", "while", "function", "local", "nil", "goto"] {
        t.set(w, w.len()).unwrap();
    }
    lua.globals().set("T", t).unwrap();
    lua.gc_collect().unwrap();
    let code = r#"
        local n = 0
        for k, v in pairs(T) do n = n + #k - v end
        local u = { ["end"] = 1, ["while"] = 2 }
        while false do end
        return n + u["end"] + u["while"] + T["function"] + #("local" .. "nil")
    "#;
    assert_eq!(eval(&lua, code).as_i64(), Some(1 + 2 + 8 + 8));
}

#[test]
fn errors_name_keywords_as_stock_lua() {
    let lua = Lua::new();
    let e = load_error(&lua, "local end = 1");
    assert!(e.contains("t:1: <name> expected near 'end'"), "{e}");
    let e = load_error(&lua, "x = function");
    assert!(e.contains("t:1: '(' expected near <eof>"), "{e}");
    let e = load_error(&lua, "if x then");
    assert!(e.contains("t:1: 'end' expected near <eof>"), "{e}");
    let e = load_error(&lua, "return return");
    assert!(e.contains("t:1: unexpected symbol near 'return'"), "{e}");
    let e = load_error(&lua, "x = 1 until");
    assert!(e.contains("near 'until'"), "{e}");
}

/// The parser finds a `break`'s target label by the interned string "break" (the goto it
/// records is not a GC root). With reserved words no longer fixed in every state, that string
/// must stay alive for the whole parse, or a collection between the `break` and the end of its
/// loop makes the label a different string: "no visible label 'break' for <goto>" (found by
/// `tests/frontend_props.rs`). Thousands of distinct strings between the two force collection
/// cycles during the parse.
#[test]
fn break_survives_collections_during_the_parse() {
    let lua = Lua::new();
    lua.load("collectgarbage(\"incremental\", 100, 400)")
        .exec()
        .unwrap();
    let mut code =
        String::from("local n = 0\nfor i = 1, 3 do\n  if i == 2 then break end\n  local t = {");
    for i in 0..20_000 {
        code.push_str(&format!("\"s{i}\", "));
    }
    code.push_str("}\n  n = n + #t\nend\nreturn n\n");
    for _ in 0..3 {
        assert_eq!(eval(&lua, &code), Value::Integer(20_000));
    }
}
