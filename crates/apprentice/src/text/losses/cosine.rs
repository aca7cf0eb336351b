//! DistilBERT's cosine loss (Sanh et al., 2019): `1 − cos(h_S, h_T)` of each real token's
//! hidden states, averaged over the real tokens. The widths must be equal.

use burn::tensor::Tensor;

use super::token_weights;

/// The mean of `1 − cos(s, t)` over real tokens; `student` and `teacher` `[batch, len, width]`
/// (norms clamped at 1e-8, as PyTorch's `cosine_similarity`).
pub fn cosine_hidden(student: Tensor<3>, teacher: Tensor<3>, mask: Tensor<2>) -> Tensor<1> {
    let dot = (student.clone() * teacher.clone()).sum_dim(2);
    let norm_s = student.powi_scalar(2).sum_dim(2).sqrt().clamp_min(1e-8);
    let norm_t = teacher.powi_scalar(2).sum_dim(2).sqrt().clamp_min(1e-8);
    let cosine = dot / (norm_s * norm_t);
    let (weights, count) = token_weights(mask);
    ((cosine.neg() + 1.0) * weights).sum() / count
}
