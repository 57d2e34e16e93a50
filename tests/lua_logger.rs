//! `print` and the `logger` module write structured log records (captured here).

use std::sync::{LazyLock, Mutex};

use log::kv::{Key, Value as KvValue, VisitSource};
use wippy::lua::vm::{StateFactory, VmConfig};
use wippy::rt::Pid;

#[derive(Debug, Clone)]
struct Rec {
    level: log::Level,
    msg: String,
    kv: Vec<(String, String)>,
}

static RECORDS: Mutex<Vec<Rec>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        struct V(Vec<(String, String)>);
        impl<'k> VisitSource<'k> for V {
            fn visit_pair(&mut self, k: Key<'k>, v: KvValue<'k>) -> Result<(), log::kv::Error> {
                self.0.push((k.to_string(), v.to_string()));
                Ok(())
            }
        }
        let mut v = V(Vec::new());
        r.key_values().visit(&mut v).unwrap();
        RECORDS.lock().unwrap().push(Rec {
            level: r.level(),
            msg: r.args().to_string(),
            kv: v.0,
        });
    }
    fn flush(&self) {}
}

static INIT: LazyLock<()> = LazyLock::new(|| {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
});

static LOCK: Mutex<()> = Mutex::new(());

fn run(modules: &[&str], src: &str) -> Vec<Rec> {
    LazyLock::force(&INIT);
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    RECORDS.lock().unwrap().clear();
    let f = StateFactory::new(VmConfig::default());
    let mut st = f.acquire(modules).unwrap();
    st.set_process(
        Some(Pid::new("node1", "app:host", "7")),
        Some("app:worker".into()),
    );
    let func = st.load_chunk("app:worker", src).unwrap();
    func.call::<()>(()).unwrap();
    f.release(st);
    RECORDS.lock().unwrap().clone()
}

fn kv<'a>(r: &'a Rec, k: &str) -> Option<&'a str> {
    r.kv.iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
}

#[test]
fn print_is_an_info_record_with_pid_and_location() {
    let recs = run(&[], "\n\nprint('a', 1, 2.0, true, nil)");
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.level, log::Level::Info);
    assert_eq!(r.msg, "a 1 2 true nil");
    assert_eq!(kv(r, "location"), Some("app:worker:3"));
    assert!(kv(r, "pid").unwrap().contains("node1"), "{:?}", r.kv);
}

#[test]
fn logger_levels_fields_and_children() {
    let recs = run(
        &["logger"],
        r#"
        logger:info("hello", {user = "bob", n = 3, ratio = 0.5, ok = true, list = {1, 2}, e = errors.wrap(errors.new("x"), "ctx")})
        local child = logger:with({req = "r1"}):named("svc")
        child:warn("careful")
        child:named("db"):debug(42)
        local fields = {error = "bad thing", code = 7}
        logger:error("failed", fields)
        assert(fields.error == nil and fields.code == 7, "error key is removed from the caller's table")
        logger.info("dot call works")
        local ok = pcall(logger.info, logger, {})
        assert(not ok, "non-string message raises")
        ok = pcall(logger.named, logger, "")
        assert(not ok, "empty name raises")
        "#,
    );
    assert_eq!(recs.len(), 5, "{recs:?}");
    let r = &recs[0];
    assert_eq!((r.level, r.msg.as_str()), (log::Level::Info, "hello"));
    assert_eq!(kv(r, "user"), Some("bob"));
    assert_eq!(kv(r, "n"), Some("3"));
    assert_eq!(kv(r, "ratio"), Some("0.5"));
    assert_eq!(kv(r, "ok"), Some("true"));
    assert_eq!(kv(r, "list"), Some("[1,2]"));
    assert_eq!(kv(r, "e"), Some("ctx: x"));
    assert_eq!(kv(r, "location"), Some("app:worker:2"));
    let r = &recs[1];
    assert_eq!(
        (r.level, kv(r, "logger"), kv(r, "req")),
        (log::Level::Warn, Some("svc"), Some("r1"))
    );
    let r = &recs[2];
    assert_eq!(
        (r.level, r.msg.as_str(), kv(r, "logger")),
        (log::Level::Debug, "42", Some("svc.db"))
    );
    let r = &recs[3];
    assert_eq!(
        (r.level, kv(r, "error"), kv(r, "code")),
        (log::Level::Error, Some("bad thing"), Some("7"))
    );
    assert_eq!(recs[4].msg, "dot call works");
}
