//! Boot and shutdown cost of a project: `App::start` (runtime, registry, components, entries,
//! `auto_start` services) followed by `App::shutdown`.
//!
//! Run: `cargo bench --bench boot` (criterion medians go to `docs/benchmarks.md`).

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use wippy::boot::{App, BootOptions};
use wippy::config::ConfigSources;

fn project(entries: usize, hosts: usize) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("wippy.lock"),
        "directories: {modules: .wippy, src: ./src}\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.path().join("src")).unwrap();
    let mut y = String::from("version: \"1.0\"\nnamespace: bench\nentries:\n");
    for i in 0..hosts {
        y.push_str(&format!(
            "  - {{name: host{i}, kind: process.host, host: {{max_processes: 1000}}, lifecycle: {{auto_start: true}}}}\n"
        ));
    }
    for i in 0..entries {
        y.push_str(&format!(
            "  - {{name: cfg{i}, kind: registry.entry, meta: {{group: g{}}}, value: {i}, list: [a, b, c]}}\n",
            i % 10
        ));
    }
    std::fs::write(d.path().join("src/_index.yaml"), y).unwrap();
    d
}

fn opts(dir: &Path) -> BootOptions {
    let mut o = BootOptions::new(dir);
    o.workers = Some(1);
    o.config = ConfigSources {
        file: Some(dir.join(".wippy.yaml")),
        env: vec![("WIPPY_NODE_ID".into(), "bench".into())],
        ..Default::default()
    };
    o
}

fn boot(c: &mut Criterion) {
    let mut g = c.benchmark_group("boot");
    g.sample_size(30).measurement_time(Duration::from_secs(10));
    for (name, entries, hosts) in [("empty", 0, 0), ("500_entries_4_hosts", 500, 4)] {
        let d = project(entries, hosts);
        g.bench_function(format!("start_shutdown/{name}"), |b| {
            b.iter(|| {
                let app = App::start(opts(d.path())).expect("boot");
                assert_eq!(app.shutdown(), 0);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, boot);
criterion_main!(benches);
