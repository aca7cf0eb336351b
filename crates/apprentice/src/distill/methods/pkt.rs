//! Probabilistic knowledge transfer (Passalis, Tefas: "Learning Deep Representations with
//! Probabilistic Knowledge Transfer", ECCV 2018): match, for every sample, the distribution of
//! its similarities to the other samples of the batch.
//!
//! Similarities are cosine similarities shifted to [0, 1], `(K + 1)/2`, each row normalised to a
//! distribution (the diagonal, a sample's similarity 1 to itself, included as in the official
//! code), and the loss is KL(teacher ‖ student) per row. The ε = 1e-7 of the official code is
//! kept in both places: added to the norms and inside the logarithm.
//!
//! Averaging: this module takes the mean over rows of each row's KL, a batch-size-independent
//! average KL. The official code and mdistiller take `torch.mean` over all B² entries, which is
//! this value divided by B; mdistiller's weight 30000 at batch 64 corresponds to a weight of
//! about 470 here, the default. (The paper's unweighted loss, weight 1, is too weak beside the
//! cross-entropy to change what a student learns: on the digits quickstart it left every
//! prediction of the scratch student unchanged.)

use burn::tensor::Tensor;

use super::ops::{NORM_FLOOR, enough_samples, l2_norm, non_negative, same_batch};
use super::{HyperParameter, MethodError, MethodInfo};
use crate::distill::method::{
    FeatureLossMethod, Method, MethodSettings, Shared, ValidationContext,
};
use crate::distill::methods::FitNetRegressor;
use crate::distill::objective::{FeatureLoss, first_pair};
use crate::models::network::FeatureTensor;
use std::sync::Arc;

const METHOD: &str = "pkt";

/// The official code's ε, added to norms and to probabilities inside the logarithm.
const EPS: f64 = 1e-7;

/// PKT's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PktSettings {
    /// Weight of the mean KL.
    pub weight: f64,
}

impl Default for PktSettings {
    fn default() -> Self {
        Self { weight: 470.0 }
    }
}

impl PktSettings {
    /// The method's description and hyper-parameter table.
    pub const INFO: MethodInfo = MethodInfo {
        name: METHOD,
        title: "Probabilistic knowledge transfer",
        paper: "Passalis, Tefas: Learning Deep Representations with Probabilistic Knowledge \
            Transfer, ECCV 2018",
        inputs: "student and teacher embeddings [batch, dim] (widths may differ), batch ≥ 2",
        conventions: "loss = weight·mean over samples of KL(teacher ‖ student) between rows of \
            the (cosine + 1)/2 similarity matrices normalised to sum to 1 (diagonal included, \
            ε = 1e-7 in norms and logs). mdistiller averages over all B² entries instead (B \
            times smaller) with weight 30000 at batch 64, which is weight 470 here.",
        hyper_parameters: &[HyperParameter {
            key: "weight",
            default: 470.0,
            meaning: "weight of the mean per-sample KL (mdistiller's 30000 at batch 64)",
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

/// PKT's loss on embeddings `student` `[batch, d_s]` and `teacher` `[batch, d_t]`.
///
/// With one sample the only similarity is the sample's to itself, so a batch of one is
/// [`MethodError::BatchTooSmall`].
pub fn pkt_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    settings: &PktSettings,
) -> Result<Tensor<1>, MethodError> {
    settings.validate()?;
    let [batch, _] = student.dims();
    same_batch(METHOD, batch, teacher.dims()[0])?;
    enough_samples(
        METHOD,
        batch,
        2,
        "each sample's similarities to the other samples form a distribution",
    )?;
    let student_q = similarity_distribution(student);
    let teacher_q = similarity_distribution(teacher.detach());
    let per_row =
        (teacher_q.clone() * ((teacher_q + EPS).log() - (student_q + EPS).log())).sum_dim(1);
    Ok(per_row.mean() * settings.weight)
}

/// Rows of `(cos + 1)/2` similarities, each divided by its sum.
fn similarity_distribution(features: Tensor<2>) -> Tensor<2> {
    let unit = features.clone() / (l2_norm(features, 1, NORM_FLOOR) + EPS);
    let kernel = (unit.clone().matmul(unit.transpose()) + 1.0) / 2.0;
    kernel.clone() / kernel.sum_dim(1)
}

impl MethodSettings for PktSettings {
    const INFO: &'static MethodInfo = &PktSettings::INFO;

    fn validate(&self, context: &ValidationContext<'_>) -> Result<(), String> {
        context.check_teacher_features(METHOD)?;
        PktSettings::validate(self).map_err(|e| format!("distill.pkt: {e}"))
    }

    fn build(&self, shared: &Shared) -> Box<dyn Method> {
        FeatureLossMethod::boxed(&PktSettings::INFO, Arc::new(*self), shared)
    }
}

impl FeatureLoss for PktSettings {
    fn name(&self) -> &'static str {
        METHOD
    }

    fn term(
        &self,
        students: Vec<FeatureTensor>,
        views: Vec<FeatureTensor>,
        _regressors: &[FitNetRegressor],
    ) -> Result<Tensor<1>, MethodError> {
        let (s, t) = first_pair(students, views);
        pkt_loss(s, t, self)
    }
}
