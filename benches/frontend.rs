//! Front-end benchmarks (results in `docs/benchmarks.md`, section "Typed-Lua front end").
//!
//! * `translate/typed_4MiB`, `translate/plain_4MiB`: translation throughput on a large generated
//!   source (criterion reports bytes/s; target ≥ 50 MB/s).
//! * `cache/hit_16KiB`: a `TranslationCache` hit (hash + compare).
//! * `runtime/install`: `install_type_runtime` on an existing state (per-state cost).
//! * `runtime/first_typed_chunk`: loading and running a small typed chunk in a fresh state with
//!   the runtime installed (prelude: built-ins, type objects, global injection) — state creation
//!   excluded.
//! * `runtime/is_record_x10k`, `runtime/is_number_x10k`: 10 000 `T:is(v)` calls from a Lua loop
//!   (a 4-field record with an array; a primitive, i.e. mostly call overhead).
//! * `runtime/cast_builtin_x10k`: 10 000 `string(v)` casts from a Lua loop.
//!
//! Run: `cargo bench --bench frontend`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mlua::Lua;
use wippy::lua::frontend::{TranslationCache, install_type_runtime, translate};

/// Realistic typed module: declarations at the top, annotated functions, casts, generics.
const TYPED_HEAD: &str = r#"type Config = {host: string, port: integer @min(1) @max(65535), tags?: {string}, meta?: {[string]: any}}
type Result<T, E> = {ok: true, value: T} | {ok: false, error: E}
interface Store
  function get(self, key: string): (any?, string?)
  function put(self, key: string, value: any): boolean
end
"#;

fn typed_block(i: usize) -> String {
    format!(
        r#"
-- block {i}: handlers with annotations, generics and casts
local function parse_{i}(raw: string, opts: {{strict: boolean, limit?: integer}}?): (Config?, string?)
  local cfg: Config = {{host = raw, port = 8080 + {i} % 100}} :: Config
  if opts and opts.strict and #raw == 0 then
    return nil, "empty host"
  end
  local tags: {{string}} = {{}}
  for word in raw:gmatch("[^,]+") do
    tags[#tags + 1] = word as string
  end
  cfg.tags = tags
  return cfg, nil
end

local function map_{i}<T, U>(xs: {{T}}, f: (T) -> U): {{U}}
  local out: {{U}} = {{}}
  for idx, x in ipairs(xs) do out[idx] = f(x) end
  return out
end

local M_{i} = {{}}
function M_{i}:handle(req: {{method: string, path: string, body?: string}}, store: Store): Result<number, string>
  local n: integer = #(req.body or "") // 2 + ({i} << 1) & 0xff
  local cfg = parse_{i}(req.path, {{strict = true}})!
  if req.method == "POST" then
    store:put(req.path, cfg)
    return {{ok = true, value = n}}
  elseif Config:is(cfg) then
    return {{ok = true, value = n * 2}}
  end
  return {{ok = false, error = "unsupported: " .. req.method}}
end
"#
    )
}

fn plain_block(i: usize) -> String {
    format!(
        r#"
-- block {i}: plain Lua
local function parse_{i}(raw, opts)
  local cfg = {{host = raw, port = 8080 + {i} % 100}}
  if opts and opts.strict and #raw == 0 then
    return nil, "empty host"
  end
  local tags = {{}}
  for word in raw:gmatch("[^,]+") do
    tags[#tags + 1] = word
  end
  cfg.tags = tags
  return cfg, nil
end

local M_{i} = {{}}
function M_{i}:handle(req, store)
  local n = #(req.body or "") // 2 + ({i} << 1) & 0xff
  local cfg = parse_{i}(req.path, {{strict = true}})
  if req.method == "POST" then
    store:put(req.path, cfg)
    return {{ok = true, value = n}}
  end
  return {{ok = false, error = "unsupported: " .. req.method}}
end
"#
    )
}

/// About `target` bytes of source made of numbered blocks, wrapped in `do ... end` groups so the
/// per-function local limit of Lua is never reached.
fn build(head: &str, block: fn(usize) -> String, target: usize) -> String {
    let mut s = String::from(head);
    let mut i = 0;
    while s.len() < target {
        s.push_str("do\n");
        for _ in 0..50 {
            s.push_str(&block(i));
            i += 1;
        }
        s.push_str("end\n");
    }
    s
}

fn bench_translate(c: &mut Criterion) {
    let typed = build(TYPED_HEAD, typed_block, 4 << 20);
    let plain = build("", plain_block, 4 << 20);
    // Sanity: both translate and the output loads.
    for src in [&typed, &plain] {
        let t = translate(src, "bench").expect("bench source translates");
        let lua = Lua::new();
        install_type_runtime(&lua).expect("install");
        lua.load(t.code()).into_function().expect("output loads");
    }
    let mut g = c.benchmark_group("translate");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Bytes(typed.len() as u64));
    g.bench_function("typed_4MiB", |b| {
        b.iter(|| translate(black_box(&typed), "bench").expect("ok"))
    });
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("plain_4MiB", |b| {
        b.iter(|| translate(black_box(&plain), "bench").expect("ok"))
    });
    g.finish();

    let cache = TranslationCache::default();
    let small = build(TYPED_HEAD, typed_block, 16 << 10);
    cache.get(&small, "c").expect("ok");
    let mut g = c.benchmark_group("cache");
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function("hit_16KiB", |b| {
        b.iter(|| cache.get(black_box(&small), "c").expect("ok"))
    });
    g.finish();
}

fn bench_runtime(c: &mut Criterion) {
    let mut g = c.benchmark_group("runtime");
    let lua = Lua::new();
    g.bench_function("install", |b| {
        b.iter(|| install_type_runtime(black_box(&lua)).expect("install"))
    });

    let chunk = translate(
        r#"type Point = {x: number, y: number}
type User = {name: string @min_len(1), age: integer @min(0), tags?: {string}}
local function f(p: Point): number return p.x + p.y end
return Point, User, f"#,
        "chunk",
    )
    .expect("ok");
    let code = chunk.code().to_vec();
    g.bench_function("first_typed_chunk", |b| {
        b.iter_batched(
            || {
                let lua = Lua::new();
                install_type_runtime(&lua).expect("install");
                lua
            },
            |lua| {
                lua.load(&code[..]).exec().expect("run");
                lua
            },
            BatchSize::SmallInput,
        )
    });

    const CALLS: u64 = 10_000;
    let lua = Lua::new();
    install_type_runtime(&lua).expect("install");
    for (name, body) in [
        ("is_record_x10k", "local ok = User:is(v)"),
        ("is_number_x10k", "local ok = N:is(1)"),
        ("cast_builtin_x10k", "local s = string('x')"),
    ] {
        let src = format!(
            r#"type User = {{name: string, age: integer @min(0), email?: string, tags: {{string}}}}
type N = number
local v = {{name = "ann", age = 30, tags = {{"a", "b"}}}}
return function(n)
  for _ = 1, n do
    {body}
  end
end"#
        );
        let t = translate(&src, "loop").expect("ok");
        let f: mlua::Function = lua.load(t.code()).eval().expect("fn");
        g.throughput(Throughput::Elements(CALLS));
        g.bench_function(name, |b| b.iter(|| f.call::<()>(CALLS).expect("call")));
    }
    g.finish();
}

criterion_group!(benches, bench_translate, bench_runtime);
criterion_main!(benches);
