//! The loader never panics on user input: thousands of mutated definition documents.

use std::path::Path;

use wippy::loader::lines::line_map;
use wippy::loader::{Format, parse_bytes};

const SEEDS: &[&str] = &[
    "version: \"1.0\"\nnamespace: app\nmeta: {team: x}\nentries:\n  - name: a\n    kind: function.lua\n    source: file://a.lua\n    imports: {j: ':json'}\n  - {name: b, kind: registry.entry, data: [1, 2, {x: y}]}\n",
    "namespace: n\nname: svc\nkind: http.service\naddr: ':8080'\nlifecycle: {auto_start: true, requires: [a, 'b:c']}\n",
    "{\"namespace\": \"j\", \"entries\": [{\"name\": \"a\", \"kind\": \"k\", \"v\": 1.5e3}]}",
    "namespace: &ns app\nentries:\n  - &e {name: a, kind: k}\n  - <<: *e\n    name: b\n  - ? [complex]\n    : value\n",
    "namespace: m\nentries:\n  - name: s\n    kind: k\n    text: |\n      - name: fake\n        kind: nope\n    folded: >\n      a\n      b\n",
];

const TOKENS: &[&[u8]] = &[
    b":",
    b"-",
    b"- ",
    b"[",
    b"]",
    b"{",
    b"}",
    b"\n",
    b"  ",
    b"\t",
    b"'",
    b"\"",
    b"&a",
    b"*a",
    b"!!str",
    b"? ",
    b"|",
    b">",
    b"#",
    b"file://",
    b"file:///",
    b"../",
    b"namespace:",
    b"entries:",
    b"name:",
    b"kind:",
    b"data:",
    b"\xff",
    b"\0",
    b"~",
    b"%YAML 1.2\n",
    b"---\n",
];

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

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let pos = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let p = pos.min(v.len() - 1);
                v[p] = rng.next() as u8;
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(pos..pos, t.iter().copied());
            }
            2 => v.truncate(pos),
            3 if !v.is_empty() => {
                let end = (pos + rng.below(20)).min(v.len());
                v.drain(pos.min(end)..end);
            }
            _ => {
                let a = rng.below(v.len() + 1);
                let chunk: Vec<u8> = v[a.min(pos)..a.max(pos)].to_vec();
                v.extend_from_slice(&chunk);
            }
        }
    }
    v
}

#[test]
fn mutated_documents_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.lua"), "return 1").unwrap();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut ok = 0;
    let mut errs = 0;
    for i in 0..4000 {
        let seed = SEEDS[i % SEEDS.len()].as_bytes();
        let input = mutate(&mut rng, seed);
        let _ = line_map(&input);
        for fmt in [Format::Yaml, Format::Json] {
            match parse_bytes(&input, fmt, dir.path()) {
                Ok(_) => ok += 1,
                Err(d) => {
                    errs += 1;
                    assert!(!d.message.is_empty());
                    assert!(d.file.is_some(), "every error names the file: {d}");
                }
            }
        }
    }
    assert!(
        ok > 100 && errs > 100,
        "mutations exercise both paths: ok={ok} errs={errs}"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!(
        "namespace: n\nentries:\n  - {{name: a, kind: k, x: {}1{}}}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(parse_bytes(deep.as_bytes(), Format::Yaml, Path::new("/x")).is_err());
    let deep_json = format!(
        "{{\"namespace\": \"n\", \"x\": {}1{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(parse_bytes(deep_json.as_bytes(), Format::Json, Path::new("/x")).is_err());
    let _ = line_map(deep.as_bytes());
}
