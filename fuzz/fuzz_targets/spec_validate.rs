//! Arbitrary bytes → husk's config.json / process.json parsing (the same
//! `parse_json` the CLI uses: field-naming errors, unknown properties
//! ignored) → validation, and the oci-spec fixups. Must never panic.
#![no_main]

use husk::spec::{self, Process, Spec};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("config.json");
    if let Ok(s) = spec::parse_json::<Spec>(path, data) {
        let _ = spec::validate_spec(&s);
    }
    if let Ok(p) = spec::parse_json::<Process>(Path::new("process.json"), data) {
        let _ = spec::validate_process(&p, "process");
    }
    // load_bundle's path for configs with the spellings it rewrites.
    if let Ok(mut v) = spec::parse_json::<serde_json::Value>(path, data) {
        spec::fixups(&mut v);
        if let Ok(s) = serde_json::to_vec(&v) {
            if let Ok(s) = spec::parse_json::<Spec>(path, &s) {
                let _ = spec::validate_spec(&s);
            }
        }
    }
});
