//! The error type of the data module.

use std::path::PathBuf;

/// Why data could not be loaded or prepared. Every message is one line that names the source
/// and says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A source does not have the expected format (no line number applies).
    #[error("{source_name}: {message}")]
    Format {
        /// The file or other source, as shown to the user.
        source_name: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A line of a text source is malformed.
    #[error("{source_name}:{line}: {message}")]
    Line {
        /// The file or other source, as shown to the user.
        source_name: String,
        /// The 1-based line number.
        line: u64,
        /// What was expected and what was found.
        message: String,
    },
    /// Arguments or data that do not fit together.
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    pub(super) fn format(source_name: &str, message: impl Into<String>) -> Self {
        DataError::Format {
            source_name: source_name.to_owned(),
            message: message.into(),
        }
    }

    pub(super) fn line(source_name: &str, line: u64, message: impl Into<String>) -> Self {
        DataError::Line {
            source_name: source_name.to_owned(),
            line,
            message: message.into(),
        }
    }
}
