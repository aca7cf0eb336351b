//! The experiment-file reader on arbitrary text: errors must stay one line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    if let Err(error) = apprentice::config::ExperimentConfig::from_toml(&text, "fuzz.toml") {
        assert!(!error.to_string().contains('\n'));
    }
});
