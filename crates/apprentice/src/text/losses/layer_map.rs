//! Which teacher layer teaches which student layer. Layer 0 is the embeddings' output, layer
//! `k` the output of encoder layer `k` (the indices of
//! [`BertOutput::hidden_states`](crate::text::bert::BertOutput::hidden_states)).

use crate::text::error::TextError;

/// Pairs `(student layer, teacher layer)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerMap {
    /// The pairs, in the order the losses are summed.
    pub pairs: Vec<(usize, usize)>,
}

impl LayerMap {
    /// TinyBERT's uniform map: student layer `m` (1..=student) learns from teacher layer
    /// `m × teacher / student`, and the embeddings from the embeddings.
    pub fn uniform(student: usize, teacher: usize) -> Self {
        let mut pairs = vec![(0, 0)];
        pairs.extend((1..=student).map(|m| (m, m * teacher / student.max(1))));
        Self { pairs }
    }

    /// The last layer from the last layer only (MiniLM's attention and value transfer).
    pub fn last(student: usize, teacher: usize) -> Self {
        Self {
            pairs: vec![(student, teacher)],
        }
    }

    /// An explicit map, checked against the layer counts (each index at most the number of
    /// encoder layers).
    pub fn explicit(
        pairs: Vec<(usize, usize)>,
        student: usize,
        teacher: usize,
    ) -> Result<Self, TextError> {
        if let Some(&(s, t)) = pairs.iter().find(|&&(s, t)| s > student || t > teacher) {
            return Err(TextError::Invalid(format!(
                "layer map: pair ({s}, {t}) is outside a student of {student} and a teacher of \
                 {teacher} layers"
            )));
        }
        Ok(Self { pairs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_map_spreads_the_student_over_the_teacher() {
        assert_eq!(
            LayerMap::uniform(3, 6).pairs,
            vec![(0, 0), (1, 2), (2, 4), (3, 6)]
        );
        assert_eq!(LayerMap::last(4, 12).pairs, vec![(4, 12)]);
        assert!(LayerMap::explicit(vec![(5, 1)], 4, 12).is_err());
    }
}
