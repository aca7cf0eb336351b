//! The learned regressor of FitNets: maps a student feature to the teacher's feature width (a
//! dense layer on flat features, a 1×1 convolution on maps). It trains with the student, so
//! the training loop holds it as well as the FitNets loss.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::ops::same_batch;
use crate::distill::method_error::MethodError;
use crate::models::layers::Dense;
use crate::models::network::FeatureTensor;

const METHOD: &str = "fitnet";

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

/// The student and teacher widths (channels for maps), after checking that the two features
/// are of the same kind, batch and (for maps) height and width.
pub fn matching_widths(
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

/// The error for a flat feature paired with a map.
pub fn mixed_kinds() -> MethodError {
    MethodError::Shape {
        method: METHOD,
        detail: "one feature is flat and the other a map; hints need features of the same kind"
            .to_string(),
    }
}
