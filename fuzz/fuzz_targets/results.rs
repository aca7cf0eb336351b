//! The results.json reader (used by reports) on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let _ = apprentice::report::results::Results::from_json(&text, "results.json");
});
