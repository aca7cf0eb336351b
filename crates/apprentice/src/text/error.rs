//! The error type of the text module: one line that names the file (and tensor, field or line)
//! and what was expected.

use std::path::PathBuf;

/// Why a model folder, a text data set or a text experiment could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// A file of a model folder is missing, unreadable or not what it should be.
    #[error("{path}: {message}")]
    Model {
        /// The file (or folder) at fault.
        path: PathBuf,
        /// What was expected and what was found.
        message: String,
    },
    /// Reading text data.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The experiment file.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Training a head or a student.
    #[error(transparent)]
    Training(#[from] crate::distill::train::TrainError),
    /// Reading or writing a file that is not part of a model folder (cache, results).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Settings or inputs that do not fit together.
    #[error("{0}")]
    Invalid(String),
}

impl TextError {
    /// A [`TextError::Model`] for `path`.
    pub fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        TextError::Model {
            path: path.into(),
            message: message.into(),
        }
    }
}
