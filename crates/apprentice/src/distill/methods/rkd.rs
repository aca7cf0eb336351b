//! Relational knowledge distillation (Park, Kim, Lu, Cho: "Relational Knowledge Distillation",
//! CVPR 2019): transfer the geometry of the batch's embeddings rather than the embeddings.
//!
//! The distance term compares the matrices of pairwise Euclidean distances, each divided by its
//! mean over distinct pairs (so the student's scale is free); the angle term compares, for every
//! triplet, the cosine of the angle at the apex sample. Both use smooth-L1 (Huber, δ = 1).
//!
//! Averaging follows the official code and mdistiller: the distance term is a mean over all
//! B² entries (the zero diagonal included) and the angle term a mean over all B³ triplets, where
//! the degenerate ones (apex repeated) have cosine 0 for both networks. Distances are computed
//! from the difference vectors rather than from `|a|² + |b|² − 2⟨a, b⟩`, which loses precision
//! in f32 for close samples, and squared distances are floored at 1e-12 as in the reference.
//! The embeddings' widths may differ; only the batch must agree.
//!
//! With two samples both terms are identically zero (one distance, normalised to 1; every
//! non-degenerate angle is between a vector and itself), so RKD transfers something only from
//! three samples on.

use burn::tensor::Tensor;

use super::ops::{NORM_FLOOR, enough_samples, l2_norm, non_negative, same_batch, smooth_l1};
use super::{HyperParameter, MethodError, MethodInfo};
use crate::distill::method::{
    FeatureLossMethod, Method, MethodSettings, Shared, ValidationContext,
};
use crate::distill::methods::FitNetRegressor;
use crate::distill::objective::{FeatureLoss, first_pair};
use crate::models::network::FeatureTensor;
use std::sync::Arc;

const METHOD: &str = "rkd";

/// Floor of a squared pairwise distance (the reference's `pdist` epsilon).
const SQUARED_DISTANCE_FLOOR: f64 = 1e-12;

/// RKD's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RkdSettings {
    /// Weight of the distance term.
    pub distance_weight: f64,
    /// Weight of the angle term.
    pub angle_weight: f64,
}

impl Default for RkdSettings {
    fn default() -> Self {
        Self {
            distance_weight: 25.0,
            angle_weight: 50.0,
        }
    }
}

impl RkdSettings {
    /// The method's description and hyper-parameter table.
    pub const INFO: MethodInfo = MethodInfo {
        name: METHOD,
        title: "Relational knowledge distillation (distance and angle)",
        paper: "Park, Kim, Lu, Cho: Relational Knowledge Distillation, CVPR 2019",
        inputs: "student and teacher embeddings [batch, dim] (widths may differ), batch ≥ 2 \
            (both terms vanish identically below 3)",
        conventions: "distance term = mean over the B² entries of smooth-L1 between distance \
            matrices normalised by their mean off-diagonal distance; angle term = mean over the \
            B³ triplets of smooth-L1 between cosines at the apex (0 for degenerate triplets), \
            as in the official code and mdistiller.",
        hyper_parameters: &[
            HyperParameter {
                key: "distance_weight",
                default: 25.0,
                meaning: "weight of the distance-wise term (paper: 25)",
            },
            HyperParameter {
                key: "angle_weight",
                default: 50.0,
                meaning: "weight of the angle-wise term (paper: 50)",
            },
        ],
    };

    /// The method's description and hyper-parameter table.
    pub fn describe() -> &'static MethodInfo {
        &Self::INFO
    }

    /// Checks that both weights are finite and ≥ 0.
    pub fn validate(&self) -> Result<(), MethodError> {
        non_negative(METHOD, "distance_weight", self.distance_weight)?;
        non_negative(METHOD, "angle_weight", self.angle_weight)
    }
}

/// RKD's two terms, unweighted.
#[derive(Debug, Clone)]
pub struct RkdParts {
    /// Smooth-L1 between the normalised distance matrices, mean over B² entries.
    pub distance: Tensor<1>,
    /// Smooth-L1 between the angle cosines, mean over B³ triplets.
    pub angle: Tensor<1>,
}

/// The distance and angle terms for embeddings `student` `[batch, d_s]` and `teacher`
/// `[batch, d_t]`.
///
/// A batch of one has no pair to normalise distances by: [`MethodError::BatchTooSmall`].
pub fn rkd_parts(student: Tensor<2>, teacher: Tensor<2>) -> Result<RkdParts, MethodError> {
    let [batch, _] = student.dims();
    same_batch(METHOD, batch, teacher.dims()[0])?;
    enough_samples(
        METHOD,
        batch,
        2,
        "distances are normalised by the mean distance between distinct samples",
    )?;
    let device = student.device();
    let off_diagonal =
        Tensor::<2>::ones([batch, batch], &device) - Tensor::<2>::eye(batch, &device);
    let student_differences = differences(student);
    let teacher_differences = differences(teacher.detach());
    let distance = smooth_l1(
        normalised_distances(student_differences.clone(), off_diagonal.clone())
            - normalised_distances(teacher_differences.clone(), off_diagonal),
    )
    .mean();
    let angle =
        smooth_l1(apex_cosines(student_differences) - apex_cosines(teacher_differences)).mean();
    Ok(RkdParts { distance, angle })
}

/// RKD's loss `distance_weight·distance + angle_weight·angle`.
pub fn rkd_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    settings: &RkdSettings,
) -> Result<Tensor<1>, MethodError> {
    settings.validate()?;
    let parts = rkd_parts(student, teacher)?;
    Ok(parts.distance * settings.distance_weight + parts.angle * settings.angle_weight)
}

/// `[batch, batch, dim]` with entry `[i, j]` = `e[j] − e[i]`.
fn differences(embeddings: Tensor<2>) -> Tensor<3> {
    embeddings.clone().unsqueeze_dim::<3>(0) - embeddings.unsqueeze_dim::<3>(1)
}

/// Pairwise distances (zero diagonal) divided by their mean over distinct pairs.
fn normalised_distances(differences: Tensor<3>, off_diagonal: Tensor<2>) -> Tensor<2> {
    let [batch, _, _] = differences.dims();
    // The diagonal is zeroed by a product, not by a floor: the floored diagonal would be 1e-6,
    // and its gradient is cut by the clamp anyway.
    let distances: Tensor<2> = differences
        .square()
        .sum_dim(2)
        .clamp_min(SQUARED_DISTANCE_FLOOR)
        .sqrt()
        .squeeze_dim(2)
        * off_diagonal;
    let mean = distances.clone().sum() / (batch * (batch - 1)) as f64;
    distances / mean.reshape([1, 1])
}

/// `[batch, batch, batch]` with entry `[i, j, k]` = cos of the angle at apex `i` between `j`
/// and `k`; zero when `j` or `k` is `i`.
fn apex_cosines(differences: Tensor<3>) -> Tensor<3> {
    let unit = differences.clone() / l2_norm(differences, 2, NORM_FLOOR);
    unit.clone().matmul(unit.swap_dims(1, 2))
}

impl MethodSettings for RkdSettings {
    const INFO: &'static MethodInfo = &RkdSettings::INFO;

    fn validate(&self, context: &ValidationContext<'_>) -> Result<(), String> {
        context.check_teacher_features(METHOD)?;
        RkdSettings::validate(self).map_err(|e| format!("distill.rkd: {e}"))
    }

    fn build(&self, shared: &Shared) -> Box<dyn Method> {
        FeatureLossMethod::boxed(&RkdSettings::INFO, Arc::new(*self), shared)
    }
}

impl FeatureLoss for RkdSettings {
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
        rkd_loss(s, t, self)
    }
}
