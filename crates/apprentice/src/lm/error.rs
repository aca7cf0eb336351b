//! The error type of the language-model module: one line naming the file, key or tensor.

use super::gguf::GgufError;
use super::tokenizer::TokenizerError;

/// Why a language model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// Reading the GGUF file.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// The tokenizer.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// Inputs or settings that do not fit the model (an id outside the vocabulary, a sequence
    /// longer than the context).
    #[error("{0}")]
    Invalid(String),
}
