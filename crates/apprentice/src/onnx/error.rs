//! The error type of the ONNX module.

use std::path::PathBuf;

/// Why an ONNX model could not be loaded, run or written. Every message is one line that names
/// the file and says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an ONNX model.
    #[error("{path}: not an ONNX model ({reason})")]
    NotOnnx {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// The configured input name is not an input of the graph.
    #[error(
        "{path}: the graph has no input named {name:?}; its inputs are {}",
        quoted(available)
    )]
    MissingInput {
        /// The file.
        path: PathBuf,
        /// The name that was asked for.
        name: String,
        /// The graph's inputs.
        available: Vec<String>,
    },
    /// The graph declares an input shape other than the configured one.
    #[error("{path}: input {name:?} is declared as {declared} but the settings give {expected}")]
    InputShape {
        /// The file.
        path: PathBuf,
        /// The input.
        name: String,
        /// What the graph declares, e.g. `[batch, 3, 32, 32]`.
        declared: String,
        /// What the settings give, e.g. `[N, 1, 28, 28]`.
        expected: String,
    },
    /// A named output (logits or feature) is not a value of the graph.
    #[error(
        "{path}: the graph has no value named {name:?} (asked for as the {role}); its outputs are {}",
        quoted(available)
    )]
    MissingOutput {
        /// The file.
        path: PathBuf,
        /// The name that was asked for.
        name: String,
        /// `logits` or `feature`.
        role: &'static str,
        /// The graph's outputs.
        available: Vec<String>,
    },
    /// Settings that cannot work with this model or these inputs.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The checkpoint to export could not be read.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// A network that cannot be written as ONNX.
    #[error("cannot export: {0}")]
    Export(String),
    /// The runtime could not build or run the graph.
    #[error("{path}: {message}")]
    Runtime {
        /// The file.
        path: PathBuf,
        /// The runtime's explanation, on one line.
        message: String,
    },
}

/// `"a", "b"`, or `none` for an empty list.
fn quoted(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An error chain (tract's errors nest their causes) flattened to one line.
#[cfg(feature = "onnx")]
pub(crate) fn one_line(error: impl std::fmt::Display) -> String {
    format!("{error:#}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
