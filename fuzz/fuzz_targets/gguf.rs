//! The GGUF reader, the dequantiser and the tokenizer and config built from a file's metadata,
//! on arbitrary bytes.
#![no_main]

use std::path::Path;

use apprentice::lm::gguf::GgufFile;
use apprentice::lm::teacher::llama_config;
use apprentice::lm::tokenizer::LmTokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(bytes.to_vec(), Path::new("fuzz.gguf")) else {
        return;
    };
    for info in file.tensors() {
        // Bounds were checked when the file was read: this slice never panics.
        assert_eq!(file.tensor_bytes(info).len() as u64, info.bytes);
        if let Ok((values, _)) = file.dequantize(&info.name, None) {
            assert_eq!(values.len() as u64, info.values);
        }
    }
    let _ = llama_config(&file);
    if let Ok(tokenizer) = LmTokenizer::from_gguf(&file)
        && let Ok(ids) = tokenizer.encode("a b")
    {
        let _ = tokenizer.decode(&ids);
    }
});
