//! The crate's top-level error: each variant is one line that names the file, key or model
//! involved and what was expected.

use std::path::PathBuf;

/// Anything that can stop an apprentice command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The experiment file.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Reading or preparing data.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// A kernel or a supervision complexity.
    #[error(transparent)]
    Complexity(#[from] crate::complexity::ComplexityError),
    /// Training failed (e.g. a NaN loss).
    #[error(transparent)]
    Training(#[from] crate::distill::train::TrainError),
    /// Writing outputs.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Settings that do not fit together (e.g. a teacher checkpoint for other data).
    #[error("{0}")]
    Invalid(String),
}

/// Shorthand for results with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
