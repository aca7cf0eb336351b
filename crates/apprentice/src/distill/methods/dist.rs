//! DIST (Huang, You, Wang, Qian, Xu: "Knowledge Distillation from A Stronger Teacher",
//! NeurIPS 2022): match the *relations* in the predictions rather than the predictions.
//!
//! With `p = softmax(z/T)` for student and teacher, the inter-class term asks each sample's
//! class ranking to correlate with the teacher's (Pearson correlation over the classes of each
//! row), the intra-class term asks each class's scores across the batch to correlate (over the
//! samples of each column). Pearson correlation ignores shifts and scales, which is what lets a
//! weak student follow a much stronger teacher.

use burn::tensor::{Tensor, activation};

use super::ops::{NORM_FLOOR, enough_samples, l2_norm, non_negative, positive, same_shape};
use super::{HyperParameter, MethodError, MethodInfo};
use std::sync::Arc;

use burn::tensor::Int;

use crate::distill::loss::{LogitLoss, cross_entropy_plus};
use crate::distill::method::{LogitMethod, Method, MethodSettings, Shared, ValidationContext};

const METHOD: &str = "dist";

/// Added to the product of the two norms in the Pearson correlation, as in the official code:
/// a constant row or column then has correlation 0 (not NaN).
const PEARSON_EPS: f64 = 1e-8;

/// DIST's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistSettings {
    /// Weight β of the inter-class (per-sample) relation term.
    pub beta: f64,
    /// Weight γ of the intra-class (per-class) relation term.
    pub gamma: f64,
    /// Softening temperature T (> 0); the loss is multiplied by T².
    pub temperature: f64,
}

impl Default for DistSettings {
    fn default() -> Self {
        Self {
            beta: 1.0,
            gamma: 1.0,
            temperature: 1.0,
        }
    }
}

impl DistSettings {
    /// The method's description and hyper-parameter table.
    pub const INFO: MethodInfo = MethodInfo {
        name: METHOD,
        title: "DIST: inter- and intra-class relation distillation",
        paper: "Huang, You, Wang, Qian, Xu: Knowledge Distillation from A Stronger Teacher, \
            NeurIPS 2022",
        inputs: "student and teacher logits [batch, classes], batch ≥ 2",
        conventions: "loss = T²·(β·inter + γ·intra) with inter = mean over samples and intra = \
            mean over classes of 1 − Pearson(student, teacher) on softmax(z/T); T² multiplies \
            both terms as in the official code; the Pearson denominator is |u|·|v| + 1e-8. \
            Defaults β = γ = T = 1 are those of the official implementation.",
        hyper_parameters: &[
            HyperParameter {
                key: "beta",
                default: 1.0,
                meaning: "weight of the inter-class term (per sample, over classes)",
            },
            HyperParameter {
                key: "gamma",
                default: 1.0,
                meaning: "weight of the intra-class term (per class, over the batch)",
            },
            HyperParameter {
                key: "temperature",
                default: 1.0,
                meaning: "softening temperature T; the loss is scaled by T²",
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
        non_negative(METHOD, "beta", self.beta)?;
        non_negative(METHOD, "gamma", self.gamma)
    }
}

/// DIST's two relation terms, unweighted and without T².
#[derive(Debug, Clone)]
pub struct DistParts {
    /// Mean over samples of 1 − Pearson(p_s[i, :], p_t[i, :]).
    pub inter: Tensor<1>,
    /// Mean over classes of 1 − Pearson(p_s[:, c], p_t[:, c]).
    pub intra: Tensor<1>,
}

/// The inter- and intra-class terms at `temperature`, for logits `[batch, classes]`.
///
/// The intra-class correlation runs over the samples of the batch, so a batch of one is an
/// error ([`MethodError::BatchTooSmall`]) rather than a meaningless constant.
pub fn dist_parts(
    student: Tensor<2>,
    teacher: Tensor<2>,
    temperature: f64,
) -> Result<DistParts, MethodError> {
    positive(METHOD, "temperature", temperature)?;
    same_shape(METHOD, "logits", student.dims(), teacher.dims())?;
    let [batch, classes] = student.dims();
    enough_samples(
        METHOD,
        batch,
        2,
        "the intra-class term correlates each class's scores across the batch",
    )?;
    if classes < 2 {
        return Err(MethodError::Shape {
            method: METHOD,
            detail: format!("needs at least two classes, got {classes}"),
        });
    }
    let student_probs = activation::softmax(student / temperature, 1);
    let teacher_probs = activation::softmax(teacher.detach() / temperature, 1);
    Ok(DistParts {
        inter: mean_pearson_distance(student_probs.clone(), teacher_probs.clone()),
        intra: mean_pearson_distance(student_probs.transpose(), teacher_probs.transpose()),
    })
}

/// DIST's distillation term `T²·(β·inter + γ·intra)`.
pub fn dist_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    settings: &DistSettings,
) -> Result<Tensor<1>, MethodError> {
    settings.validate()?;
    let parts = dist_parts(student, teacher, settings.temperature)?;
    let scale = settings.temperature * settings.temperature;
    Ok((parts.inter * settings.beta + parts.intra * settings.gamma) * scale)
}

/// Mean over rows of `1 − Pearson(a[i, :], b[i, :])`.
fn mean_pearson_distance(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    let a = a.clone() - a.mean_dim(1);
    let b = b.clone() - b.mean_dim(1);
    let denominator = l2_norm(a.clone(), 1, NORM_FLOOR) * l2_norm(b.clone(), 1, NORM_FLOOR);
    let correlation = (a * b).sum_dim(1) / (denominator + PEARSON_EPS);
    (correlation.neg() + 1.0).mean()
}

impl MethodSettings for DistSettings {
    const INFO: &'static MethodInfo = &DistSettings::INFO;

    fn validate(&self, _context: &ValidationContext<'_>) -> Result<(), String> {
        DistSettings::validate(self).map_err(|e| format!("distill.dist: {e}"))
    }

    fn build(&self, _shared: &Shared) -> Box<dyn Method> {
        Box::new(LogitMethod {
            info: &DistSettings::INFO,
            objective: Arc::new(*self),
        })
    }
}

impl LogitLoss for DistSettings {
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
        let term = dist_loss(student.clone(), teacher, self);
        cross_entropy_plus(student, labels, mask, term)
    }
}
