//! The checkpoint reader on arbitrary files: refuse or load, never panic, never allocate more
//! than the file holds.
#![no_main]

use apprentice::backend::ComputeDevice;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("fuzz.safetensors");
    std::fs::write(&path, bytes).unwrap();
    if let Err(error) = apprentice::checkpoint::load(&path, &ComputeDevice::cpu()) {
        assert!(error.to_string().contains("fuzz.safetensors"));
    }
});
