//! ONNX, the format in which models cross frameworks: teachers trained elsewhere come in
//! ([`teacher`], run by tract, a pure-Rust runtime) and apprentice's students go out
//! ([`export`], for onnxruntime, tract and the converters to phone runtimes; [`export_text`] for
//! the small text students and [`export_bert`] for BERT classifiers, whose saved runs and
//! folders `text::onnx_export` reads; [`export_llama`] for student language models, read by
//! `lm::onnx_export`).
//!
//! The runtime and the exporter are built with the `onnx` cargo feature (on by default); the
//! settings ([`config`]) always are, so that an experiment file naming an ONNX teacher parses
//! and is refused with a clear message by a build without it.

pub mod config;
mod error;
#[cfg(feature = "onnx")]
pub mod export;
#[cfg(feature = "onnx")]
pub mod export_bert;
#[cfg(feature = "onnx")]
pub mod export_llama;
#[cfg(feature = "onnx")]
pub mod export_text;
#[cfg(feature = "onnx")]
pub mod teacher;

pub use config::{Layout, OnnxInput, OnnxTeacherConfig};
pub use error::OnnxError;
#[cfg(feature = "onnx")]
pub use export::{ExportSummary, export_checkpoint, network_to_onnx, network_to_onnx_bytes};
#[cfg(feature = "onnx")]
pub use export_bert::{
    BertClassifierWeights, BertLayerWeights, DenseWeights, HeadPooling, NormWeights,
    bert_classifier_to_onnx, bert_classifier_to_onnx_bytes,
};
#[cfg(feature = "onnx")]
pub use export_text::{
    TextGraphOptions, TextStudentWeights, text_student_to_onnx, text_student_to_onnx_bytes,
};
#[cfg(feature = "onnx")]
pub use teacher::{FeatureOutput, OnnxTeacher, TeacherOutput};
