//! Property tests of the front end.
//!
//! 1. Random plain Lua 5.3 programs (no annotations, dialect-safe names and escapes) translate to
//!    exactly themselves, byte for byte — and Lua 5.4 compiles them (so the generator really
//!    produces Lua).
//! 2. Random runnable programs generated twice in lockstep — once with annotations, generics,
//!    casts, `!`, `type`/`interface` statements, once hand-erased — give the same results (or the
//!    same error, same line) when the first is translated and both are run on Lua 5.4.
//!
//! Programs are built from a proptest-generated *choice tape* (`Vec<u32>`): every decision reads
//! the next number, and an exhausted tape reads 0, which always selects the simplest option.
//! Shrinking the tape therefore shrinks the program.

use mlua::{Lua, Value};
use proptest::prelude::*;
use wippy::lua::frontend::{install_type_runtime, translate};

struct Tape {
    data: Vec<u32>,
    pos: usize,
}

impl Tape {
    fn new(data: Vec<u32>) -> Self {
        Tape { data, pos: 0 }
    }

    fn pick(&mut self, n: u32) -> u32 {
        let v = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v % n
    }

    fn chance(&mut self, one_in: u32) -> bool {
        self.pick(one_in) == one_in - 1
    }
}

const NAMES: [&str; 10] = ["a", "b", "c", "x", "y", "foo", "bar", "t1", "_k", "type"];

// ===== property 1: plain programs are left untouched =====

struct Plain {
    tape: Tape,
    out: String,
    depth: u32,
}

impl Plain {
    fn sep(&mut self) {
        let s = match self.tape.pick(12) {
            0..=5 => " ",
            6 => "\n",
            7 => "\t",
            8 => " -- note\n",
            9 => " --[[ block\n comment ]] ",
            10 => "\r\n",
            _ => "  ",
        };
        self.out.push_str(s);
    }

    /// Separator, then the token (so nothing but a space ever precedes a call's `(`).
    fn tok(&mut self, t: &str) {
        self.sep();
        self.out.push_str(t);
    }

