//! The IDX reader on arbitrary bytes, raw and behind a gzip header.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(array) = apprentice::data::idx::parse_idx(bytes, "fuzz.idx") {
        let declared: usize = array.dims.iter().product();
        assert_eq!(declared, array.data.len());
    }
    // Through the file reader too, which detects and bounds gzip.
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("fuzz-idx");
    std::fs::write(&path, bytes).unwrap();
    let _ = apprentice::data::idx::read_idx(&path);
});
