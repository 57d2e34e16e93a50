//! History: version navigation, SQLite replay across restarts, crash safety.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wippy::registry::history::Step;
use wippy::registry::open::{list_versions, rollback_offline};
use wippy::registry::{
    ChangeSet, Entry, History, Id, NoHistory, Registry, RegistryOptions, SqliteHistory,
};
use wippy::rt::Value;

fn counter(v: i64) -> Entry {
    Entry::new("app:counter", "registry.entry").with_data(Value::Int(v))
}

fn sqlite_registry(path: &Path) -> Registry {
    Registry::new(RegistryOptions {
        history: Box::new(SqliteHistory::open(path).unwrap()),
        ..Default::default()
    })
    .unwrap()
}

fn get_int(r: &Registry, id: &str) -> Option<i64> {
    r.get(&Id::parse(id)).and_then(|e| e.data.as_i64())
}

#[test]
fn navigation_between_branches() {
    let r = Registry::default();
    r.apply(ChangeSet::new().create(counter(1))).unwrap(); // v1
    r.apply(
        ChangeSet::new()
            .update(counter(2))
            .create(Entry::new("app:b", "registry.entry")),
    )
    .unwrap(); // v2
    r.apply(ChangeSet::new().update(counter(3))).unwrap(); // v3
    r.apply_version(1).unwrap();
    assert_eq!(get_int(&r, "app:counter"), Some(1));
    assert!(r.get(&Id::parse("app:b")).is_none());
    let v4 = r
        .apply(
            ChangeSet::new()
                .update(counter(40))
                .create(Entry::new("app:c", "registry.entry")),
        )
        .unwrap();
    assert_eq!(
        (v4.id, v4.parent),
        (4, Some(1)),
        "new branch from v1, ids never reused"
    );
    // Jump across branches: v4 → v3 goes back to v1 then forward through v2, v3.
    r.apply_version(3).unwrap();
    assert_eq!(get_int(&r, "app:counter"), Some(3));
    assert!(r.get(&Id::parse("app:b")).is_some());
    assert!(r.get(&Id::parse("app:c")).is_none());
    assert_eq!(
        r.snapshot_at(4)
            .unwrap()
            .get(&Id::parse("app:counter"))
            .unwrap()
            .data,
        Value::Int(40)
    );
    assert!(r.snapshot_at(0).unwrap().state().is_empty());
    assert_eq!(r.current_version().id, 3);
    assert_eq!(r.next_version_of(1).map(|v| v.id), Some(4));
    assert_eq!(
        r.apply_version(99).unwrap_err().to_string(),
        "version not found: 99"
    );
    let t = wippy::registry::VersionTree::from_pairs(
        r.versions().into_iter().map(|v| (v.id, v.parent)),
    );
    assert_eq!(
        t.path(3, 4).unwrap(),
        vec![Step::Back(3), Step::Back(2), Step::Forward(4)]
    );
}

#[test]
fn no_history_backend_cannot_navigate() {
    let r = Registry::new(RegistryOptions {
        history: Box::new(NoHistory),
        ..Default::default()
    })
    .unwrap();
    r.apply(ChangeSet::new().create(counter(1))).unwrap();
    assert_eq!(
        r.apply_version(0).unwrap_err().to_string(),
        "registry history is disabled"
    );
}

