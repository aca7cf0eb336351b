//! Token-level distillation objectives for language models: at every real (unpadded) position
//! the student's next-token distribution is pulled towards the teacher's.
//!
//! With `p = softmax(teacher / τ)` and `q = softmax(student / τ)` over the vocabulary:
//! - forward KL `KL(p ‖ q)` (word-level KD, Kim & Rush 2016);
//! - reverse KL `KL(q ‖ p)` (MiniLLM);
//! - generalised Jensen-Shannon `β KL(p ‖ m) + (1 − β) KL(q ‖ m)`, `m = β p + (1 − β) q`
//!   (GKD, Agarwal et al. 2024; as TRL's `generalized_jsd_loss`, β = 0 is the forward KL and
//!   β = 1 the reverse KL);
//! - total variation `½ Σ |p − q|`;
//! - skew KL `KL(p ‖ α p + (1 − α) q)` and skew reverse KL `KL(q ‖ α q + (1 − α) p)`
//!   (DistiLLM, Ko et al. 2024).
//!
//! Divergences are multiplied by `τ²` (as in Hinton's KD, so that gradients keep their scale
//! across temperatures), averaged over real positions, and mixed with the next-token
//! cross-entropy at temperature 1: `w · CE + (1 − w) · divergence`.

use burn::tensor::{Int, Tensor, activation};
use serde::{Deserialize, Serialize};

use super::error::LmError;
use crate::models::kernels::{self, MixedDivergence};

/// Which divergence between the teacher's and the student's next-token distributions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenDivergence {
    /// `KL(teacher ‖ student)`.
    ForwardKl,
    /// `KL(student ‖ teacher)`.
    ReverseKl,
    /// Generalised Jensen-Shannon divergence with weight `beta` ∈ [0, 1] on the teacher.
    Jsd {
        /// Weight of the teacher in the mixture (and of `KL(teacher ‖ mixture)`).
        beta: f64,
    },
    /// Half the L1 distance between the distributions.
    TotalVariation,
    /// `KL(teacher ‖ α teacher + (1 − α) student)`.
    SkewKl {
        /// Weight of the teacher in the mixture, in [0, 1).
        alpha: f64,
    },
    /// `KL(student ‖ α student + (1 − α) teacher)`.
    SkewReverseKl {
        /// Weight of the student in the mixture, in [0, 1).
        alpha: f64,
    },
}

/// A token-level distillation loss: a divergence at a temperature, mixed with cross-entropy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TokenLoss {
    /// The divergence.
    pub divergence: TokenDivergence,
    /// Temperature applied to both logits before the divergence.
    pub temperature: f64,
    /// Weight of the next-token cross-entropy, in [0, 1].
    pub ce_weight: f64,
}

