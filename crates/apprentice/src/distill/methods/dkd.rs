//! Decoupled knowledge distillation (Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022).
//!
//! Hinton's soft term splits exactly into a target-class part and a non-target part: with
//! b = (p_target, 1 − p_target) and p̂ the distribution over the non-target classes alone,
//!
//! `T²·KL(p_teacher ‖ p_student) = TCKD + (1 − p_target^teacher)·NCKD`,
//!
//! where `TCKD = T²·KL(b_teacher ‖ b_student)` and `NCKD = T²·KL(p̂_teacher ‖ p̂_student)`. DKD
//! drops the teacher-confidence factor in front of NCKD and weights the two parts freely:
//! `α·TCKD + β·NCKD`.
//!
//! Everything is computed from log-probabilities: the binary terms from log-sum-exp over all
//! classes and over the non-target classes, and the non-target distribution by moving the target
//! logit far below every other logit of its row. Probabilities are never divided or subtracted
//! from one, so logits of magnitude 1e4 stay finite (the reference implementation takes
//! `log` of the binary probabilities and gives −∞ there).

use burn::tensor::{Bool, Int, Tensor};

use super::ops::{non_negative, positive, same_shape};
use super::{HyperParameter, MethodError, MethodInfo};
use std::sync::Arc;

use crate::distill::loss::{LogitLoss, cross_entropy_plus};
use crate::distill::method::{LogitMethod, Method, MethodSettings, Shared, ValidationContext};

const METHOD: &str = "dkd";

/// How far below the smallest logit of a row the target logit is moved to leave it out of the
/// non-target softmax: e^−1000 is zero in f32 and f64 alike, so the remaining classes are
/// renormalised exactly, whatever the logits' magnitude.
const EXCLUDED_GAP: f64 = 1000.0;

/// DKD's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkdSettings {
    /// Weight α of the target-class term TCKD.
    pub alpha: f64,
    /// Weight β of the non-target term NCKD.
    pub beta: f64,
    /// Softening temperature T (> 0).
    pub temperature: f64,
    /// Epochs over which the caller ramps the DKD term up linearly (see
    /// [`dkd_warmup_factor`]); 0 disables the ramp.
    pub warmup_epochs: usize,
}

impl Default for DkdSettings {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            beta: 8.0,
            temperature: 4.0,
            warmup_epochs: 20,
        }
    }
}

impl DkdSettings {
    /// The method's description and hyper-parameter table.
    pub const INFO: MethodInfo = MethodInfo {
        name: METHOD,
        title: "Decoupled knowledge distillation",
        paper: "Zhao, Cui, Song, Qiu, Liang: Decoupled Knowledge Distillation, CVPR 2022",
        inputs: "student and teacher logits [batch, classes], class labels [batch]",
        conventions: "loss = mean over the batch of α·TCKD + β·NCKD, both scaled by T²; the \
            cross-entropy and the warm-up factor min(epoch / warmup_epochs, 1) are applied by \
            the caller. Defaults are the paper's CIFAR-100 settings (β = 8; the paper tunes β \
            per teacher, e.g. 0.5 for ImageNet).",
        hyper_parameters: &[
            HyperParameter {
                key: "alpha",
                default: 1.0,
                meaning: "weight of TCKD, the target-vs-rest binary KL",
            },
            HyperParameter {
                key: "beta",
                default: 8.0,
                meaning: "weight of NCKD, the KL among non-target classes",
            },
            HyperParameter {
                key: "temperature",
                default: 4.0,
                meaning: "softening temperature T of both softmaxes",
            },
            HyperParameter {
                key: "warmup_epochs",
                default: 20.0,
                meaning: "epochs of linear warm-up of the DKD term (0: none)",
            },
        ],
    };

    /// The method's description and hyper-parameter table.
    pub fn describe() -> &'static MethodInfo {
        &Self::INFO
    }

    /// Checks that the temperature is > 0 and the weights are finite and ≥ 0.
    pub fn validate(&self) -> Result<(), MethodError> {
        positive(METHOD, "temperature", self.temperature)?;
        non_negative(METHOD, "alpha", self.alpha)?;
        non_negative(METHOD, "beta", self.beta)
    }

    /// The warm-up factor of `epoch` (1-based): see [`dkd_warmup_factor`].
    pub fn warmup_factor(&self, epoch: usize) -> f64 {
        dkd_warmup_factor(epoch, self.warmup_epochs)
    }
}

/// `min(epoch / warmup_epochs, 1)`, the factor the reference implementation multiplies the DKD
/// term by. Epochs count from 1 as in the reference, so the first epoch already gets
/// `1 / warmup_epochs`; `warmup_epochs = 0` means no warm-up (factor 1).
pub fn dkd_warmup_factor(epoch: usize, warmup_epochs: usize) -> f64 {
    if warmup_epochs == 0 {
        1.0
    } else {
        (epoch as f64 / warmup_epochs as f64).min(1.0)
    }
}

/// DKD's two terms for every sample, both already multiplied by T².
#[derive(Debug, Clone)]
pub struct DkdParts {
    /// `T²·KL(b_teacher ‖ b_student)` per sample, `[batch]`.
    pub tckd: Tensor<1>,
    /// `T²·KL(p̂_teacher ‖ p̂_student)` over the non-target classes per sample, `[batch]`.
    pub nckd: Tensor<1>,
}

