//! `wippy run` as a child process: boot, logs, SIGTERM → exit 0, a second signal → exit 1,
//! JSON logs from the first line, boot/config errors → `Error: …` and exit 1, `run list`,
//! `version`, usage errors.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wippy");

fn manifest(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn wippy() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("RUST_LOG")
        .env_remove("WIPPY_SHUTDOWN_DELAY")
        .env("WIPPY_NODE_ID", "local");
    c
}

/// A running `wippy` with its stderr lines on a channel.
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wippy");
        let err = child.stderr.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Wait for a stderr line containing `needle`.
    fn expect_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    let stacks = thread_dump(self.child.id());
                    let _ = self.child.kill();
                    panic!(
                        "no line containing {needle:?}; saw:\n{}\n{stacks}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of our own child; no memory is involved.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Wait for exit (bounded) and collect the remaining stderr.
    fn wait(mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let stacks = thread_dump(self.child.id());
                let _ = self.child.kill();
                while let Ok(l) = self.lines.try_recv() {
                    self.seen.push(l);
                }
                panic!(
                    "wippy did not exit; saw:\n{}\n{stacks}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(l);
        }
        (status, self.seen)
    }
}

/// Diagnostics for a child that hangs: every thread's state and kernel wait channel from
/// `/proc`, plus user-space backtraces from `gdb` when it is installed.
fn thread_dump(pid: u32) -> String {
    let mut out = format!("--- threads of wippy pid {pid} ---\n");
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let dir = t.path();
            let read = |f: &str| {
                std::fs::read_to_string(dir.join(f))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            };
            let stat = read("stat");
            // Fields after the parenthesised name: state is the first.
            let state = stat
                .rsplit_once(") ")
                .map_or("?", |(_, rest)| rest.split(' ').next().unwrap_or("?"))
                .to_string();
            out.push_str(&format!(
                "tid {} {:?} state {state} wchan {}\n",
                t.file_name().to_string_lossy(),
                read("comm"),
                read("wchan")
            ));
        }
    }
    match Command::new("gdb")
        .args(["-p", &pid.to_string(), "-batch", "-nx"])
        .args(["-ex", "set pagination off", "-ex", "thread apply all bt"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) => out.push_str(&String::from_utf8_lossy(&o.stdout)),
        Err(e) => out.push_str(&format!("(no gdb backtraces: {e})\n")),
    }
    out
}

fn project(index: &str, config: Option<&str>) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("wippy.lock"),
        "directories: {modules: .wippy, src: ./src}\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.path().join("src")).unwrap();
    std::fs::write(d.path().join("src/_index.yaml"), index).unwrap();
    if let Some(c) = config {
        std::fs::write(d.path().join(".wippy.yaml"), c).unwrap();
    }
    d
}

const HOSTS: &str = r#"version: "1.0"
namespace: app
entries:
  - {name: processes, kind: process.host, lifecycle: {auto_start: true}}
  - {name: settings, kind: registry.entry, port: 8080}
"#;

#[test]
fn run_boots_logs_entries_and_stops_on_sigterm_with_exit_0() {
    let mut c = wippy();
    c.args(["run", "-d"]).arg(manifest("examples/hello"));
    let mut r = Running::start(c);
    r.expect_line("entry demo:greet (function.lua)");
    r.expect_line("runtime ready");
    r.signal(libc::SIGTERM);
    r.expect_line("received shutdown signal");
    r.expect_line("shutdown complete");
    let (status, lines) = r.wait();
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    for id in ["demo:cli (process.lua)", "demo:terminal (terminal.host)"] {
        assert!(
            lines.iter().any(|l| l.contains(&format!("entry {id}"))),
            "{id} not logged: {lines:#?}"
        );
    }
}

#[test]
fn auto_start_host_runs_and_sigint_stops_it() {
    let d = project(HOSTS, None);
    let mut c = wippy();
    c.arg("run").arg("-d").arg(d.path());
    let mut r = Running::start(c);
    r.expect_line("process host app:processes running");
    r.expect_line("runtime ready");
    r.signal(libc::SIGINT);
    r.expect_line("process host app:processes stopped");
    let (status, lines) = r.wait();
    assert_eq!(status.code(), Some(0), "{lines:#?}");
}

