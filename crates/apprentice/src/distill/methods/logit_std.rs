//! Logit standardisation (Sun, Ren, Li, Wang, Cao, "Logit Standardization in Knowledge
//! Distillation", CVPR 2024).
//!
//! KD with one shared temperature asks the student to match the teacher's logits up to a
//! shift, including their scale, which a small student may not reach. Logit standardisation
//! z-scores each sample's logits, `z(x) = (x − mean(x)) / (ε + std(x))`, for teacher and student
//! before the temperature softmax, so the student matches the teacher's logit *relations*
//! instead of their magnitude:
//!
//! `loss = w_ce·CE(s, y) + w_kd·T²·mean KL(softmax(z(t)/T) ‖ softmax(z(s)/T))`.
//!
//! Conventions follow the authors' code: the standard deviation is the unbiased one (divisor
//! C − 1, torch's default), ε = 1e-7 is added to it, and the defaults are their KD + LS setting
//! (T = 2, w_ce = 0.1, w_kd = 9). The cross-entropy uses the raw student logits.

use std::sync::Arc;

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use super::ops::{non_negative, positive};
use crate::distill::loss::{LogitLoss, cross_entropy, soft_target_kl};
use crate::distill::method::{
    HyperParameter, LogitMethod, Method, MethodError, MethodInfo, MethodSettings, Shared,
    ValidationContext,
};

const METHOD: &str = "logit-std";

/// Added to each sample's standard deviation, as in the authors' code.
pub const STD_EPSILON: f64 = 1e-7;

/// Logit standardisation's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogitStdSettings {
    /// Base temperature T applied to the z-scored logits (> 0).
    pub temperature: f64,
    /// Weight of the cross-entropy with the labels.
    pub ce_weight: f64,
    /// Weight of the T²-scaled KL between the standardised distributions.
    pub kd_weight: f64,
}

impl Default for LogitStdSettings {
    fn default() -> Self {
        Self {
            temperature: 2.0,
            ce_weight: 0.1,
            kd_weight: 9.0,
        }
    }
}

/// Logit standardisation in the method listing.
pub const INFO: MethodInfo = MethodInfo {
    name: METHOD,
    title: "Logit standardisation (z-scored logits in KD)",
    paper: "Sun, Ren, Li, Wang, Cao: Logit Standardization in Knowledge Distillation, CVPR 2024",
    inputs: "student and teacher logits [batch, classes ≥ 2], labels (a mask limits the cross-entropy to labelled inputs)",
    conventions: "per-sample z-score with the unbiased standard deviation plus 1e-7, then KD's \
        T²-scaled forward KL at temperature T; the cross-entropy on the raw logits. Defaults are \
        the authors' KD + LS setting (T = 2, CE weight 0.1, KD weight 9).",
    hyper_parameters: &[
        HyperParameter {
            key: "temperature",
            default: 2.0,
            meaning: "base temperature T on the z-scored logits",
        },
        HyperParameter {
            key: "ce_weight",
            default: 0.1,
            meaning: "weight of the cross-entropy with the labels",
        },
        HyperParameter {
            key: "kd_weight",
            default: 9.0,
            meaning: "weight of the T²-scaled KL between standardised distributions",
        },
    ],
};

impl LogitStdSettings {
    /// Checks that the temperature is > 0 and the weights are finite and ≥ 0.
    pub fn check(&self) -> Result<(), MethodError> {
        positive(METHOD, "temperature", self.temperature)?;
        non_negative(METHOD, "ce_weight", self.ce_weight)?;
        non_negative(METHOD, "kd_weight", self.kd_weight)
    }
}

/// Each row of `logits` `[batch, classes]` z-scored: minus its mean, divided by ε plus its
/// unbiased standard deviation. Needs at least two classes.
pub fn standardize(logits: Tensor<2>) -> Result<Tensor<2>, MethodError> {
    let [_, classes] = logits.dims();
    if classes < 2 {
        return Err(MethodError::Shape {
            method: METHOD,
            detail: format!("needs at least 2 classes to standardise logits, got {classes}"),
        });
    }
    let centred = logits.clone() - logits.mean_dim(1);
    let variance = centred.clone().powf_scalar(2.0).sum_dim(1) / (classes as f64 - 1.0);
    Ok(centred / (variance.sqrt() + STD_EPSILON))
}

/// The weighted distillation term: `w_kd·T²·mean KL(softmax(z(t)/T) ‖ softmax(z(s)/T))`; the
/// teacher carries no gradient.
pub fn logit_std_term(
    student: Tensor<2>,
    teacher: Tensor<2>,
    settings: &LogitStdSettings,
) -> Result<Tensor<1>, MethodError> {
    let student = standardize(student)?;
    let teacher = standardize(teacher.detach())?;
    Ok(soft_target_kl(student, teacher, settings.temperature) * settings.kd_weight)
}

impl LogitLoss for LogitStdSettings {
    fn name(&self) -> &'static str {
        METHOD
    }

    fn loss(
        &self,
        student: Tensor<2>,
        teacher: Tensor<2>,
        labels: Tensor<1, Int>,
        mask: Option<Tensor<1>>,
        _epoch: usize,
    ) -> Result<Tensor<1>, MethodError> {
        let term = logit_std_term(student.clone(), teacher, self)?;
        Ok(cross_entropy(student, labels, mask) * self.ce_weight + term)
    }
}

impl MethodSettings for LogitStdSettings {
    const INFO: &'static MethodInfo = &INFO;

    fn validate(&self, _context: &ValidationContext<'_>) -> Result<(), String> {
        self.check().map_err(|e| format!("distill.logit_std: {e}"))
    }

    fn build(&self, _shared: &Shared) -> Box<dyn Method> {
        Box::new(LogitMethod {
            info: &INFO,
            objective: Arc::new(*self),
        })
    }
}
