//! Attention-distribution transfer (TinyBERT; MiniLM, Wang et al., 2020, on the last layer):
//! `KL(A_T ‖ A_S)` of each head's attention distribution of each real query token, averaged
//! over heads and real tokens. Student and teacher need the same number of heads.

use burn::tensor::Tensor;

use super::{mean_over_real_queries, row_kl};

/// The mean KL divergence between teacher and student attention probabilities, both
/// `[batch, heads, len, len]` (rows sum to 1 over the real keys, padded keys have weight 0).
pub fn attention_kl(student: Tensor<4>, teacher: Tensor<4>, mask: Tensor<2>) -> Tensor<1> {
    mean_over_real_queries(row_kl(teacher, student), mask)
}