    fn name(&mut self) -> &'static str {
        NAMES[self.tape.pick(NAMES.len() as u32) as usize]
    }

    fn literal(&mut self) {
        let lits = [
            "1",
            "0",
            "42",
            "1.5",
            "1e3",
            "0xFF",
            ".5",
            "3.",
            "nil",
            "true",
            "false",
            "\"s\"",
            "'q'",
            "\"a\\n\\t\\65\\\\\"",
            "[[long]]",
            "[==[x]]y]==]",
            "\"\\\"\"",
        ];
        let i = self.tape.pick(lits.len() as u32) as usize;
        self.tok(lits[i]);
    }

    fn expr(&mut self, vararg: bool) {
        self.depth += 1;
        let deep = self.depth > 4;
        match if deep {
            self.tape.pick(2)
        } else {
            self.tape.pick(10)
        } {
            0 => self.literal(),
            1 => {
                let n = self.name();
                self.tok(n);
            }
            2 => {
                self.expr(vararg);
                let ops = [
                    "+", "-", "*", "/", "//", "%", "^", "..", "==", "~=", "<", "<=", ">", ">=",
                    "and", "or", "&", "|", "~", "<<", ">>",
                ];
                let op = ops[self.tape.pick(ops.len() as u32) as usize];
                self.tok(op);
                self.expr(vararg);
            }
            3 => {
                let un = ["-", "not", "#", "~"][self.tape.pick(4) as usize];
                self.tok(un);
                self.expr(vararg);
            }
            4 => {
                self.tok("(");
                self.expr(vararg);
                self.tok(")");
            }
            5 => self.table(vararg),
            6 => {
                self.tok("function");
                self.funcbody();
            }
            7 if vararg => self.tok("..."),
            _ => self.suffixed(vararg),
        }
        self.depth -= 1;
    }

    fn table(&mut self, vararg: bool) {
        self.tok("{");
        let n = self.tape.pick(4);
        for i in 0..n {
            match self.tape.pick(3) {
                0 => self.expr(vararg),
                1 => {
                    let k = self.name();
                    self.tok(k);
                    self.tok("=");
                    self.expr(vararg);
                }
                _ => {
                    self.tok("[");
                    self.expr(vararg);
                    self.tok("]");
                    self.tok("=");
                    self.expr(vararg);
                }
            }
            if i + 1 < n || self.tape.chance(3) {
                let s = if self.tape.chance(2) { ";" } else { "," };
                self.tok(s);
            }
        }
        self.tok("}");
    }

    fn args(&mut self, vararg: bool) {
        match self.tape.pick(4) {
            0 | 1 => {
                // No line break before `(` (the 5.1 ambiguity rule would apply).
                if self.tape.chance(3) {
                    self.out.push(' ');
                }
                self.out.push('(');
                let n = self.tape.pick(3);
                for i in 0..n {
                    if i > 0 {
                        self.tok(",");
                    }
                    self.expr(vararg);
                }
                self.tok(")");
            }
            2 => self.table(vararg),
            _ => self.tok("\"str\""),
        }
    }

    fn suffixed(&mut self, vararg: bool) {
        let n = self.name();
        self.tok(n);
        for _ in 0..self.tape.pick(3) {
            match self.tape.pick(4) {
                0 => {
                    self.tok(".");
                    let f = self.name();
                    self.tok(f);
                }
                1 => {
                    self.tok("[");
                    self.expr(vararg);
                    self.tok("]");
                }
                2 => {
                    self.tok(":");
                    let m = self.name();
                    self.tok(m);
                    self.args(vararg);
                }
                _ => self.args(vararg),
            }
        }
    }

    fn call_stat(&mut self, vararg: bool) {
        let n = self.name();
        self.tok(n);
        if self.tape.chance(2) {
            self.tok(":");
            let m = self.name();
            self.tok(m);
        }
        self.args(vararg);
    }

    fn funcbody(&mut self) {
        self.tok("(");
        let n = self.tape.pick(3);
        for i in 0..n {
            if i > 0 {
                self.tok(",");
            }
            let p = ["p", "q", "r"][i as usize];
            self.tok(p);
        }
        let vararg = self.tape.chance(2);
        if vararg {
            if n > 0 {
                self.tok(",");
            }
            self.tok("...");
        }
        self.tok(")");
        self.block(vararg, false);
        self.tok("end");
    }

    fn block(&mut self, vararg: bool, in_loop: bool) {
        self.depth += 1;
        let n = if self.depth > 3 {
            self.tape.pick(2)
        } else {
            self.tape.pick(4)
        };
        for _ in 0..n {
            self.stat(vararg, in_loop);
        }
        if in_loop && self.tape.chance(4) {
            self.tok("break");
        } else if self.tape.chance(4) {
            self.tok("return");
            if self.tape.chance(2) {
                self.expr(vararg);
            }
        }
        self.depth -= 1;
    }

    fn stat(&mut self, vararg: bool, in_loop: bool) {
        match self.tape.pick(13) {
            0 => {
                self.tok("local");
                let a = self.name();
                self.tok(a);
                if self.tape.chance(2) {
                    self.tok(",");
                    let b = self.name();
                    self.tok(b);
                }
                if self.tape.chance(4) != self.tape.chance(5) {
                    self.tok("=");
                    self.expr(vararg);
                }
            }
            1 => {
                let a = self.name();
                self.tok(a);
                if self.tape.chance(2) {
                    self.tok(".");
                    let f = self.name();
                    self.tok(f);
                }
                self.tok("=");
                self.expr(vararg);
            }
            2 => self.call_stat(vararg),
            3 => {
                self.tok("do");
                self.block(vararg, in_loop);
                self.tok("end");
            }
            4 => {
                self.tok("while");
                self.expr(vararg);
                self.tok("do");
                self.block(vararg, true);
                self.tok("end");
            }
            5 => {
                self.tok("repeat");
                self.block(vararg, true);
                self.tok("until");
                self.expr(vararg);
            }
            6 => {
                self.tok("if");
                self.expr(vararg);
                self.tok("then");
                self.block(vararg, in_loop);
                if self.tape.chance(2) {
                    self.tok("elseif");
                    self.expr(vararg);
                    self.tok("then");
                    self.block(vararg, in_loop);
                }
                if self.tape.chance(2) {
                    self.tok("else");
                    self.block(vararg, in_loop);
                }
                self.tok("end");
            }
            7 => {
                self.tok("for");
                self.tok("i");
                self.tok("=");
                self.expr(vararg);
                self.tok(",");
                self.expr(vararg);
                self.tok("do");
                self.block(vararg, true);
                self.tok("end");
            }
            8 => {
                self.tok("for");
                self.tok("k");
                self.tok(",");
                self.tok("v");
                self.tok("in");
                self.expr(vararg);
                self.tok("do");
                self.loop_with_continue(vararg);
                self.tok("end");
            }
            9 => {
                self.tok("function");
                let n = self.name();
                self.tok(n);
                if self.tape.chance(2) {
                    self.tok(".");
                    let f = self.name();
                    self.tok(f);
                }
                if self.tape.chance(2) {
                    self.tok(":");
                    let m = self.name();
                    self.tok(m);
                }
                self.funcbody();
            }
            10 => {
                self.tok("local");
                self.tok("function");
                let n = self.name();
                self.tok(n);
                self.funcbody();
            }
            11 => self.tok(";"),
            _ => {
                self.tok("local");
                self.tok("s");
                self.tok("=");
                self.tok("string.format");
                self.out.push_str("(\"%d\", 1)");
            }
        }
    }

    fn loop_with_continue(&mut self, vararg: bool) {
        let n = self.tape.pick(3);
        for _ in 0..n {
            self.stat(vararg, true);
        }
        if self.tape.chance(2) {
            self.tok("if");
            self.expr(vararg);
            self.tok("then");
            self.tok("goto");
            self.tok("continue");
            self.tok("end");
            self.tok("::continue::");
        }
    }
}

