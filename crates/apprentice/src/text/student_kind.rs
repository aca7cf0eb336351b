//! The student architectures of a text run, as named in its experiment file.

use serde::{Deserialize, Serialize};

/// A student architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StudentKind {
    /// The mean of the token embeddings, then an MLP.
    Bag,
    /// A 1-D convolution over the token embeddings, max-pooled over time, then an MLP.
    Cnn,
    /// The bag-of-embeddings architecture with its token vectors initialised from the
    /// teacher's output for each vocabulary token, reduced by PCA; trained by distillation.
    Static,
    /// A BERT made of a subset of the teacher's layers (DistilBERT), `[students.shallow]`.
    Shallow,
    /// A narrower BERT from random initialisation, `[students.narrow]`.
    Narrow,
}

impl StudentKind {
    /// The name used in results (`bag`, `cnn`, `static`).
    pub fn name(self) -> &'static str {
        match self {
            StudentKind::Bag => "bag",
            StudentKind::Cnn => "cnn",
            StudentKind::Static => "static",
            StudentKind::Shallow => "shallow",
            StudentKind::Narrow => "narrow",
        }
    }
}