/// TCKD and NCKD of every sample at `temperature`.
///
/// `labels` must index classes of `student` (`[batch, classes]`, the same shape as `teacher`).
/// With two classes the non-target distribution has a single class and NCKD is zero.
pub fn dkd_parts(
    student: Tensor<2>,
    teacher: Tensor<2>,
    labels: Tensor<1, Int>,
    temperature: f64,
) -> Result<DkdParts, MethodError> {
    positive(METHOD, "temperature", temperature)?;
    let [batch, classes] = student.dims();
    same_shape(METHOD, "logits", student.dims(), teacher.dims())?;
    if labels.dims() != [batch] {
        return Err(MethodError::Shape {
            method: METHOD,
            detail: format!("{batch} samples but {} labels", labels.dims()[0]),
        });
    }
    if classes < 2 {
        return Err(MethodError::Shape {
            method: METHOD,
            detail: format!("needs at least two classes, got {classes}"),
        });
    }
    let device = student.device();
    // Comparing against a class index row builds the target mask without reading the labels
    // back to the host.
    let class_index = Tensor::<1, Int>::arange(0..classes as i64, &device)
        .unsqueeze::<2>()
        .expand([batch, classes]);
    let label_column = labels.unsqueeze_dim::<2>(1);
    let target = class_index.equal(label_column.clone().expand([batch, classes]));
    let (student_binary, student_rest) =
        decoupled_log_probabilities(student / temperature, target.clone(), label_column.clone());
    let (teacher_binary, teacher_rest) =
        decoupled_log_probabilities(teacher.detach() / temperature, target, label_column);
    let scale = temperature * temperature;
    Ok(DkdParts {
        tckd: kl_per_row(teacher_binary, student_binary) * scale,
        nckd: kl_per_row(teacher_rest, student_rest) * scale,
    })
}

/// DKD's distillation term, `mean over the batch of α·TCKD + β·NCKD`, without the warm-up
/// factor (see [`dkd_warmup_factor`]) and without the cross-entropy.
pub fn dkd_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    labels: Tensor<1, Int>,
    settings: &DkdSettings,
) -> Result<Tensor<1>, MethodError> {
    settings.validate()?;
    let parts = dkd_parts(student, teacher, labels, settings.temperature)?;
    Ok((parts.tckd * settings.alpha + parts.nckd * settings.beta).mean())
}

/// From tempered logits `z` `[batch, classes]`: the log binary distribution
/// `[log p_target, log(1 − p_target)]` (`[batch, 2]`) and the log non-target distribution
/// (`[batch, classes]`, with a log-probability of −1000 or less at the target).
///
/// Log-probabilities are formed as `(z − max) − log Σ exp(z − max)` and never as `z − lse`:
/// with logits of a few hundred, `lse` carries the rounding of its magnitude (3e-5 at 500 in
/// f32), and that error, multiplied by log-ratios of several hundred in the KL, cost NCKD a
/// relative 1e-5. The maxima are detached; each formula is invariant to them.
fn decoupled_log_probabilities(
    z: Tensor<2>,
    target: Tensor<2, Bool>,
    label_column: Tensor<2, Int>,
) -> (Tensor<2>, Tensor<2>) {
    let [batch, classes] = z.dims();
    let (all_top, all_norm) = shifted_log_normaliser(z.clone());
    // The replacement is detached: NCKD must not depend on the target logit at all.
    let excluded = (z.clone().min_dim(1).detach() - EXCLUDED_GAP).expand([batch, classes]);
    let others = z.clone().mask_where(target, excluded);
    let (rest_top, rest_norm) = shifted_log_normaliser(others.clone());
    let log_target = (z.gather(1, label_column) - all_top.clone()) - all_norm.clone();
    let log_rest = (rest_top.clone() - all_top) + (rest_norm.clone() - all_norm);
    let log_others = (others - rest_top) - rest_norm;
    (Tensor::cat(vec![log_target, log_rest], 1), log_others)
}

/// The row maxima `m` (detached, `[rows, 1]`) and `log Σ exp(z − m)` (`[rows, 1]`), so that
/// `log softmax(z) = (z − m) − log Σ exp(z − m)` without ever forming `m + log Σ …`.
fn shifted_log_normaliser(z: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    let top = z.clone().max_dim(1).detach();
    let norm = (z - top.clone()).exp().sum_dim(1).log();
    (top, norm)
}

/// `Σ_j p_j·(log p_j − log q_j)` per row, from log-probabilities. Entries where p underflows to
/// zero contribute exactly zero because every log here is finite.
fn kl_per_row(log_p: Tensor<2>, log_q: Tensor<2>) -> Tensor<1> {
    (log_p.clone().exp() * (log_p - log_q))
        .sum_dim(1)
        .squeeze_dim(1)
}

impl MethodSettings for DkdSettings {
    const INFO: &'static MethodInfo = &DkdSettings::INFO;

    fn validate(&self, context: &ValidationContext<'_>) -> Result<(), String> {
        DkdSettings::validate(self).map_err(|e| format!("distill.dkd: {e}"))?;
        // DKD splits the distributions at the true class, so every input needs a label.
        if context.unlabelled_inputs {
            return Err(format!(
                "{}: dkd needs the true label of every input it distils on, so with label_fractions below 1 use distill.transfer = [\"labelled\"]",
                context.key
            ));
        }
        Ok(())
    }

    fn build(&self, _shared: &Shared) -> Box<dyn Method> {
        Box::new(LogitMethod {
            info: &DkdSettings::INFO,
            objective: Arc::new(*self),
        })
    }
}

impl LogitLoss for DkdSettings {
    fn name(&self) -> &'static str {
        METHOD
    }

    fn loss(
        &self,
        student: Tensor<2>,
        teacher: Tensor<2>,
        labels: Tensor<1, Int>,
        mask: Option<Tensor<1>>,
        epoch: usize,
    ) -> Result<Tensor<1>, MethodError> {
        let term = dkd_loss(student.clone(), teacher, labels.clone(), self)
            .map(|term| term * self.warmup_factor(epoch));
        cross_entropy_plus(student, labels, mask, term)
    }
}
