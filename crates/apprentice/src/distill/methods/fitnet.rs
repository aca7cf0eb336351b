//! FitNets hints (Romero, Ballas, Kahou, Chassang, Gatta, Bengio: "FitNets: Hints for Thin Deep
//! Nets", ICLR 2015): a learned regressor maps a student feature onto the teacher feature of the
//! same depth, and the student is trained to make the mapped feature match.
//!
//! The regressor is linear: a dense layer for flat features and a 1×1 convolution for maps,
//! which is the same dense layer applied at every pixel. It changes the width (channels) only,
//! so maps must already have the teacher's height and width. The paper's regressor is a
//! convolution followed by the teacher layer's non-linearity, and mdistiller's adds batch norm
//! and a ReLU; the linear one keeps the hint loss a plain least-squares fit that this module can
//! verify exactly, and a caller wanting more can put layers in front.

use burn::tensor::Tensor;

use super::ops::{non_negative, same_shape};
use super::regressor::{FitNetRegressor, matching_widths, mixed_kinds};
use super::{HyperParameter, MethodError, MethodInfo};
use crate::distill::method::{
    FeatureLossMethod, Method, MethodSettings, Shared, ValidationContext,
};
use crate::distill::objective::{FeatureLoss, default_pair};
use crate::models::network::Feature;
use crate::models::network::FeatureTensor;
use std::sync::Arc;

const METHOD: &str = "fitnet";

/// FitNets' hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FitNetSettings {
    /// Weight of the hint loss (a mean over elements).
    pub weight: f64,
}

impl Default for FitNetSettings {
    fn default() -> Self {
        Self { weight: 100.0 }
    }
}

impl FitNetSettings {
    /// The method's description and hyper-parameter table.
    pub const INFO: MethodInfo = MethodInfo {
        name: METHOD,
        title: "FitNets: hint-based feature regression",
        paper: "Romero, Ballas, Kahou, Chassang, Gatta, Bengio: FitNets: Hints for Thin Deep \
            Nets, ICLR 2015",
        inputs: "one student feature and the teacher feature it should predict (flat [batch, \
            width] or maps [batch, channels, height, width] of equal height and width), and a \
            FitNetRegressor",
        conventions: "loss = weight·mean over all elements of (regressor(student) − teacher)²; \
            the paper writes ½·‖·‖² summed and trains the hint in a separate stage, the weight \
            100 with a mean is mdistiller's single-stage CIFAR-100 convention. The regressor is \
            linear (dense or 1×1 convolution).",
        hyper_parameters: &[HyperParameter {
            key: "weight",
            default: 100.0,
            meaning: "weight of the mean squared hint error (mdistiller's convention)",
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

/// FitNets' hint loss `weight·mean((regressor(student) − teacher)²)`.
///
/// Gradients reach the student feature and the regressor; the teacher feature is detached.
pub fn fitnet_loss(
    regressor: &FitNetRegressor,
    student: FeatureTensor,
    teacher: FeatureTensor,
    settings: &FitNetSettings,
) -> Result<Tensor<1>, MethodError> {
    settings.validate()?;
    matching_widths(&student, &teacher)?;
    let error = match (regressor.forward(student)?, teacher) {
        (FeatureTensor::Flat(predicted), FeatureTensor::Flat(target)) => {
            same_shape(METHOD, "hints", predicted.dims(), target.dims())?;
            (predicted - target.detach()).square().mean()
        }
        (FeatureTensor::Map(predicted), FeatureTensor::Map(target)) => {
            same_shape(METHOD, "hints", predicted.dims(), target.dims())?;
            (predicted - target.detach()).square().mean()
        }
        _ => return Err(mixed_kinds()),
    };
    Ok(error * settings.weight)
}

impl MethodSettings for FitNetSettings {
    const INFO: &'static MethodInfo = &FitNetSettings::INFO;

    fn validate(&self, context: &ValidationContext<'_>) -> Result<(), String> {
        context.check_teacher_features(METHOD)?;
        FitNetSettings::validate(self).map_err(|e| format!("distill.fitnet: {e}"))
    }

    fn build(&self, shared: &Shared) -> Box<dyn Method> {
        FeatureLossMethod::boxed(&FitNetSettings::INFO, Arc::new(*self), shared)
    }
}

impl FeatureLoss for FitNetSettings {
    fn name(&self) -> &'static str {
        METHOD
    }

    fn pairs(
        &self,
        student: &[Feature],
        teacher: &[Feature],
        named_student: Option<usize>,
        named_teacher: Option<usize>,
    ) -> Result<Vec<(usize, usize)>, String> {
        let (s, t) = default_pair(METHOD, student, teacher, named_student, named_teacher)?;
        let kind = |f: &Feature| matches!(f.value, FeatureTensor::Map(_));
        if kind(&student[s]) != kind(&teacher[t]) {
            return Err(format!(
                "fitnet: the student's {} and the teacher's {} are not of the same kind (one is a feature map, the other flat); name a pair with distill.fitnet_features",
                student[s].name, teacher[t].name
            ));
        }
        Ok(vec![(s, t)])
    }

    fn uses_regressors(&self) -> bool {
        true
    }

    fn term(
        &self,
        students: Vec<FeatureTensor>,
        views: Vec<FeatureTensor>,
        regressors: &[FitNetRegressor],
    ) -> Result<Tensor<1>, MethodError> {
        let mut total: Option<Tensor<1>> = None;
        for ((feature, view), regressor) in students.into_iter().zip(views).zip(regressors) {
            let term = fitnet_loss(regressor, feature, view, self)?;
            total = Some(match total {
                Some(sum) => sum + term,
                None => term,
            });
        }
        total.ok_or_else(|| MethodError::Shape {
            method: METHOD,
            detail: "no regressor was given for the hint pair".to_string(),
        })
    }
}
