//! The acceptance-suite protocol shared by the test apps (`tests/apps/*`): the `meta.type:
//! test` entries of one `meta.suite`, sorted by id, are handed to the app's `<ns>:runner`
//! process, whose result `{passed, failed = {{id, error}…}}` must report every test passed.

use wippy::registry::Registry;
use wippy::rt::{Error, Value};

/// Run `suite` through `exec` (which starts `<ns>:runner` with the test ids as input);
/// panics listing every failed test. Returns the number of tests run.
pub fn run(
    registry: &Registry,
    suite: &str,
    exec: impl FnOnce(Vec<Value>) -> Result<Value, Error>,
) -> usize {
    let mut ids: Vec<String> = registry
        .snapshot()
        .entries()
        .iter()
        .filter(|e| e.meta("type").and_then(Value::as_str) == Some("test"))
        .filter(|e| e.meta("suite").and_then(Value::as_str) == Some(suite))
        .map(|e| e.id.to_string())
        .collect();
    ids.sort();
    assert!(!ids.is_empty(), "suite {suite} has no tests");
    let input = ids.iter().map(|s| Value::from(s.as_str())).collect();
    let r = exec(input).unwrap_or_else(|e| panic!("runner failed: {e} {e:?}"));
    let failed = r.get("failed").and_then(Value::as_array).unwrap_or(&[]);
    if !failed.is_empty() {
        let lines: Vec<String> = failed
            .iter()
            .map(|f| {
                format!(
                    "  {}: {}",
                    f.get("id").and_then(Value::as_str).unwrap_or("?"),
                    f.get("error").and_then(Value::as_str).unwrap_or("?")
                )
            })
            .collect();
        panic!(
            "suite {suite}: {} of {} tests failed:\n{}",
            failed.len(),
            ids.len(),
            lines.join("\n")
        );
    }
    let passed = r.get("passed").and_then(Value::as_i64).unwrap_or(0) as usize;
    assert_eq!(passed, ids.len(), "suite {suite}: not every test reported");
    passed
}
