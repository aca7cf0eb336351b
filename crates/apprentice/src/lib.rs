//! # apprentice
//!
//! Knowledge distillation: a large trained model (the teacher) teaches a small one (the student).
//! apprentice trains or loads a teacher, trains the same student from scratch and by
//! distillation with identical initialisation and data order, and compares the three.
//!
//! The pieces, one job per module:
//! - [`data`]: readers (embedded digits, IDX, CSV), seeded stratified splits, normalisation,
//!   batching and augmentation;
//! - [`models`]: MLPs and CNNs built from a [`models::ModelSpec`];
//! - [`distill`]: losses (Hinton's KD, and the verified losses of the standard methods in
//!   [`distill::methods`]), optimisers, the training loop and its resumable states;
//! - [`task`]: the one loop over seeds that every experiment (a [`task::Task`]) runs, and the
//!   `results.json` envelope;
//! - [`experiment`]: image classification (a teacher / scratch / distilled run over seeds) and
//!   continual learning as tasks;
//! - [`experiment_file`]: one reader for every experiment file, which says its task;
//! - [`onnx`]: teachers from ONNX files (run by tract) and students exported to ONNX (cargo
//!   feature `onnx`, on by default);
//! - [`text`]: a pretrained BERT teacher from a model folder, text data and text students;
//! - [`lm`]: generative language models: a GGUF reader, the llama decoder, token-level
//!   distillation losses and small student decoders;
//! - [`eval`]: accuracy, NLL, calibration, agreement with the teacher, and the efficiency
//!   measures (FLOPs, latency, throughput, memory, energy or CPU time);
//! - [`complexity`]: the student's empirical NTK and the supervision complexity of targets;
//! - [`report`]: `results.json`, the comparison table, the HTML report and its plots;
//! - [`config`]: the TOML experiment file;
//! - [`backend`]: the only module that chooses burn's backend;
//! - [`checkpoint`]: safetensors checkpoints with the metadata needed to reuse them;
//! - [`fsutil`]: atomic writes and collision-free run folders;
//! - [`layout`]: the names of every file in a run folder;
//! - [`nullable`]: JSON readers for numbers that may be `null` (NaN).
#![warn(missing_docs)]

pub mod backend;
pub mod checkpoint;
pub mod complexity;
pub mod config;
pub mod data;
pub mod distill;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod experiment_file;
pub mod fsutil;
pub mod layout;
pub mod lm;
pub mod models;
pub mod nullable;
pub mod onnx;
pub mod report;
pub mod task;
pub mod text;

pub use error::{Error, Result};
