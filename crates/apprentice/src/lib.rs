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
//! - [`distill`]: losses, optimisers and the training loop;
//! - [`experiment`]: a whole teacher / scratch / distilled run over seeds;
//! - [`eval`]: accuracy, NLL, calibration, agreement with the teacher;
//! - [`report`]: `results.json` and the comparison table;
//! - [`config`]: the TOML experiment file;
//! - [`backend`]: the only module that chooses burn's backend;
//! - [`checkpoint`]: safetensors checkpoints with the metadata needed to reuse them.
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
pub mod fsutil;
pub mod models;
pub mod report;

pub use error::{Error, Result};
