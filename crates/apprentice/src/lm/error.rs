//! The error types of the language-model module: one line naming the file, key or tensor.

use super::corpus::CorpusError;
use super::gguf::GgufError;
use super::logit_cache::LogitCacheError;
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

/// Why a language-model run stopped.
#[derive(Debug, thiserror::Error)]
pub enum LmRunError {
    /// The teacher, a student or a sequence.
    #[error(transparent)]
    Lm(#[from] LmError),
    /// The corpus.
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    /// The teacher cache.
    #[error(transparent)]
    Cache(#[from] LogitCacheError),
    /// Settings that do not fit the data (too few texts for a split).
    #[error("{0}")]
    Invalid(String),
}