#[test]
fn second_signal_during_shutdown_exits_1() {
    let d = project(HOSTS, None);
    let mut c = wippy();
    c.arg("run")
        .arg("-d")
        .arg(d.path())
        .env("WIPPY_SHUTDOWN_DELAY", "30s");
    let mut r = Running::start(c);
    r.expect_line("runtime ready");
    r.signal(libc::SIGTERM);
    r.expect_line("draining for 30s");
    let t = Instant::now();
    r.signal(libc::SIGTERM);
    let (status, lines) = r.wait();
    assert_eq!(status.code(), Some(1), "{lines:#?}");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "exit was not immediate"
    );
    assert!(lines.iter().any(|l| l.contains("force exit")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("shutdown complete")));
}

#[test]
fn json_logs_from_the_first_line_including_config_warnings() {
    let d = project(
        HOSTS,
        Some("version: \"1.0\"\nlogger: {encoding: json}\nregistry: {no_such_key: 1}\n"),
    );
    let mut c = wippy();
    c.arg("run").arg("-d").arg(d.path());
    let mut r = Running::start(c);
    r.expect_line("runtime ready");
    r.signal(libc::SIGTERM);
    let (status, lines) = r.wait();
    assert_eq!(status.code(), Some(0));
    assert!(lines.len() > 3);
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        for k in ["level", "ts", "logger", "msg"] {
            assert!(v.get(k).is_some(), "{k} missing in {l}");
        }
    }
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(
        first["level"], "warn",
        "the config warning comes first: {lines:#?}"
    );
    assert!(first["msg"].as_str().unwrap().contains("no_such_key"));
}

#[test]
fn silent_flag_prints_nothing() {
    let d = project(HOSTS, None);
    let mut c = wippy();
    c.arg("run").arg("-s").arg("-d").arg(d.path());
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_sigterm_handler(child.id());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Poll `/proc/<pid>/status` until the process catches SIGTERM (its handler is installed).
fn wait_for_sigterm_handler(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .unwrap_or(0);
        if caught & (1 << (libc::SIGTERM - 1)) != 0 {
            return;
        }
        assert!(Instant::now() < deadline, "SIGTERM handler never installed");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn run_to_end(c: &mut Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_errors_print_error_and_exit_1() {
    let cases = [
        (
            "version: \"2.0\"\n",
            "Error: invalid configuration: .wippy.yaml:1: version: unsupported version: 2.0 (expected \"1.0\")\n",
        ),
        (
            "logger: {level: info}\n",
            "Error: invalid configuration: .wippy.yaml: version: missing version field (must be \"1.0\")\n",
        ),
        (
            "version: \"1.0\"\nshutdown: {timeout: soon}\n",
            "Error: invalid configuration: .wippy.yaml:2: shutdown.timeout: invalid duration \"soon\"",
        ),
    ];
    for (cfg, want) in cases {
        let d = project(HOSTS, Some(cfg));
        let (code, _, err) = run_to_end(wippy().arg("run").arg("-d").arg(d.path()));
        assert_eq!(code, 1, "{cfg}: {err}");
        assert!(err.starts_with(want), "{cfg}:\n got {err:?}\nwant {want:?}");
        assert_eq!(err.lines().count(), 1, "only the error line: {err}");
    }
    let d = project(HOSTS, None);
    let (code, _, err) = run_to_end(
        wippy()
            .args(["run", "--set", "registry.history_type=postgresql", "-d"])
            .arg(d.path()),
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: invalid configuration: --set registry.history_type=postgresql: registry.history_type: expected one of"),
        "{err}"
    );
}

#[test]
fn bad_lock_and_bad_entries_print_error_and_exit_1() {
    let d = project(HOSTS, None);
    std::fs::write(
        d.path().join("wippy.lock"),
        "directories:\n  modules: .wippy\n  src: \"\"\n",
    )
    .unwrap();
    let (code, _, err) = run_to_end(wippy().args(["run", "-s", "-d"]).arg(d.path()));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: load entries: ")
            && err.contains("wippy.lock:1: directories.src must not be empty"),
        "{err}"
    );

    let d = project(
        "version: \"1.0\"\nnamespace: app\nentries:\n  - {name: h, kind: process.host, host: {workers: -1}}\n",
        None,
    );
    let (code, _, err) = run_to_end(wippy().args(["run", "-s", "-d"]).arg(d.path()));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: apply entries: operation rejected for entry app:h: workers must be greater than 0\n"
    );

    let d = project(
        HOSTS,
        Some("version: \"1.0\"\noverride:\n  \"app:nope:port\": 1\n"),
    );
    let (code, _, err) = run_to_end(wippy().args(["run", "-s", "-d"]).arg(d.path()));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: load entries: pipeline stage override failed"),
        "{err}"
    );
}

