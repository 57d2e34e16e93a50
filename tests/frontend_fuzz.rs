//! Stable-toolchain stand-in for `fuzz/fuzz_targets/frontend.rs`: thousands of random and
//! mutated inputs through the same entry point. Properties: no panic; an accepted input keeps
//! every line break; an accepted input's output is loadable Lua 5.4 unless Lua rejects it for a
//! reason the dialect leaves to the VM (goto/label scoping, `...` outside a vararg function,
//! compiler limits).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use wippy::lua::frontend::translate_bytes;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const DICT: &[&str] = &[
    "local",
    "function",
    "end",
    "type",
    "interface",
    "as",
    "::",
    "!",
    "?",
    "?:",
    "->",
    "@min(1)",
    "<T>",
    "<",
    ">",
    ">>",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "[[",
    "]]",
    "--",
    "--[[",
    "\"",
    "'",
    "\\",
    "\n",
    "|",
    "&",
    "fun",
    "readonly",
    "typeof(",
    "keyof(",
    "extends",
    "asserts",
    "is",
    "goto",
    "::l::",
    "...",
    "..",
    "=",
    "==",
    ":",
    ",",
    ";",
    "0x",
    "1e",
    "\\x41",
    "return",
    "break",
    "if",
    "then",
    "else",
    "do",
    "while",
    "for",
    "in",
    "repeat",
    "until",
    "string(",
    "T:is(",
    "X.kind()",
];

fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/frontend");
    for dir in ["ok", "err"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for p in paths {
            out.push(std::fs::read(p).unwrap());
        }
    }
    out.push(b"type A<T> = {x: T} local a: A<number> = {x = 1} return A:is(a)".to_vec());
    out
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let pos = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(pos, rng.next() as u8),
            2 => {
                let tok = DICT[rng.below(DICT.len())].as_bytes();
                v.splice(pos..pos, tok.iter().copied());
            }
            3 if !v.is_empty() => {
                let end = (pos + rng.below(16)).min(v.len());
                v.drain(pos.min(end)..end);
            }
            4 if !v.is_empty() => {
                let start = rng.below(v.len());
                let end = (start + rng.below(32)).min(v.len());
                let chunk = v[start..end].to_vec();
                v.splice(pos..pos, chunk);
            }
            5 => v.truncate(pos),
            _ => {
                let n = rng.below(12);
                for _ in 0..n {
                    v.insert(pos.min(v.len()), DICT[rng.below(DICT.len())].as_bytes()[0]);
                }
            }
        }
    }
    v
}

fn line_breaks(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n' || c == b'\r').count()
}

/// Lua 5.4 rejections that are semantic checks the dialect leaves to the VM.
fn vm_semantic_error(msg: &str) -> bool {
    [
        "goto",
        "label",
        "'...'",
        "too many",
        "overflow",
        "limit",
        "jumps into the scope",
    ]
    .iter()
    .any(|k| msg.contains(k))
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let lua = mlua::Lua::new();
    let mut accepted = 0;
    let mut problems = Vec::new();
    for i in 0..20_000 {
        let input: Vec<u8> = if i % 10 == 0 {
            (0..rng.below(200)).map(|_| rng.next() as u8).collect()
        } else {
            let base = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, base)
        };
        let r = catch_unwind(AssertUnwindSafe(|| translate_bytes(&input, "fuzz")));
        let Ok(result) = r else {
            problems.push(format!("panic on {:?}", String::from_utf8_lossy(&input)));
            continue;
        };
        if let Ok(t) = result {
            accepted += 1;
            if line_breaks(t.code()) != line_breaks(&input) {
                problems.push(format!(
                    "line breaks changed for {:?}",
                    String::from_utf8_lossy(&input)
                ));
            }
            if let Err(e) = lua.load(t.code()).into_function() {
                let msg = e.to_string();
                if !vm_semantic_error(&msg) {
                    problems.push(format!(
                        "accepted but Lua 5.4 rejects the output: {msg}\n--- input ---\n{}\n--- output ---\n{}",
                        String::from_utf8_lossy(&input),
                        t.code_lossy()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems, first: {}",
        problems.len(),
        problems[0]
    );
    assert!(
        accepted > 1000,
        "mutations too destructive: only {accepted} accepted"
    );
}

#[test]
fn pathological_inputs_are_errors_not_crashes() {
    let deep_parens = format!("x = {}1{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(translate_bytes(deep_parens.as_bytes(), "d").is_err());
    let deep_tables = format!("x = {}{}", "{".repeat(100_000), "}".repeat(100_000));
    assert!(translate_bytes(deep_tables.as_bytes(), "d").is_err());
    let deep_types = format!(
        "local x: {}number{} = 1",
        "{".repeat(100_000),
        "}".repeat(100_000)
    );
    assert!(translate_bytes(deep_types.as_bytes(), "d").is_err());
    let deep_blocks = "do ".repeat(100_000) + &"end ".repeat(100_000);
    assert!(translate_bytes(deep_blocks.as_bytes(), "d").is_err());
    let unary = format!("x = {}1", "-".repeat(100_000).replace("--", "- -"));
    assert!(translate_bytes(unary.as_bytes(), "d").is_err());
    let generics = format!(
        "local x: {}number{} = 1",
        "A<".repeat(50_000),
        ">".repeat(50_000)
    );
    assert!(translate_bytes(generics.as_bytes(), "d").is_err());
    let long_line = "x = 1 ".repeat(200_000);
    assert!(translate_bytes(long_line.as_bytes(), "d").is_ok());
    assert!(translate_bytes(&[0xff, 0xfe, 0x00], "d").is_err());
}
