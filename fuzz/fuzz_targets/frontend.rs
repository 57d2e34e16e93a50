//! Fuzz the typed-Lua front end with arbitrary bytes: it must never panic or hang, only return
//! errors; an accepted chunk keeps every line break (so Lua line numbers stay the user's).
//!
//! Run: `cargo +nightly fuzz run frontend` (from the repository root). The same properties run on
//! stable in CI through `tests/frontend_fuzz.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn line_breaks(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n' || c == b'\r').count()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = wippy::lua::frontend::translate_bytes(data, "fuzz") {
        assert_eq!(line_breaks(t.code()), line_breaks(data), "line breaks must be preserved");
    }
});
