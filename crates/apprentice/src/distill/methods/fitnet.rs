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

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::ops::{non_negative, same_batch, same_shape};
use super::{HyperParameter, MethodError, MethodInfo};
use crate::distill::method::{
    FeatureLossMethod, Method, MethodSettings, Shared, ValidationContext,
};
use crate::distill::objective::{FeatureMethod, FeatureObjective};
use crate::models::layers::Dense;
use crate::models::network::FeatureTensor;

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

/// The learned regressor from a student feature to the teacher's feature width: a dense layer
/// on flat features, a 1×1 convolution (the same weights at every pixel) on maps.
#[derive(Module, Debug)]
pub struct FitNetRegressor {
    /// Weights `[student width, teacher width]` and bias `[teacher width]`; for maps the width
    /// is the number of channels.
    pub layer: Dense,
}

impl FitNetRegressor {
    /// A regressor from `student_width` to `teacher_width` values (channels for maps), drawn
    /// from `seed` like every model layer (uniform in ±1/√student_width, PyTorch's default for
    /// dense and 1×1 convolution layers alike).
    pub fn new(student_width: usize, teacher_width: usize, seed: u64, device: &Device) -> Self {
        Self {
            layer: Dense::new(student_width, teacher_width, seed, device),
        }
    }

    /// A regressor sized for a pair of example features (of any batch size), or why the pair
    /// cannot be related by one.
    pub fn for_features(
        student: &FeatureTensor,
        teacher: &FeatureTensor,
        seed: u64,
        device: &Device,
    ) -> Result<Self, MethodError> {
        let (student_width, teacher_width) = matching_widths(student, teacher)?;
        Ok(Self::new(student_width, teacher_width, seed, device))
    }

    /// A regressor with the given weight `[student width, teacher width]` and bias
    /// `[teacher width]`, e.g. restored from elsewhere.
    pub fn from_parameters(weight: Tensor<2>, bias: Tensor<1>) -> Self {
        Self {
            layer: Dense {
                weight: Param::from_tensor(weight),
                bias: Param::from_tensor(bias),
            },
        }
    }

    /// The number of values (flat) or channels (maps) it takes.
    pub fn input_width(&self) -> usize {
        self.layer.weight.val().dims()[0]
    }

    /// The number of values (flat) or channels (maps) it produces.
    pub fn output_width(&self) -> usize {
        self.layer.weight.val().dims()[1]
    }

    /// Maps a student feature to the teacher's width; errors if its width is not
    /// [`FitNetRegressor::input_width`].
    pub fn forward(&self, student: FeatureTensor) -> Result<FeatureTensor, MethodError> {
        let expected = self.input_width();
        let width = match &student {
            FeatureTensor::Flat(values) => values.dims()[1],
            FeatureTensor::Map(map) => map.dims()[1],
        };
        if width != expected {
            return Err(MethodError::Shape {
                method: METHOD,
                detail: format!(
                    "the regressor takes {expected} values or channels, but the student feature has {width}"
                ),
            });
        }
        Ok(match student {
            FeatureTensor::Flat(values) => FeatureTensor::Flat(self.layer.forward(values)),
            FeatureTensor::Map(map) => {
                let [batch, channels, height, width] = map.dims();
                let pixels = map
                    .permute([0, 2, 3, 1])
                    .reshape([batch * height * width, channels]);
                let mapped = self
                    .layer
                    .forward(pixels)
                    .reshape([batch, height, width, self.output_width()])
                    .permute([0, 3, 1, 2]);
                FeatureTensor::Map(mapped)
            }
        })
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

/// The student and teacher widths (channels for maps), after checking that the two features
/// are of the same kind, batch and (for maps) height and width.
fn matching_widths(
    student: &FeatureTensor,
    teacher: &FeatureTensor,
) -> Result<(usize, usize), MethodError> {
    match (student, teacher) {
        (FeatureTensor::Flat(s), FeatureTensor::Flat(t)) => {
            let ([s_batch, s_width], [t_batch, t_width]) = (s.dims(), t.dims());
            same_batch(METHOD, s_batch, t_batch)?;
            Ok((s_width, t_width))
        }
        (FeatureTensor::Map(s), FeatureTensor::Map(t)) => {
            let [s_batch, s_channels, s_height, s_width] = s.dims();
            let [t_batch, t_channels, t_height, t_width] = t.dims();
            same_batch(METHOD, s_batch, t_batch)?;
            if (s_height, s_width) != (t_height, t_width) {
                return Err(MethodError::Shape {
                    method: METHOD,
                    detail: format!(
                        "student maps are {s_height}×{s_width} but teacher maps are \
                         {t_height}×{t_width}; a 1×1 regressor needs equal spatial sizes (pick \
                         a student feature of the teacher's resolution)"
                    ),
                });
            }
            Ok((s_channels, t_channels))
        }
        _ => Err(mixed_kinds()),
    }
}

fn mixed_kinds() -> MethodError {
    MethodError::Shape {
        method: METHOD,
        detail: "one feature is flat and the other a map; hints need features of the same kind"
            .to_string(),
    }
}

impl MethodSettings for FitNetSettings {
    const INFO: &'static MethodInfo = &FitNetSettings::INFO;

    fn validate(&self, _context: &ValidationContext<'_>) -> Result<(), String> {
        FitNetSettings::validate(self).map_err(|e| format!("distill.fitnet: {e}"))
    }

    fn build(&self, shared: &Shared) -> Box<dyn Method> {
        Box::new(FeatureLossMethod {
            info: &FitNetSettings::INFO,
            objective: FeatureObjective {
                method: FeatureMethod::FitNet(*self),
                student_feature: shared.features.student.clone(),
                teacher_feature: shared.features.teacher.clone(),
            },
        })
    }
}
