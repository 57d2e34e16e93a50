//! Unit tests of the lexer.
use super::*;

fn kinds(src: &str) -> Vec<Tk> {
    tokenize(src.as_bytes())
        .unwrap()
        .iter()
        .map(|t| t.kind)
        .collect()
}

fn err(src: &str) -> String {
    let e = tokenize(src.as_bytes()).unwrap_err();
    format!("{}:{}: {}", e.line, e.column, e.message)
}

#[test]
fn keywords_and_names() {
    assert_eq!(
        kinds("type is as x"),
        vec![Tk::Name, Tk::Is, Tk::As, Tk::Name, Tk::Eof]
    );
    assert_eq!(
        kinds("fun goto keyof"),
        vec![Tk::Fun, Tk::Goto, Tk::Keyof, Tk::Eof]
    );
}

#[test]
fn operators() {
    assert_eq!(
        kinds("a // b >> c << d ~= e -> ? ?: ! @ .. ..."),
        vec![
            Tk::Name,
            Tk::DSlash,
            Tk::Name,
            Tk::Shr,
            Tk::Name,
            Tk::Shl,
            Tk::Name,
            Tk::Ne,
            Tk::Name,
            Tk::Arrow,
            Tk::Question,
            Tk::QColon,
            Tk::Bang,
            Tk::At,
            Tk::Concat,
            Tk::Dots,
            Tk::Eof
        ]
    );
}

#[test]
fn labels_vs_casts() {
    assert_eq!(kinds("::top::"), vec![Tk::Label, Tk::Eof]);
    assert_eq!(kinds(":: top ::"), vec![Tk::Label, Tk::Eof]);
    assert_eq!(
        kinds("x :: T"),
        vec![Tk::Name, Tk::DColon, Tk::Name, Tk::Eof]
    );
    assert_eq!(
        kinds("x ::T\n::y::"),
        vec![Tk::Name, Tk::DColon, Tk::Name, Tk::Label, Tk::Eof]
    );
}

#[test]
fn numbers() {
    assert_eq!(
        kinds("1 1.5 .5 1e10 1E-3 0xFF 3."),
        vec![Tk::Number; 7]
            .into_iter()
            .chain([Tk::Eof])
            .collect::<Vec<_>>()
    );
    assert_eq!(err("x = 3a"), "1:5: malformed number near '3a'");
    assert_eq!(err("x = 0x1p4"), "1:5: malformed number near '0x1p4'");
    assert_eq!(err("x = 0x"), "1:5: malformed number near '0x'");
    assert_eq!(err("x = 1e"), "1:5: malformed number near '1e'");
}

#[test]
fn strings_and_escapes() {
    let t = tokenize(br#""a\nb" "\d+" '\x41'"#).unwrap();
    assert_eq!(t[0].flags & NEEDS_REWRITE, 0);
    assert_ne!(t[1].flags & NEEDS_REWRITE, 0);
    assert_ne!(t[2].flags & NEEDS_REWRITE, 0);
    assert_eq!(decode_short_string(br#""a\65\tz\q""#), b"aA\tzq");
    let mut out = Vec::new();
    rewrite_short_string(br#""\d+\n\x41\"""#, &mut out);
    assert_eq!(out, br#""d+\nx41\"""#);
    assert_eq!(err("x = \"abc\ny\""), "1:5: unfinished string near '\"abc'");
    assert_eq!(
        err("x = '\\300'"),
        "1:6: decimal escape too large near '\\300'"
    );
}

#[test]
fn long_strings_and_comments() {
    let t = tokenize(b"--[==[ c\n]] ]==] x [[a\nb]] --[ line\ny").unwrap();
    assert_eq!(
        t.iter().map(|t| t.kind).collect::<Vec<_>>(),
        vec![Tk::Name, Tk::LongString, Tk::Name, Tk::Eof]
    );
    assert_eq!(t[0].line, 2);
    assert_eq!(t[2].line, 4);
    assert_eq!(decode_long_string(b"[[\nab]]"), b"ab");
    assert_eq!(decode_long_string(b"[=[a]]b]=]"), b"a]]b");
    assert_eq!(
        err("x = [[abc"),
        "1:10: unfinished long string (starting at line 1) near <eof>"
    );
    assert_eq!(
        err("--[[\n"),
        "2:1: unfinished long comment (starting at line 1) near <eof>"
    );
    assert_eq!(
        err("x = [=a"),
        "1:5: invalid long string delimiter near '[='"
    );
}

#[test]
fn line_counting() {
    let t = tokenize(b"a\r\nb\n\rc\rd\n\ne").unwrap();
    let lines: Vec<u32> = t.iter().map(|t| t.line).collect();
    assert_eq!(lines, vec![1, 2, 3, 4, 6, 6]);
}

#[test]
fn newline_flag_matches_go_lua() {
    let t = tokenize(b"f()\n(g)").unwrap();
    assert_ne!(t[3].flags & NL_BEFORE, 0);
    let t = tokenize(b"f() -- c\n(g)").unwrap();
    assert_eq!(t[3].flags & NL_BEFORE, 0);
    let t = tokenize(b"f() --[[c]]\n(g)").unwrap();
    assert_ne!(t[3].flags & NL_BEFORE, 0);
}

#[test]
fn bad_symbols() {
    assert_eq!(err("x = $"), "1:5: unexpected symbol near '$'");
    assert_eq!(err("x = \u{e9}"), "1:5: unexpected symbol near '\u{e9}'");
}
