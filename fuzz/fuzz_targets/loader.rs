//! Fuzz the definition-file loader: YAML and JSON parsing, line mapping, form validation
//! and `file://` interpolation confined to an empty temporary root. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wippy::loader::lines::line_map;
use wippy::loader::{Format, parse_bytes};

fuzz_target!(|data: &[u8]| {
    let root = std::env::temp_dir().join("wippy-fuzz-empty-root");
    let _ = line_map(data);
    let _ = parse_bytes(data, Format::Yaml, &root);
    let _ = parse_bytes(data, Format::Json, &root);
});