#[test]
fn sqlite_replay_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/registry.db");
    let baseline =
        vec![Entry::new("app:file", "registry.entry").with_data(Value::str("from yaml"))];
    {
        let r = sqlite_registry(&db);
        r.load_state(baseline.clone()).unwrap();
        r.apply(ChangeSet::new().create(counter(1))).unwrap();
        r.apply(ChangeSet::new().update(counter(2)).delete("app:file"))
            .unwrap();
        r.apply(ChangeSet::new().update(counter(3))).unwrap();
        r.apply_version(2).unwrap(); // head = 2
    }
    {
        let r = sqlite_registry(&db);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        r.handlers().add_observer_fn("**", "o", move |ev| {
            s2.lock().unwrap().push(ev.entry.id.to_string())
        });
        let v = r.load_state(baseline.clone()).unwrap();
        assert_eq!(v.id, 2);
        assert_eq!(get_int(&r, "app:counter"), Some(2));
        assert!(r.get(&Id::parse("app:file")).is_none(), "deleted at v2");
        assert_eq!(
            r.versions().iter().map(|v| v.id).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        // Replay created no version; navigation still works after the restart.
        r.apply_version(3).unwrap();
        assert_eq!(get_int(&r, "app:counter"), Some(3));
        r.apply_version(0).unwrap();
        assert_eq!(
            r.get(&Id::parse("app:file")).unwrap().data,
            Value::str("from yaml")
        );
        assert!(r.get(&Id::parse("app:counter")).is_none());
        let v5 = r.apply(ChangeSet::new().create(counter(5))).unwrap();
        assert_eq!((v5.id, v5.parent), (4, Some(0)));
    }
    let h = SqliteHistory::open(&db).unwrap();
    let rows = list_versions(&h).unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r.current)
            .map(|r| r.version.id)
            .collect::<Vec<_>>(),
        vec![4]
    );
    rollback_offline(&h, 1).unwrap();
    drop(h);
    let r = sqlite_registry(&db);
    r.load_state(baseline).unwrap();
    assert_eq!(get_int(&r, "app:counter"), Some(1));
}

#[test]
fn sqlite_rejects_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    drop(SqliteHistory::open(&db).unwrap());
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute(
        "UPDATE metadata SET value = '9' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(c);
    let err = SqliteHistory::open(&db).unwrap_err().to_string();
    assert!(
        err.ends_with("schema version 9 is newer than supported 1"),
        "{err}"
    );
}

const CHILD_ENV: &str = "WIPPY_TEST_CRASH_CHILD_DB";

/// Child mode: apply versions forever, printing each committed version id.
#[test]
fn crash_child() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    let r = sqlite_registry(Path::new(&db));
    r.load_state(Vec::new()).unwrap();
    let mut n = r.current_version().id as i64;
    loop {
        n += 1;
        let mut cs = ChangeSet::new();
        cs = if n == 1 {
            cs.create(counter(n))
        } else {
            cs.update(counter(n))
        };
        for i in 0..20 {
            cs = cs.create(
                Entry::new(Id::new("bulk", &format!("v{n}_{i}")), "registry.entry")
                    .with_data(Value::Int(n)),
            );
        }
        let v = r.apply(cs).unwrap();
        println!("committed {}", v.id);
    }
}

#[test]
fn killed_mid_apply_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut last_seen = 0u64;
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let start = Instant::now();
        let mut committed = 0u64;
        let target = 5 + round * 3;
        while let Some(Ok(line)) = lines.next() {
            if let Some(v) = line.strip_prefix("committed ") {
                committed = v.parse().unwrap();
                if committed >= last_seen + target {
                    break;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(60), "child too slow");
        }
        child.kill().unwrap(); // SIGKILL, very likely in the middle of the next apply
        child.wait().unwrap();
        assert!(committed > last_seen);

        // Reopen: everything acknowledged is there, and the head version is complete.
        let h = SqliteHistory::open(&db).unwrap();
        let head = h.head().unwrap();
        assert!(head >= committed, "head {head} < acknowledged {committed}");
        let ids: Vec<u64> = h.versions().unwrap().into_iter().map(|(v, _)| v).collect();
        assert_eq!(
            ids,
            (0..=head).collect::<Vec<_>>(),
            "no gaps, no half-written versions"
        );
        for v in 1..=head {
            assert_eq!(
                h.changeset(v).unwrap().unwrap().len(),
                21,
                "version {v} complete"
            );
        }
        drop(h);
        let r = sqlite_registry(&db);
        r.load_state(Vec::new()).unwrap();
        assert_eq!(get_int(&r, "app:counter"), Some(head as i64));
        assert_eq!(r.snapshot().state().len(), 1 + 20 * head as usize);
        last_seen = head;
    }
}
