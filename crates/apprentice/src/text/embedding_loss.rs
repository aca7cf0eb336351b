//! The loss of embedding regression: a text student learns to point its output in the
//! direction of the teacher's sentence embedding, `mean_b (1 − cos(s_b, t_b))`.
//!
//! Only directions count (both sides are L2-normalised), which is what the teacher's
//! normalised sentence embeddings carry; the loss lies in `[0, 2]` and is 0 when every student
//! row is a positive multiple of its target.

use burn::tensor::Tensor;

use super::pooling::l2_normalize;

/// `mean_b (1 − ⟨s_b/‖s_b‖, t_b/‖t_b‖⟩)` of student `outputs` and teacher `targets`, both
/// `[batch, dim]`. Norms are clamped at 1e-12 (see [`l2_normalize`]), so an all-zero row
/// gives cosine 0 instead of NaN. The targets carry no gradient.
pub fn cosine_embedding_loss(outputs: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let cosine: Tensor<2> = (l2_normalize(outputs) * l2_normalize(targets.detach())).sum_dim(1);
    (cosine.neg() + 1.0).mean()
}