fn plain_program(tape: Vec<u32>) -> String {
    let mut g = Plain {
        tape: Tape::new(tape),
        out: String::new(),
        depth: 0,
    };
    g.block(true, false);
    g.out
}

// ===== property 2: annotated vs hand-erased programs =====

/// Emits the annotated and the hand-erased program side by side.
struct Pair {
    tape: Tape,
    typed: String,
    plain: String,
    vars: Vec<String>,
    funcs: Vec<(String, usize)>,
    depth: u32,
}

impl Pair {
    fn both(&mut self, s: &str) {
        self.typed.push_str(s);
        self.plain.push_str(s);
    }

    fn typed_only(&mut self, s: &str) {
        self.typed.push_str(s);
    }

    fn ty(&mut self, depth: u32) -> String {
        let simple = [
            "number",
            "integer",
            "string",
            "any",
            "boolean",
            "T",
            "Alias",
            "lib.Thing",
            "\"lit\"",
            "42",
        ];
        if depth > 2 {
            return simple[self.tape.pick(simple.len() as u32) as usize].to_owned();
        }
        match self.tape.pick(11) {
            0..=2 => simple[self.tape.pick(simple.len() as u32) as usize].to_owned(),
            3 => format!("{{{}}}", self.ty(depth + 1)),
            4 => format!("{}[]", simple[self.tape.pick(5) as usize]),
            5 => format!("{{[{}]: {}}}", self.ty(depth + 1), self.ty(depth + 1)),
            6 => format!("{{a: {}, b?: {}}}", self.ty(depth + 1), self.ty(depth + 1)),
            7 => format!("{}?", simple[self.tape.pick(5) as usize]),
            8 => format!("{} | {}", self.ty(depth + 1), self.ty(depth + 1)),
            9 => format!("({}) -> {}", self.ty(depth + 1), self.ty(depth + 1)),
            _ => format!("number @min({}) @max(100)", self.tape.pick(5)),
        }
    }

