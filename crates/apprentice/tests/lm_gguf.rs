//! The GGUF reader on the real SmolLM2 file (metadata values, tensor shapes and types) and on
//! broken files: each gets a one-line error naming the file and the key or tensor, never a
//! panic and never an allocation the file cannot back.

mod common;

use std::path::Path;

use apprentice::lm::gguf::{GgufError, GgufFile, MetaValue};
use apprentice::lm::quant::GgmlType;
use apprentice::lm::teacher::llama_config;
use apprentice::lm::tokenizer::LmTokenizer;

const MODEL: &str = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Writes small GGUF files by hand, so that each broken field can be set on purpose.
#[derive(Default)]
struct Writer {
    kvs: Vec<u8>,
    kv_count: u64,
    infos: Vec<u8>,
    tensor_count: u64,
    data: Vec<u8>,
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl Writer {
    fn kv_str(&mut self, key: &str, value: &str) -> &mut Self {
        string(&mut self.kvs, key);
        self.kvs.extend(8u32.to_le_bytes());
        string(&mut self.kvs, value);
        self.kv_count += 1;
        self
    }

    fn kv_u32(&mut self, key: &str, value: u32) -> &mut Self {
        string(&mut self.kvs, key);
        self.kvs.extend(4u32.to_le_bytes());
        self.kvs.extend(value.to_le_bytes());
        self.kv_count += 1;
        self
    }

    fn kv_f32(&mut self, key: &str, value: f32) -> &mut Self {
        string(&mut self.kvs, key);
        self.kvs.extend(6u32.to_le_bytes());
        self.kvs.extend(value.to_le_bytes());
        self.kv_count += 1;
        self
    }

    fn kv_strings(&mut self, key: &str, values: &[&str]) -> &mut Self {
        string(&mut self.kvs, key);
        self.kvs.extend(9u32.to_le_bytes());
        self.kvs.extend(8u32.to_le_bytes());
        self.kvs.extend((values.len() as u64).to_le_bytes());
        for v in values {
            string(&mut self.kvs, v);
        }
        self.kv_count += 1;
        self
    }

    /// A tensor of f32 values at the next aligned offset.
    fn tensor_f32(&mut self, name: &str, dims: &[u64]) -> &mut Self {
        let values: u64 = dims.iter().product();
        let offset = self.data.len() as u64;
        self.info(name, dims, 0, offset);
        for i in 0..values {
            self.data.extend((i as f32).to_le_bytes());
        }
        while !self.data.len().is_multiple_of(32) {
            self.data.push(0);
        }
        self
    }

    fn info(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        string(&mut self.infos, name);
        self.infos.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self.tensor_count += 1;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(self.tensor_count.to_le_bytes());
        out.extend(self.kv_count.to_le_bytes());
        out.extend(&self.kvs);
        out.extend(&self.infos);
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
        out.extend(&self.data);
        out
    }
}

fn parse(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
    GgufFile::from_bytes(bytes, Path::new("broken.gguf"))
}

/// The error of a file that must be refused: one line, naming the file and each of `names`.
fn refused(result: Result<GgufFile, GgufError>, names: &[&str]) -> String {
    let message = result.expect_err("a broken file was accepted").to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    assert!(message.starts_with("broken.gguf: "), "{message}");
    for name in names {
        assert!(message.contains(name), "{message:?} does not name {name:?}");
    }
    message
}

/// A minimal llama-shaped file without any tokenizer metadata.
fn tiny_llama(arch: &str) -> Writer {
    let mut w = Writer::default();
    w.kv_str("general.architecture", arch)
        .kv_u32("general.alignment", 32)
        .kv_u32("llama.block_count", 1)
        .kv_u32("llama.context_length", 64)
        .kv_u32("llama.embedding_length", 8)
        .kv_u32("llama.feed_forward_length", 16)
        .kv_u32("llama.attention.head_count", 2)
        .kv_u32("llama.attention.head_count_kv", 1)
        .kv_f32("llama.rope.freq_base", 10000.0)
        .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        .tensor_f32("token_embd.weight", &[8, 10]);
    w
}

#[test]
fn the_real_file_reads_with_its_metadata_and_tensors() {
    let Some(data) = common::shared_data("the_real_file_reads_with_its_metadata_and_tensors")
    else {
        return;
    };
    let file = GgufFile::open(&data.join(MODEL)).unwrap();
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    assert_eq!(file.metadata().len(), 33);
    assert_eq!(file.string("general.architecture").unwrap(), "llama");
    assert_eq!(file.unsigned("llama.block_count").unwrap(), 30);
    assert_eq!(file.unsigned("llama.embedding_length").unwrap(), 576);
    assert_eq!(file.unsigned("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(file.float("llama.rope.freq_base").unwrap(), 100000.0);
    assert_eq!(
        file.get("general.languages"),
        Some(&MetaValue::Array(vec![MetaValue::String("en".into())]))
    );
    assert_eq!(file.strings("tokenizer.ggml.tokens").unwrap().len(), 49152);
    assert_eq!(file.strings("tokenizer.ggml.merges").unwrap().len(), 48900);
    assert_eq!(
        file.get("tokenizer.ggml.add_bos_token"),
        Some(&MetaValue::Bool(false))
    );
    assert_eq!(file.tensors().len(), 272);
    let embed = file.tensor("token_embd.weight").unwrap();
    assert_eq!(
        (embed.shape(), embed.ty),
        (vec![49152, 576], GgmlType::Q8_0)
    );
    let q = file.tensor("blk.29.attn_q.weight").unwrap();
    assert_eq!((q.shape(), q.ty), (vec![576, 576], GgmlType::Q4_1));
    let k = file.tensor("blk.0.attn_k.weight").unwrap();
    assert_eq!(k.shape(), vec![192, 576]);
    let norm = file.tensor("output_norm.weight").unwrap();
    assert_eq!((norm.shape(), norm.ty), (vec![576], GgmlType::F32));
    assert!(file.tensor("output.weight").is_none(), "tied embeddings");
    // Offsets lie inside the file and on the alignment.
    for t in file.tensors() {
        assert_eq!(t.offset % 32, 0, "{}", t.name);
        assert_eq!(file.tensor_bytes(t).len() as u64, t.bytes);
    }
    let config = llama_config(&file).unwrap();
    assert_eq!(
        (
            config.layers,
            config.hidden,
            config.heads,
            config.kv_heads,
            config.ffn
        ),
        (30, 576, 9, 3, 1536)
    );
    assert_eq!(config.vocab_size, 49152);
    assert!(config.tied);
    let (values, shape) = file
        .dequantize("blk.0.ffn_norm.weight", Some(&[576]))
        .unwrap();
    assert_eq!(shape, vec![576]);
    assert!(values.iter().all(|v| v.is_finite()) && values.iter().any(|&v| v != 0.0));
    let err = file
        .dequantize("blk.0.ffn_norm.weight", Some(&[575]))
        .unwrap_err();
    assert!(err.to_string().contains("blk.0.ffn_norm.weight"), "{err}");
}

#[test]
fn truncated_copies_of_the_real_file_are_refused() {
    let Some(data) = common::shared_data("truncated_copies_of_the_real_file_are_refused") else {
        return;
    };
    let bytes = std::fs::read(data.join(MODEL)).unwrap();
    // Inside the header, inside the metadata (the vocabulary), inside the tensor infos, and
    // inside the data (the last tensor's bytes).
    for cut in [3, 20, 5_000, 1_700_000, 1_780_000, bytes.len() - 1] {
        let result = parse(bytes[..cut].to_vec());
        let message = refused(result, &[]);
        assert!(
            message.contains("truncated")
                || message.contains("past the end")
                || message.contains("cannot fit"),
            "cut at {cut}: {message}"
        );
    }
    let whole = parse(bytes).unwrap();
    assert_eq!(whole.tensors().len(), 272);
}

#[test]
fn a_wrong_magic_or_version_is_refused() {
    let mut bytes = tiny_llama("llama").bytes();
    bytes[0] = b'X';
    refused(parse(bytes), &["magic"]);
    let mut bytes = tiny_llama("llama").bytes();
    bytes[4] = 1;
    refused(parse(bytes), &["version 1"]);
}

#[test]
fn absurd_counts_and_lengths_are_refused_before_allocating() {
    // Tensor and metadata counts of 2^64 - 1.
    for field in [8, 16] {
        let mut bytes = tiny_llama("llama").bytes();
        bytes[field..field + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        refused(parse(bytes), &["cannot fit"]);
    }
    // A key whose length is 2^63.
    let mut bytes = tiny_llama("llama").bytes();
    bytes[24..32].copy_from_slice(&(1u64 << 63).to_le_bytes());
    refused(parse(bytes), &["truncated"]);
    // An array of 2^40 strings.
    let mut w = Writer::default();
    w.kv_strings("tokenizer.ggml.tokens", &["a"]);
    let mut bytes = w.bytes();
    let at = 24 + 8 + "tokenizer.ggml.tokens".len() + 8;
    bytes[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    refused(parse(bytes), &["tokenizer.ggml.tokens", "cannot fit"]);
    // A tensor whose dimensions overflow, and one with 9 dimensions.
    let mut w = Writer::default();
    w.info("huge", &[1 << 32, 1 << 32, 1 << 32], 0, 0);
    refused(parse(w.bytes()), &["\"huge\"", "overflow"]);
    let mut w = Writer::default();
    w.info("deep", &[1; 9], 0, 0);
    refused(parse(w.bytes()), &["\"deep\"", "dimensions"]);
}

#[test]
fn tensors_out_of_bounds_or_misaligned_are_refused() {
    let mut w = tiny_llama("llama");
    w.info("far", &[4], 0, 1 << 20);
    refused(parse(w.bytes()), &["\"far\"", "past the end"]);
    let mut w = tiny_llama("llama");
    w.info("wrapping", &[4], 0, u64::MAX - 31);
    refused(parse(w.bytes()), &["\"wrapping\"", "past the end"]);
    let mut w = tiny_llama("llama");
    w.info("odd", &[4], 0, 4);
    refused(parse(w.bytes()), &["\"odd\"", "alignment"]);
    let mut w = tiny_llama("llama");
    w.info("blocky", &[31], 8, 0);
    refused(parse(w.bytes()), &["\"blocky\"", "block"]);
}

#[test]
fn unknown_types_are_refused_and_unsupported_ones_named() {
    let mut w = tiny_llama("llama");
    w.info("strange", &[4], 99, 0);
    refused(parse(w.bytes()), &["\"strange\"", "unknown tensor type 99"]);
    // A known type that is not dequantised: read, then refused by name when its values are asked.
    let mut w = tiny_llama("llama");
    w.data.extend([0u8; 256]);
    let offset = w.data.len() as u64 - 256;
    w.info("k_quant", &[256], 14, offset);
    w.data.extend([0u8; 210]);
    let file = parse(w.bytes()).unwrap();
    let err = file.dequantize("k_quant", None).unwrap_err().to_string();
    assert!(err.contains("\"k_quant\"") && err.contains("Q6_K"), "{err}");
    let err = file.dequantize("absent", None).unwrap_err().to_string();
    assert!(
        err.contains("\"absent\"") && err.contains("missing"),
        "{err}"
    );
    // An unknown metadata value type.
    let mut w = Writer::default();
    string(&mut w.kvs, "odd.key");
    w.kvs.extend(13u32.to_le_bytes());
    w.kv_count += 1;
    refused(parse(w.bytes()), &["odd.key", "unknown value type 13"]);
}

#[test]
fn a_file_without_tokenizer_or_of_another_architecture_is_refused() {
    let file = parse(tiny_llama("llama").bytes()).unwrap();
    let config = llama_config(&file).unwrap();
    assert_eq!(
        (
            config.hidden,
            config.heads,
            config.kv_heads,
            config.vocab_size
        ),
        (8, 2, 1, 10)
    );
    let err = LmTokenizer::from_gguf(&file).unwrap_err().to_string();
    assert!(!err.contains('\n'));
    assert!(
        err.contains("tokenizer.ggml.model") && err.contains("missing"),
        "{err}"
    );
    let file = parse(tiny_llama("gpt2").bytes()).unwrap();
    let err = llama_config(&file).unwrap_err().to_string();
    assert!(
        err.contains("general.architecture") && err.contains("\"gpt2\""),
        "{err}"
    );
    // A tokenizer of another kind.
    let mut w = tiny_llama("llama");
    w.kv_str("tokenizer.ggml.model", "llama");
    let file = parse(w.bytes()).unwrap();
    let err = LmTokenizer::from_gguf(&file).unwrap_err().to_string();
    assert!(err.contains("byte-level BPE"), "{err}");
    // Merges that are not pairs.
    let mut w = tiny_llama("llama");
    w.kv_str("tokenizer.ggml.model", "gpt2")
        .kv_strings("tokenizer.ggml.tokens", &["a", "b", "ab"])
        .kv_strings("tokenizer.ggml.merges", &["ab"]);
    let file = parse(w.bytes()).unwrap();
    let err = LmTokenizer::from_gguf(&file).unwrap_err().to_string();
    assert!(
        err.contains("tokenizer.ggml.merges") && err.contains("item 0"),
        "{err}"
    );
}
