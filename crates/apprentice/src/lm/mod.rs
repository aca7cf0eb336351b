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
//! - [`student`]: small student decoders, their seeded initialisation and training step;
//! - [`student_init`]: students initialised from the teacher (PCA of its embeddings, or a
//!   subset of its layers);
//! - [`speed`]: tokens per second of generation and scoring;
//! - [`corpus`]: text corpora (lines, CSV, JSON lines; gzip, bzip2) and the held-out split;
//! - [`config`]: the experiment file of a language-model run (its `[lm]` table);
//! - [`logit_cache`]: the teacher's top-k distributions, computed once per run;
//! - [`logit_shards`]: those distributions as shards written by several machines at once;
//! - [`teacher_shard`]: one shard scored by the teacher (`apprentice cache-teacher`);
//! - [`metrics`]: held-out perplexity, accuracy, agreement and KL against the teacher;
//! - [`sequences`]: training sequences a model writes from the texts' prompts (sequence-level
//!   KD's teacher continuations, on-policy distillation's student continuations);
//! - [`teacher_data`]: the teacher's distributions on a run's sequences and its sequence sets;
//! - [`train`]: one student's training with its perplexity curve (on-policy steps included);
//! - [`checkpoint`]: student checkpoints with their configuration and tokenizer;
//! - `onnx_export` (with the `onnx` feature): a student checkpoint out to ONNX;
//! - [`describe`]: objectives in words, for tables;
//! - [`experiment`]: the whole run over seeds and objectives;
//! - [`error`]: the module's error types.
pub mod checkpoint;
pub mod config;
pub mod corpus;
pub mod describe;
pub mod error;
pub mod experiment;
pub mod generate;
pub mod gguf;
pub mod gguf_value;
pub mod llama;
pub mod logit_cache;
pub mod logit_shards;
pub mod metrics;
pub mod objectives;
#[cfg(feature = "onnx")]
pub mod onnx_export;
pub mod quant;
pub mod run_store;
pub mod sequences;
pub mod speed;
pub mod student;
pub mod student_init;
pub mod teacher;
pub mod teacher_data;
pub mod teacher_shard;
pub mod tokenizer;
pub mod train;

pub use error::{LmError, LmRunError};