    /// A type usable right after `as` / `::` (no top-level `|`).
    fn cast_ty(&mut self) -> String {
        let t = [
            "number",
            "integer",
            "{number}",
            "any?",
            "Alias",
            "{a: number}",
            "string[]",
            "fun(): number",
        ];
        t[self.tape.pick(t.len() as u32) as usize].to_owned()
    }

    fn int_expr(&mut self) {
        self.depth += 1;
        let choice = if self.depth > 4 {
            self.tape.pick(2)
        } else {
            self.tape.pick(7)
        };
        match choice {
            0 => {
                let n = self.tape.pick(50).to_string();
                self.both(&n);
            }
            1 if !self.vars.is_empty() => {
                let v = self.vars[self.tape.pick(self.vars.len() as u32) as usize].clone();
                self.both(&v);
                if self.tape.chance(4) {
                    self.typed_only("!");
                }
            }
            2 => {
                self.both("(");
                self.int_expr();
                let op = [" + ", " - ", " * ", " // ", " % "][self.tape.pick(5) as usize];
                self.both(op);
                self.int_expr();
                self.both(")");
            }
            3 => {
                self.both("(");
                self.int_expr();
                let cast = self.cast_ty();
                let op = if self.tape.chance(2) { " as " } else { " :: " };
                self.typed_only(&format!("{op}{cast}"));
                self.both(")");
            }
            4 if !self.funcs.is_empty() => {
                let (f, arity) =
                    self.funcs[self.tape.pick(self.funcs.len() as u32) as usize].clone();
                self.both(&format!("{f}("));
                for i in 0..arity {
                    if i > 0 {
                        self.both(", ");
                    }
                    self.int_expr();
                }
                self.both(")");
            }
            5 => {
                self.both("-(");
                self.int_expr();
                self.both(")");
            }
            _ => {
                self.both("#{");
                self.int_expr();
                self.both("}");
            }
        }
        self.depth -= 1;
    }

    fn stat(&mut self, idx: usize) {
        match self.tape.pick(7) {
            0 | 1 => {
                let v = format!("v{idx}");
                self.both(&format!("local {v}"));
                if self.tape.chance(2) {
                    let t = self.ty(0);
                    self.typed_only(&format!(": {t}"));
                }
                self.both(" = ");
                self.int_expr();
                self.both("\n");
                self.vars.push(v);
            }
            2 => {
                let f = format!("f{idx}");
                let arity = self.tape.pick(3) as usize;
                self.both(&format!("local function {f}"));
                if self.tape.chance(2) {
                    self.typed_only("<T, U: {a: number}>");
                }
                self.both("(");
                let saved = std::mem::take(&mut self.vars);
                for i in 0..arity {
                    if i > 0 {
                        self.both(", ");
                    }
                    let p = format!("p{i}");
                    self.both(&p);
                    if self.tape.chance(2) {
                        let t = self.ty(1);
                        self.typed_only(&format!(": {t}"));
                    }
                    self.vars.push(p);
                }
                self.both(")");
                match self.tape.pick(3) {
                    0 => {}
                    1 => self.typed_only(": number"),
                    _ => self.typed_only(": (number, string?)"),
                }
                self.both("\n  return ");
                self.int_expr();
                self.both("\nend\n");
                self.vars = saved;
                self.funcs.push((f, arity));
            }
            3 => {
                // Erased declarations (typed program only, still one line each).
                let t = self.ty(0);
                let d = match self.tape.pick(3) {
                    0 => format!("type Alias{idx} = {t}\n"),
                    1 => format!("type G{idx}<T> = {{value: T, other: {t}}}\n"),
                    _ => format!("interface I{idx} function m(self, x: {t}): number end\n"),
                };
                self.typed.push_str(&d);
                self.plain.push('\n');
            }
            4 if !self.vars.is_empty() => {
                let v = self.vars[self.tape.pick(self.vars.len() as u32) as usize].clone();
                self.both(&format!("if {v} % 2 == 0 then {v} = "));
                self.int_expr();
                self.both(" else ");
                self.both(&format!("{v} = {v}"));
                self.typed_only(" as integer");
                self.both(" + 1 end\n");
            }
            5 if !self.vars.is_empty() => {
                let v = self.vars[self.tape.pick(self.vars.len() as u32) as usize].clone();
                self.both(&format!("for i = 1, 3 do {v} = {v} + i"));
                self.typed_only(" :: number");
                self.both(" end\n");
            }
            _ => {
                let v = format!("v{idx}");
                self.both(&format!("local {v}"));
                self.typed_only(": {number}?");
                self.both(" = {");
                self.int_expr();
                self.both("}\n");
                self.both(&format!("local w{idx} = ({v}"));
                self.typed_only("!");
                self.both(")[1]\n");
                self.vars.push(format!("w{idx}"));
            }
        }
    }
}

