//! ONNX, the format in which models cross frameworks: teachers trained elsewhere come in
//! ([`teacher`], run by tract, a pure-Rust runtime) and apprentice's students go out
//! ([`export`], for onnxruntime, tract and the converters to phone runtimes).
//!
//! Built with the `onnx` cargo feature (on by default).

pub mod config;
mod error;
pub mod export;
pub mod teacher;

pub use config::{Layout, OnnxInput, OnnxTeacherConfig};
pub use error::OnnxError;
pub use export::{ExportSummary, export_checkpoint, network_to_onnx, network_to_onnx_bytes};
pub use teacher::{FeatureOutput, OnnxTeacher, TeacherOutput};