#[test]
fn commands_list_and_missing_command() {
    let (code, out, _) = run_to_end(
        wippy()
            .args(["run", "list", "-d"])
            .arg(manifest("examples/hello")),
    );
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Available commands:\n\n  hello  Greet someone  (demo:cli)\n\nRun with: wippy run <command>\n"
    );
    let (code, _, err) = run_to_end(
        wippy()
            .args(["run", "-d"])
            .arg(manifest("examples/hello"))
            .arg("nosuch"),
    );
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: command \"nosuch\" not found. Use 'wippy run list' to see available commands\n"
    );
}

/// Until the Lua engine is merged the terminal host does not exist; after the merge this
/// test must show `hi Bob` on stdout and exit 0.
#[test]
fn command_run_reports_the_missing_terminal_host() {
    let (code, _, err) = run_to_end(
        wippy()
            .args(["run", "-d"])
            .arg(manifest("examples/hello"))
            .args(["hello", "Bob"]),
    );
    if wippy::boot::services::ENGINE_AVAILABLE {
        return;
    }
    assert_eq!(code, 1);
    assert_eq!(err, "Error: terminal host not available\n");
}

#[test]
fn version_and_usage_errors() {
    let (code, out, _) = run_to_end(wippy().arg("version"));
    assert_eq!(code, 0);
    assert_eq!(out, format!("wippy {}\n", env!("CARGO_PKG_VERSION")));
    let (code, _, err) = run_to_end(wippy().arg("frobnicate"));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: unrecognized subcommand 'frobnicate'"),
        "{err}"
    );
    let (code, _, err) = run_to_end(wippy().args(["run", "--workers", "many"]));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: invalid value 'many' for '--workers <N>'"),
        "{err}"
    );
    let (code, out, _) = run_to_end(wippy().arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("registry"));
}

/// `wippy` started in the `tests/apps/compat/cli` project (as a real app would be).
fn compat_cli() -> Command {
    let mut c = wippy();
    c.current_dir(manifest("tests/apps/compat/cli"))
        .env_remove("COMPAT_WHO")
        .env_remove("GOMEMLIMIT");
    c
}

