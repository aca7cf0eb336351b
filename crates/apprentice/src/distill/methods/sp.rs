//! Similarity-preserving distillation (Tung, Mori: "Similarity-Preserving Knowledge
//! Distillation", ICCV 2019): inputs that the teacher represents alike should be represented
//! alike by the student.
//!
//! For features flattened to `F` `[batch, values]`, `G = F·Fᵀ` is the batch's Gram matrix; each
//! row is divided by its L2 norm, and the loss is `‖G_s − G_t‖²_F / B²`, summed over the chosen
//! (student, teacher) pairs of layers. The widths of a pair may differ.

use burn::tensor::Tensor;

use super::ops::{NORM_FLOOR, enough_samples, l2_norm, non_negative, same_batch, sum_all};
use super::{HyperParameter, MethodError, MethodInfo};
use crate::distill::method::{
    FeatureLossMethod, Method, MethodSettings, Shared, ValidationContext,
};
use crate::distill::methods::FitNetRegressor;
use crate::distill::objective::{FeatureLoss, flatten_feature};
use crate::models::network::FeatureTensor;
use std::sync::Arc;

const METHOD: &str = "sp";

/// SP's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpSettings {
    /// Weight γ of the summed pair losses.
    pub weight: f64,
}

impl Default for SpSettings {
    fn default() -> Self {
        Self { weight: 3000.0 }
    }
}

impl SpSettings {
    /// The method's description and hyper-parameter table.
    pub const INFO: MethodInfo = MethodInfo {
        name: METHOD,
        title: "Similarity-preserving knowledge distillation",
        paper: "Tung, Mori: Similarity-Preserving Knowledge Distillation, ICCV 2019",
        inputs: "pairs of student and teacher features flattened to [batch, values] (see \
            flatten_feature), one pair per stage, batch ≥ 2",
        conventions: "loss = weight·Σ pairs ‖G_s − G_t‖²_F / B² with G = F·Fᵀ row-normalised, \
            as in the paper and mdistiller; weight 3000 is the paper's CIFAR-10 γ (mdistiller \
            uses it on CIFAR-100 with the last feature only).",
        hyper_parameters: &[HyperParameter {
            key: "weight",
            default: 3000.0,
            meaning: "weight γ of the summed pair losses (paper, CIFAR)",
        }],
    };

    /// The method's description and hyper-parameter table.
    pub fn describe() -> &'static MethodInfo {
        &Self::INFO
    }

    /// Checks that the weight is finite and ≥ 0.
    pub fn validate(&self) -> Result<(), MethodError> {
        non_negative(METHOD, "weight", self.weight)
    }
}

/// SP's loss over `pairs` of (student, teacher) features `[batch, values]`:
/// `weight · Σ_pairs ‖G_s − G_t‖²_F / B²`.
///
/// At least one pair is required, and a batch of one is [`MethodError::BatchTooSmall`] (its
/// only similarity is a sample's to itself, normalised to 1).
pub fn sp_loss(
    pairs: &[(Tensor<2>, Tensor<2>)],
    settings: &SpSettings,
) -> Result<Tensor<1>, MethodError> {
    settings.validate()?;
    let mut terms = Vec::with_capacity(pairs.len());
    for (student, teacher) in pairs {
        let [batch, _] = student.dims();
        same_batch(METHOD, batch, teacher.dims()[0])?;
        enough_samples(
            METHOD,
            batch,
            2,
            "it compares the similarities between samples",
        )?;
        let difference =
            normalised_gram(student.clone()) - normalised_gram(teacher.clone().detach());
        terms.push(difference.square().sum() / (batch * batch) as f64);
    }
    let total = sum_all(terms).ok_or_else(|| MethodError::Shape {
        method: METHOD,
        detail: "no feature pairs were given".to_string(),
    })?;
    Ok(total * settings.weight)
}

/// `F·Fᵀ` with each row divided by its L2 norm.
fn normalised_gram(features: Tensor<2>) -> Tensor<2> {
    let gram = features.clone().matmul(features.transpose());
    gram.clone() / l2_norm(gram, 1, NORM_FLOOR)
}

impl MethodSettings for SpSettings {
    const INFO: &'static MethodInfo = &SpSettings::INFO;

    fn validate(&self, context: &ValidationContext<'_>) -> Result<(), String> {
        context.check_teacher_features(METHOD)?;
        SpSettings::validate(self).map_err(|e| format!("distill.sp: {e}"))
    }

    fn build(&self, shared: &Shared) -> Box<dyn Method> {
        FeatureLossMethod::boxed(&SpSettings::INFO, Arc::new(*self), shared)
    }
}

impl FeatureLoss for SpSettings {
    fn name(&self) -> &'static str {
        METHOD
    }

    fn term(
        &self,
        students: Vec<FeatureTensor>,
        views: Vec<FeatureTensor>,
        _regressors: &[FitNetRegressor],
    ) -> Result<Tensor<1>, MethodError> {
        let pairs: Vec<(Tensor<2>, Tensor<2>)> = students
            .into_iter()
            .zip(views)
            .map(|(s, t)| (flatten_feature(s), flatten_feature(t)))
            .collect();
        sp_loss(&pairs, self)
    }
}