impl TokenLoss {
    /// Checks the settings; the message names the field.
    pub fn validate(&self) -> Result<(), LmError> {
        let bad = |field: &str, expected: &str, value: f64| {
            Err(LmError::Invalid(format!(
                "{field}: expected {expected}, found {value}"
            )))
        };
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad("temperature", "a positive number", self.temperature);
        }
        if !(0.0..=1.0).contains(&self.ce_weight) {
            return bad("ce_weight", "a number in [0, 1]", self.ce_weight);
        }
        match self.divergence {
            TokenDivergence::Jsd { beta } if !(0.0..=1.0).contains(&beta) => {
                bad("beta", "a number in [0, 1]", beta)
            }
            TokenDivergence::SkewKl { alpha } | TokenDivergence::SkewReverseKl { alpha }
                if !(0.0..1.0).contains(&alpha) =>
            {
                bad("alpha", "a number in [0, 1)", alpha)
            }
            _ => Ok(()),
        }
    }

    /// The loss (one value) of student logits `[batch, len, vocab]` against the teacher's;
    /// `targets` `[batch, len]` are the next tokens (for the cross-entropy) and `mask`
    /// `[batch, len]` is 1 at real positions and 0 at padding, which adds nothing. With no
    /// real position the loss is 0.
    pub fn forward(
        &self,
        student: Tensor<3>,
        teacher: Tensor<3>,
        targets: Tensor<2, Int>,
        mask: Tensor<2>,
    ) -> Tensor<1> {
        let real = mask.clone().sum().clamp_min(1.0);
        let mut per_position = Tensor::zeros(mask.dims(), &mask.device());
        if self.ce_weight < 1.0 {
            let t = self.temperature;
            let scaled = student.clone() / t;
            // Each divergence as one operation on every core, with burn's floats; other
            // backends through burn's operations.
            let mixed = |kind| kernels::mixed_divergence_rows(&scaled, &teacher, t, kind);
            let fused = match self.divergence {
                TokenDivergence::ForwardKl
                | TokenDivergence::Jsd { beta: 0.0 }
                | TokenDivergence::SkewKl { alpha: 0.0 } => {
                    kernels::forward_kl_rows(&scaled, &teacher, t)
                }
                TokenDivergence::ReverseKl
                | TokenDivergence::Jsd { beta: 1.0 }
                | TokenDivergence::SkewReverseKl { alpha: 0.0 } => {
                    kernels::reverse_kl_rows(&scaled, &teacher, t)
                }
                TokenDivergence::Jsd { beta } => mixed(MixedDivergence::Jsd { beta }),
                TokenDivergence::SkewKl { alpha } => mixed(MixedDivergence::SkewKl { alpha }),
                TokenDivergence::SkewReverseKl { alpha } => {
                    mixed(MixedDivergence::SkewReverseKl { alpha })
                }
                TokenDivergence::TotalVariation => mixed(MixedDivergence::TotalVariation),
            };
            let divergence = fused.unwrap_or_else(|| {
                divergence(
                    self.divergence,
                    activation::log_softmax(scaled, 2),
                    activation::log_softmax(teacher / t, 2),
                )
            });
            per_position = per_position + divergence * ((1.0 - self.ce_weight) * t * t);
        }
        if self.ce_weight > 0.0 {
            let picked = kernels::log_softmax_pick(&student, &targets).unwrap_or_else(|| {
                let log_q = activation::log_softmax(student, 2);
                log_q.gather(2, targets.unsqueeze_dim(2)).squeeze_dim(2)
            });
            per_position = per_position - picked * self.ce_weight;
        }
        (per_position * mask).sum() / real
    }
}

/// The divergence at every position, `[batch, len]`, from log-probabilities `[batch, len,
/// vocab]` of the student (`log_q`) and the teacher (`log_p`).
pub fn divergence(kind: TokenDivergence, log_q: Tensor<3>, log_p: Tensor<3>) -> Tensor<2> {
    match kind {
        TokenDivergence::ForwardKl => kl(log_p, log_q),
        TokenDivergence::ReverseKl => kl(log_q, log_p),
        TokenDivergence::Jsd { beta: 0.0 } => kl(log_p, log_q),
        TokenDivergence::Jsd { beta: 1.0 } => kl(log_q, log_p),
        TokenDivergence::Jsd { beta } => {
            let log_m = log_mix(log_p.clone(), beta, log_q.clone());
            kl(log_p, log_m.clone()) * beta + kl(log_q, log_m) * (1.0 - beta)
        }
        TokenDivergence::TotalVariation => {
            let diff = (log_p.exp() - log_q.exp()).abs();
            diff.sum_dim(2).squeeze_dim(2) * 0.5
        }
        TokenDivergence::SkewKl { alpha } => {
            let log_m = log_mix(log_p.clone(), alpha, log_q);
            kl(log_p, log_m)
        }
        TokenDivergence::SkewReverseKl { alpha } => {
            let log_m = log_mix(log_q.clone(), alpha, log_p);
            kl(log_q, log_m)
        }
    }
}

/// `KL(a ‖ b)` over the last dimension from log-probabilities.
fn kl(log_a: Tensor<3>, log_b: Tensor<3>) -> Tensor<2> {
    (log_a.clone().exp() * (log_a - log_b))
        .sum_dim(2)
        .squeeze_dim(2)
}

/// `log(w · a + (1 − w) · b)` from `log a` and `log b`, without underflow (log-sum-exp), for
/// `w` in [0, 1).
fn log_mix(log_a: Tensor<3>, w: f64, log_b: Tensor<3>) -> Tensor<3> {
    if w == 0.0 {
        return log_b;
    }
    let x = log_a + w.ln();
    let y = log_b + (1.0 - w).ln();
    let top = x.clone().max_pair(y.clone()).detach();
    top.clone() + ((x - top.clone()).exp() + (y - top).exp()).log()
}
