//! Why a loss cannot be computed on the inputs it was given.

/// Why a method cannot compute its loss on the given inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MethodError {
    /// The batch has fewer samples than the method compares; a training loop may skip the
    /// distillation term for such a batch (e.g. a final partial batch of one).
    #[error("{method}: needs a batch of at least {needed} samples, got {got}: {why}")]
    BatchTooSmall {
        /// The method's short name.
        method: &'static str,
        /// The smallest batch it accepts.
        needed: usize,
        /// The batch it was given.
        got: usize,
        /// What the method compares across samples.
        why: &'static str,
    },
    /// Inputs whose shapes do not fit together.
    #[error("{method}: {detail}")]
    Shape {
        /// The method's short name.
        method: &'static str,
        /// The shapes involved and what was expected.
        detail: String,
    },
    /// A hyper-parameter outside its valid range.
    #[error("{method}: {detail}")]
    Setting {
        /// The method's short name.
        method: &'static str,
        /// The key, its value and the valid range.
        detail: String,
    },
}
