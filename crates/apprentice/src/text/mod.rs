//! Text: a pretrained BERT sentence encoder as the teacher, text data sets, and small text
//! students distilled from it.
//!
//! - [`tokenizer`]: word pieces through the `tokenizers` crate, truncation and padding;
//! - [`bert`]: the encoder as burn modules;
//! - [`bert_cpu`]: the same encoder's inference on the CPU, unpadded, on every core;
//! - [`classifier`] and [`classifier_folder`]: BERT with a classification head, saved and
//!   loaded as Hugging Face `BertForSequenceClassification` folders;
//! - [`pooling`]: mean or `[CLS]` pooling and L2 normalisation;
//! - [`pretrained`]: reading a Hugging Face model folder, with errors that name a missing
//!   file, an unknown architecture or a missing or mis-shaped tensor;
//! - [`finetune`]: fine-tuning the classifier end to end or its top layers;
//! - [`losses`]: transformer distillation losses (hidden states, attention, value relation,
//!   cosine) and the layer map;
//! - [`transformer_students`]: shallower and narrower BERT students;
//! - [`data`]: labelled text from CSV or JSON lines, and the stratified split;
//! - [`cache`]: the teacher's outputs on disk, keyed and verified by a hash;
//! - [`students`] and [`pca`]: bag-of-embeddings, CNN and static-embedding students;
//! - [`train`]: their training loop (labels, KD, or embedding regression);
//! - [`speed`]: sentences per second of a whole pipeline;
//! - [`bert_speed`]: the encoder's throughput on documents of up to its maximum length;
//! - [`config`] and [`experiment`]: the text experiment file and its runner;
//! - [`saved_model`] and [`run_model`]: a finished run's models read back, with its texts;
//!   [`evaluate`] and [`model_bench`]: `apprentice eval` and `bench-model` for them.

pub mod bert;
pub mod bert_cpu;
pub mod bert_speed;
pub mod cache;
pub mod classifier;
pub mod classifier_folder;
pub mod config;
pub mod data;
pub mod dropout;
pub mod embedding_loss;
pub mod error;
pub mod evaluate;
pub mod experiment;
pub mod finetune;
pub mod layer_distill;
pub mod losses;
pub mod model_bench;
#[cfg(feature = "onnx")]
pub mod onnx_export;
#[cfg(feature = "onnx")]
pub mod onnx_export_bert;
pub mod pca;
pub mod plans;
pub mod pooling;
pub mod pretrained;
pub mod run_model;
pub mod run_store;
pub mod saved_model;
pub mod seed_context;
pub mod speed;
pub mod student_kind;
pub mod student_stage;
pub mod students;
pub mod teacher_stage;
pub mod tokenizer;
pub mod train;
pub mod transformer_config;
pub mod transformer_run;
pub mod transformer_students;

pub use error::TextError;
pub use pretrained::PretrainedEncoder;
