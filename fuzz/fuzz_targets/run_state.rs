//! The mid-training state reader (manifest and files) on arbitrary manifests.
#![no_main]

use apprentice::distill::state::Checkpointing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("state-000000001.json"), bytes).unwrap();
    std::fs::write(folder.path().join("model-000000001.safetensors"), b"weights").unwrap();
    std::fs::write(folder.path().join("optimizer-000000001.bin"), b"moments").unwrap();
    let checkpointing = Checkpointing {
        dir: folder.path().to_path_buf(),
        every_steps: 0,
        keep_last: 2,
        identity: "fuzz".into(),
    };
    let _ = checkpointing.load_latest();
});
