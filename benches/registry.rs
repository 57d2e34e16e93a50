//! Registry benches: apply of a 10k-entry changeset, finder queries (cached / uncached),
//! SQLite history append per version.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use wippy::registry::{ChangeSet, Entry, Finder, History, Id, Operation, Registry, SqliteHistory};
use wippy::rt::Value;

fn entry(i: usize) -> Entry {
    let mut e = Entry::new(
        Id::new(&format!("app.ns{}", i % 50), &format!("e{i}")),
        if i.is_multiple_of(3) {
            "bench.handler"
        } else {
            "bench.config"
        },
    );
    e.meta = Value::Map(vec![
        (
            Value::str("type"),
            Value::str(if i.is_multiple_of(10) {
                "test"
            } else {
                "handler"
            }),
        ),
        (Value::str("owner"), Value::from(format!("team-{}", i % 7))),
    ]);
    if i.is_multiple_of(5) && i > 0 {
        e.meta.insert(
            "depends_on",
            Value::Array(vec![Value::from(format!(
                "app.ns{}:e{}",
                (i - 5) % 50,
                i - 5
            ))]),
        );
    }
    e.data = Value::Map(vec![
        (Value::str("value"), Value::Int(i as i64)),
        (Value::str("source"), Value::str("return {}")),
    ]);
    e
}

fn changeset(n: usize) -> ChangeSet {
    ChangeSet::from(
        (0..n)
            .map(|i| Operation::create(entry(i)))
            .collect::<Vec<_>>(),
    )
}

fn bench_apply(c: &mut Criterion) {
    let mut g = c.benchmark_group("registry");
    g.sample_size(10);
    g.bench_function("apply_10k_creates", |b| {
        b.iter_batched(
            || {
                let r = Registry::default();
                r.handlers().add_listener_fn("bench.*", "bench", |_| Ok(()));
                (r, changeset(10_000))
            },
            |(r, cs)| black_box(r.apply(cs).unwrap()),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench_finder(c: &mut Criterion) {
    let r = Registry::default();
    r.apply(changeset(10_000)).unwrap();
    let criteria: Value =
        serde_yaml::from_str("{.kind: 'bench.*', meta.type: test, '^meta.owner': team-3}").unwrap();
    let q = r.query(&criteria);
    assert_eq!(r.find(&q).len(), 143);
    let snap = r.snapshot();
    let mut g = c.benchmark_group("finder");
    g.bench_function("query_10k_uncached", |b| {
        b.iter(|| black_box(Finder::find_uncached(snap.state(), &q).len()))
    });
    g.bench_function("query_10k_cached", |b| {
        b.iter(|| black_box(r.find(&q).len()))
    });
    g.bench_function("compile_query", |b| {
        b.iter(|| black_box(r.query(&criteria)))
    });
    g.finish();
}

fn bench_history(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let h = SqliteHistory::open(dir.path().join("bench.db")).unwrap();
    let cs = ChangeSet::from(
        (0..10)
            .map(|i| {
                let e = Arc::new(entry(i));
                Operation::update(e.clone()).with_original(Some(e))
            })
            .collect::<Vec<_>>(),
    );
    let mut v = 0u64;
    let mut g = c.benchmark_group("history");
    g.sample_size(20);
    g.bench_function("sqlite_append_version_10_ops", |b| {
        b.iter(|| {
            v += 1;
            h.save(v, v - 1, &cs).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_apply, bench_finder, bench_history);
criterion_main!(benches);
