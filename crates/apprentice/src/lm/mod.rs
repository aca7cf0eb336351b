//! Generative language models: a pretrained llama-architecture teacher read from a GGUF file,
//! its byte-level BPE tokenizer, and the pieces of token-level distillation.
//!
//! - [`gguf`]: the GGUF reader (header, metadata, tensor infos, bounds);
//! - [`gguf_value`]: the metadata values of a GGUF file;
//! - [`quant`]: ggml's block layouts and their dequantisation to `f32`;
//! - [`tokenizer`]: the byte-level BPE tokenizer stored in the file;
//! - [`llama`]: the llama decoder in burn, with a KV cache;
//! - [`teacher`]: a frozen decoder loaded from a GGUF file, its logits and likelihoods;
//! - [`generate`]: greedy and sampled generation with the KV cache;
//! - [`objectives`]: token-level distillation losses;
//! - [`student`]: small student decoders, their initialisation and training step;
//! - [`speed`]: tokens per second of generation and scoring;
//! - [`error`]: the module's error type.
pub mod error;
pub mod generate;
pub mod gguf;
pub mod gguf_value;
pub mod llama;
pub mod objectives;
pub mod quant;
pub mod speed;
pub mod student;
pub mod teacher;
pub mod tokenizer;

pub use error::LmError;
