//! Distillation losses between transformers, on the outputs of
//! [`Bert::forward_detailed`](super::bert::Bert::forward_detailed): each takes the student's and
//! the teacher's tensors and the attention mask (`[batch, len]`, 1 for real tokens), and
//! averages over the real tokens only, so that padding never counts.
//!
//! - [`hidden`]: TinyBERT's hidden-state MSE through a learned projection;
//! - [`attention`]: KL divergence between attention distributions (TinyBERT, MiniLM);
//! - [`value_relation`]: MiniLM's value-relation transfer;
//! - [`cosine`]: DistilBERT's cosine loss on hidden states;
//! - [`layer_map`]: which teacher layer teaches which student layer.
//!
//! Each is checked against a numpy reference (`tests/fixtures/transformer-losses/`) and by
//! finite differences (`tests/transformer_losses.rs`).

pub mod attention;
pub mod cosine;
pub mod hidden;
pub mod layer_map;
pub mod value_relation;

use burn::tensor::Tensor;

/// Mask `[batch, len]` as `[batch, len, 1]`, and the number of real tokens (at least 1).
pub(crate) fn token_weights(mask: Tensor<2>) -> (Tensor<3>, Tensor<1>) {
    let [batch, len] = mask.dims();
    let count = mask.clone().sum().clamp_min(1.0);
    (mask.reshape([batch, len, 1]), count)
}

/// `Σ p · (ln p − ln q)` over the last axis, with `0 · ln 0 = 0` (both clamped at 1e-12 inside
/// the logarithms), for probability tensors `[batch, heads, len, len]`.
pub(crate) fn row_kl(p: Tensor<4>, q: Tensor<4>) -> Tensor<3> {
    let [batch, heads, len, _] = p.dims();
    let log_p = p.clone().clamp_min(1e-12).log();
    let log_q = q.clamp_min(1e-12).log();
    (p * (log_p - log_q))
        .sum_dim(3)
        .reshape([batch, heads, len])
}

/// Mean of per-(head, query) values `[batch, heads, len]` over heads and real query tokens.
pub(crate) fn mean_over_real_queries(values: Tensor<3>, mask: Tensor<2>) -> Tensor<1> {
    let [batch, heads, len] = values.dims();
    let weights: Tensor<3> = mask.clone().reshape([batch, 1, len]);
    let count = mask.sum().clamp_min(1.0) * heads as f64;
    (values * weights).sum() / count
}