fn pair_program(tape: Vec<u32>) -> (String, String) {
    let mut g = Pair {
        tape: Tape::new(tape),
        typed: String::new(),
        plain: String::new(),
        vars: Vec::new(),
        funcs: Vec::new(),
        depth: 0,
    };
    let n = 1 + g.tape.pick(8) as usize;
    for i in 0..n {
        g.stat(i);
    }
    g.both("return {");
    let vars = g.vars.clone();
    for (i, v) in vars.iter().enumerate() {
        if i > 0 {
            g.both(", ");
        }
        g.both(v);
    }
    g.both("}\n");
    (g.typed, g.plain)
}

/// Run a chunk; the result as text (values joined) or the error message.
fn outcome(code: &[u8]) -> String {
    let lua = Lua::new();
    install_type_runtime(&lua).unwrap();
    match lua.load(code).set_name("@prog").eval::<Value>() {
        Ok(Value::Table(t)) => {
            let mut parts = Vec::new();
            for v in t.sequence_values::<Value>() {
                parts.push(match v.unwrap() {
                    Value::Integer(i) => i.to_string(),
                    Value::Number(f) => format!("{f:?}"),
                    other => format!("{other:?}"),
                });
            }
            format!("ok [{}]", parts.join(", "))
        }
        Ok(other) => format!("ok {other:?}"),
        Err(e) => {
            let s = e.to_string();
            format!("err {}", s.lines().next().unwrap_or_default())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn plain_lua_translates_to_itself(tape in prop::collection::vec(any::<u32>(), 0..600)) {
        let src = plain_program(tape);
        let lua = Lua::new();
        let compiles = lua.load(&src).into_function();
        prop_assert!(compiles.is_ok(), "generator produced invalid Lua: {:?}\n{}", compiles.err(), src);
        let t = translate(&src, "p");
        prop_assert!(t.is_ok(), "rejected: {}\n{}", t.unwrap_err(), src);
        let t = t.unwrap();
        prop_assert!(!t.needs_type_runtime());
        prop_assert_eq!(t.code_lossy(), src.as_str());
    }

    #[test]
    fn erasing_annotations_preserves_behaviour(tape in prop::collection::vec(any::<u32>(), 0..300)) {
        let (typed, plain) = pair_program(tape);
        prop_assert_eq!(typed.lines().count(), plain.lines().count());
        let t = translate(&typed, "p");
        prop_assert!(t.is_ok(), "rejected: {}\n{}", t.unwrap_err(), typed);
        let t = t.unwrap();
        let got = outcome(t.code());
        let want = outcome(plain.as_bytes());
        prop_assert_eq!(got, want, "typed:\n{}\nplain:\n{}\ntranslated:\n{}", typed, plain, t.code_lossy());
    }
}

/// `cargo test --test frontend_props print_samples -- --ignored --nocapture` shows what the
/// generators produce.
#[test]
#[ignore]
fn print_samples() {
    let mut seed = 12345u32;
    let mut tape = || {
        (0..400)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed
            })
            .collect::<Vec<u32>>()
    };
    for _ in 0..2 {
        println!("=====\n{}", plain_program(tape()));
    }
    for _ in 0..2 {
        let (a, b) = pair_program(tape());
        println!("=====\n{a}\n-----\n{b}");
    }
}
