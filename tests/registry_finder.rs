//! Finder operators and caching.

use std::sync::Arc;

use wippy::registry::{ChangeSet, Entry, Registry};
use wippy::rt::Value;

fn y(s: &str) -> Value {
    serde_yaml::from_str(s).unwrap()
}

fn setup() -> Registry {
    let r = Registry::default();
    let mk = |id: &str, kind: &str, meta: &str| {
        let mut e = Entry::new(id, kind);
        e.meta = y(meta);
        e
    };
    r.apply(
        ChangeSet::new()
            .create(mk(
                "app.api:get_user",
                "function.lua",
                "{type: handler, tags: [user, read], version: 2, owner: alice}",
            ))
            .create(mk(
                "app.api:put_user",
                "function.lua",
                "{type: handler, tags: [user, write], owner: bob}",
            ))
            .create(mk(
                "app.test:t1",
                "process.lua",
                "{type: test, suite: smoke, path: /api/users}",
            ))
            .create(mk("lib:util", "library.lua", "{owner: alice-smith}"))
            .create(mk("lib:nested", "library.lua", "{a: {b: deep}}")),
    )
    .unwrap();
    r
}

fn names(r: &Registry, q: &str) -> Vec<String> {
    let q = r.query(&y(q));
    r.find(&q).iter().map(|e| e.id.name().to_string()).collect()
}

#[test]
fn root_field_globs() {
    let r = setup();
    assert_eq!(names(&r, "{.kind: function.lua}"), ["get_user", "put_user"]);
    assert_eq!(names(&r, "{.kind: '*.lua'}").len(), 5);
    assert_eq!(names(&r, "{.kind: 'library*'}"), ["nested", "util"]);
    assert_eq!(names(&r, "{.ns: 'app.*'}"), ["get_user", "put_user", "t1"]);
    assert_eq!(names(&r, "{.ns: app}"), Vec::<String>::new());
    assert_eq!(names(&r, "{.name: 'get*r'}"), ["get_user"]);
    assert_eq!(names(&r, "{.id: 'lib:util'}"), ["util"]);
    assert_eq!(names(&r, "{.id: '*:util'}"), ["util"]);
}

#[test]
fn meta_operators() {
    let r = setup();
    assert_eq!(names(&r, "{meta.type: test}"), ["t1"]);
    assert_eq!(names(&r, "{meta.version: 2}"), ["get_user"]);
    assert_eq!(
        names(&r, "{meta.tags: [user, write]}"),
        ["put_user"],
        "all listed present"
    );
    assert_eq!(names(&r, "{meta.missing: x}"), Vec::<String>::new());
    assert_eq!(names(&r, "{'~meta.owner': '^ali'}"), ["get_user", "util"]);
    assert_eq!(names(&r, "{'*meta.owner': 'smith'}"), ["util"]);
    assert_eq!(
        names(&r, "{'*meta.tags': rea}"),
        ["get_user"],
        "substring over list items"
    );
    assert_eq!(names(&r, "{'^meta.path': /api}"), ["t1"]);
    assert_eq!(names(&r, "{'$meta.owner': bob}"), ["put_user"]);
    assert_eq!(names(&r, "{meta.a.b: deep}"), ["nested"], "nested path");
    assert_eq!(
        names(&r, "{.kind: function.lua, meta.owner: alice}"),
        ["get_user"],
        "AND"
    );
}

#[test]
fn ignored_keys_match_everything() {
    let r = setup();
    assert_eq!(
        names(&r, "{kind: function.lua}").len(),
        5,
        "key without meta. prefix is ignored"
    );
    assert_eq!(
        names(&r, "{'~meta.owner': '(['}").len(),
        5,
        "invalid regex ignored"
    );
    assert_eq!(
        names(&r, "{'^meta.owner': 3}").len(),
        5,
        "non-string operand ignored"
    );
}

#[test]
fn cache_hits_and_invalidation() {
    let r = setup();
    let q = r.query(&y("{meta.type: handler}"));
    let a = r.find(&q);
    let b = r.find(&q);
    assert!(Arc::ptr_eq(&a, &b), "second query served from cache");
    r.apply(ChangeSet::new().create({
        let mut e = Entry::new("app:new", "function.lua");
        e.meta = y("{type: handler}");
        e
    }))
    .unwrap();
    let c = r.find(&q);
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(c.len(), 3);
    // Snapshots evaluate against their own version.
    let old = r.snapshot_at(1).unwrap();
    assert_eq!(old.find(&q).len(), 2);
}
