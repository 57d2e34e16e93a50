//! `wippy init` as a child process.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_wippy");

#[test]
fn init_writes_and_updates_the_lock_file() {
    let d = tempfile::tempdir().unwrap();
    let lock = d.path().join("wippy.lock");
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .current_dir(d.path())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(run(&["init", "-s"]).0, 0);
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        "directories:\n  modules: .wippy\n  src: ./src\n"
    );
    assert!(!d.path().join("src").exists(), "init does not create src");
    // The loader accepts what init wrote.
    wippy::loader::LockFile::load(&lock).expect("valid lock");

    std::fs::write(
        &lock,
        "modules:\n- name: acme/kit\n  version: 1.2.0\ndirectories:\n  modules: old\n  src: old\n",
    )
    .unwrap();
    assert_eq!(
        run(&["init", "-s", "-d", "app", "--modules-dir", "deps"]).0,
        0
    );
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        "directories:\n  modules: deps\n  src: app\nmodules:\n- name: acme/kit\n  version: 1.2.0\n"
    );

    assert_eq!(run(&["init", "-s", "-l", "other.lock"]).0, 0);
    assert!(d.path().join("other.lock").is_file());

    std::fs::write(&lock, "- just\n- a list\n").unwrap();
    let (code, err) = run(&["init", "-s"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: wippy.lock: invalid lock file: expected a mapping, got table\n"
    );
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        "- just\n- a list\n"
    );
}