#[test]
fn run_flags_are_parsed_anywhere_on_the_line() {
    // Known flags after the command name are runtime flags (as cobra parses them); `--` ends
    // them; unknown words stay arguments.
    let (code, out, err) =
        run_to_end(compat_cli().args(["run", "echo", "a", "-s", "b", "--", "-v"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "args=a,b,-v\ngreeting=hello answer=3(integer) who=nobody\n"
    );
    assert_eq!(err, "", "-s is silent");
    let (code, out, _) =
        run_to_end(compat_cli().args(["run", "code", "7", "--set", "shutdown.timeout=5s"]));
    assert_eq!((code, out.as_str()), (7, ""));
}

#[test]
fn global_flags_event_streams_profiler_memory_limit() {
    let (code, out, err) =
        run_to_end(compat_cli().args(["run", "-e", "-p", "-m", "512M", "code", "3"]));
    assert_eq!((code, out.as_str(), err.as_str()), (3, "", ""));
    let (code, _, err) = run_to_end(compat_cli().args(["run", "--memory-limit=2GB", "code", "0"]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_to_end(compat_cli().args(["run", "-m", "lots", "code", "0"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: --memory-limit: invalid memory limit \"lots\" (expected e.g. 512M, 2G)\n"
    );
    let (code, _, err) = run_to_end(
        compat_cli()
            .env("GOMEMLIMIT", "1GiB")
            .args(["run", "code", "0"]),
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_to_end(
        compat_cli()
            .env("GOMEMLIMIT", "x")
            .args(["run", "code", "0"]),
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: GOMEMLIMIT: invalid memory limit"),
        "{err}"
    );
}

#[test]
fn profiles_and_composed_config_files() {
    let (code, out, err) = run_to_end(compat_cli().args(["run", "--profile", "loud", "echo"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "args=\ngreeting=HELLO answer=3(integer) who=nobody\n");
    // A profile's disable list ops remove the command.
    let (code, _, err) = run_to_end(compat_cli().args(["run", "echo", "--profile", "strict"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: command \"echo\" not found. Use 'wippy run list' to see available commands\n"
    );
    let (code, out, _) = run_to_end(compat_cli().args(["run", "list", "--profile", "strict"]));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Available commands:\n\n  code  (app:code_cli)\n  run-tests  Run the test suite  (app:tests)\n\nRun with: wippy run <command>\n"
    );
    let (code, _, err) = run_to_end(compat_cli().args(["run", "--profile", "nope", "echo"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: invalid configuration: --profile nope: profile \"nope\" not found\n"
    );
    // Repeatable --config: later files override; ${env:NAME} reads the OS environment.
    let (code, out, err) = run_to_end(compat_cli().env("COMPAT_WHO", "me").args([
        "--config",
        ".wippy.yaml",
        "--config",
        "extra.yaml",
        "run",
        "echo",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "args=\ngreeting=hello answer=3(integer) who=me\n");
    let (code, _, err) = run_to_end(compat_cli().args([
        "--config",
        ".wippy.yaml",
        "--config",
        "extra.yaml",
        "run",
        "echo",
    ]));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: invalid configuration: ")
            && err
                .ends_with("extra.yaml:2: override: missing OS environment variable: COMPAT_WHO\n"),
        "{err}"
    );
    let (code, _, err) = run_to_end(compat_cli().args(["--config", "missing.yaml", "run", "echo"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("missing.yaml: failed to read config file"),
        "{err}"
    );
}

#[test]
fn packs_and_hub_modules_are_refused_clearly() {
    let (code, _, err) = run_to_end(compat_cli().args(["run", "snapshot.wapp"]));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: running a pack (snapshot.wapp) is not supported"),
        "{err}"
    );
    let (code, _, err) = run_to_end(compat_cli().args(["run", "acme/http@1.2.3"]));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: running hub module acme/http@1.2.3 is not supported"),
        "{err}"
    );
}

/// A module pinned in `wippy.lock` but not vendored (this runtime cannot download it) is a
/// warning naming it; the project runs without its entries. Upstream's examples pin
/// `wippy/terminal` next to a locally declared `terminal.host`.
#[test]
fn a_missing_locked_module_is_a_warning_and_the_app_runs() {
    let d = project(
        r#"version: "1.0"
namespace: app
entries:
  - {name: terminal, kind: terminal.host, lifecycle: {auto_start: true}}
  - name: hello
    kind: process.lua
    modules: [io]
    method: main
    source: |
      local io = require("io")
      return {main = function() io.print("hello") return 0 end}
"#,
        None,
    );
    std::fs::write(
        d.path().join("wippy.lock"),
        "directories: {modules: .wippy, src: ./src}\nmodules:\n  - {name: wippy/terminal, version: 0.3.9}\n",
    )
    .unwrap();
    let (code, out, err) =
        run_to_end(
            wippy()
                .current_dir(d.path())
                .args(["run", "-x", "app:hello"]),
        );
    assert_eq!((code, out.as_str()), (0, "hello\n"), "{err}");
    let (code, out, err) =
        run_to_end(
            wippy()
                .current_dir(d.path())
                .args(["run", "-v", "-x", "app:hello"]),
        );
    assert_eq!((code, out.as_str()), (0, "hello\n"), "{err}");
    assert!(
        err.contains("module wippy/terminal@0.3.9 is not installed under")
            && err.contains("its entries are not loaded"),
        "{err}"
    );
}

#[test]
fn workspace_replacements_load_a_local_module() {
    let dir = manifest("tests/apps/compat/workspace");
    let (code, out, err) = run_to_end(wippy().current_dir(&dir).args(["run", "show"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from-local\tacme/tools\t1.2.0\n");
    // Without the replacement the locked module must be vendored.
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain.yaml");
    std::fs::write(&plain, "version: \"1.0\"\n").unwrap();
    let (code, _, err) = run_to_end(
        wippy()
            .current_dir(&dir)
            .arg("--config")
            .arg(&plain)
            .args(["run", "show"]),
    );
    // Without the replacement the module is not installed: a warning, and its entries are
    // missing (the command finds no `acme.tools:info`).
    assert_eq!(code, 1);
    assert!(
        err.contains("app:show:3: attempt to index a nil value"),
        "{err}"
    );
    let cfg = tmp.path().join("ws.yaml");
    std::fs::write(
        &cfg,
        "version: \"1.0\"\nworkspace:\n  replacements:\n    acme/tools: ./nope\n",
    )
    .unwrap();
    let (code, _, err) = run_to_end(
        wippy()
            .current_dir(&dir)
            .arg("--config")
            .arg(&cfg)
            .args(["run", "show"]),
    );
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: load entries: workspace.replacements: \"acme/tools\" → \"./nope\": target directory does not exist\n"
    );
}

#[test]
fn exec_spec_and_terminal_host_errors() {
    let dir = manifest("tests/apps/compat/hosts");
    let run = |args: &[&str]| run_to_end(wippy().current_dir(&dir).args(args));
    let (code, _, err) = run(&["run", "hi"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: multiple terminal hosts found (app:term_a, app:term_b), use --host to specify\n"
    );
    let (code, out, err) = run(&["run", "--host", "app:term_b", "hi", "x"]);
    assert_eq!((code, out.as_str()), (0, "hi\tx\n"), "{err}");
    let (code, _, err) = run(&["run", "-x", "cli"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: invalid exec spec: missing separator ':', expected format: namespace:entry\n"
    );
    let (code, _, err) = run(&["run", "-x", "app:"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: invalid exec spec: entry name cannot be empty\n"
    );
    // Without any terminal host.
    let (code, _, err) =
        run_to_end(compat_cli().args(["run", "-o", "app:term:kind=process.host", "code", "1"]));
    assert_eq!(code, 1);
    assert_eq!(err, "Error: no terminal.host found in registry\n");
}

#[test]
fn wippy_test_runs_the_test_entrypoint() {
    let (code, out, err) = run_to_end(compat_cli().args(["test"]));
    assert_eq!((code, out.as_str()), (0, "testing with 0 args\n"), "{err}");
    let (code, out, _) = run_to_end(compat_cli().args(["test", "fail"]));
    assert_eq!((code, out.as_str()), (1, "testing with 1 args\n"));
    let (code, _, err) =
        run_to_end(compat_cli().args(["test", "-o", "app:tests:meta.command.use_case=run"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: no test entrypoint found (declare meta.command.use_case: test on a process entry)\n"
    );
}

/// Copy a fixture project into a fresh temporary directory (for apps that write files).
fn copy_fixture(rel: &str) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let dst = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &dst);
            } else {
                std::fs::copy(e.path(), dst).unwrap();
            }
        }
    }
    let t = tempfile::tempdir().unwrap();
    copy(&manifest(rel), t.path());
    t
}

#[test]
fn env_storages_and_variables_back_the_env_module() {
    let t = copy_fixture("tests/apps/compat/env");
    let (code, out, err) = run_to_end(
        wippy()
            .current_dir(t.path())
            .env("COMPAT_HOME", "/home/x")
            .env_remove("NOT_SET_ANYWHERE")
            .args(["run", "env"]),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "COMPAT_HOME=/home/x\n\
         APP_MODE=production\n\
         app.env:port=8080\n\
         secret=fallback\n\
         NOT_SET_ANYWHERE=<NotFound: environment variable not found>\n\
         HOME=<NotFound: environment variable not found>\n\
         set PORT\tnil\tPermissionDenied\n\
         set APP_MODE\ttrue\tnil\n\
         APP_MODE=dev\n\
         set secret\ttrue\tnil\n\
         secret=s3\n"
    );
    // The file storage was created (auto_create) and written.
    assert_eq!(
        std::fs::read_to_string(t.path().join(".wippy/test.env")).unwrap(),
        "secret=s3\n"
    );
    // A second run reads the stored value back.
    let (code, out, _) = run_to_end(wippy().current_dir(t.path()).args(["run", "env"]));
    assert_eq!(code, 0);
    assert!(out.contains("secret=s3\n"), "{out}");
    assert!(out.contains("COMPAT_HOME=<NotFound"), "{out}");
}
