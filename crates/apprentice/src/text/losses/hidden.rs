//! TinyBERT's hidden-state loss (Jiao et al., 2020): the mean squared error between the
//! teacher's hidden states and the student's mapped to the teacher's width by a learned linear
//! projection, `MSE(H_S W + b, H_T)`, over the real tokens.

use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use super::token_weights;

/// A learned projection from the student's width to the teacher's (BERT's initialisation).
pub fn projection(student_width: usize, teacher_width: usize, device: &Device) -> Linear {
    crate::text::classifier::bert_linear(student_width, teacher_width, 0.02, device)
}

/// `Σ_real tokens ‖proj(s) − t‖² / (real tokens × teacher width)`; `student` `[batch, len,
/// ws]`, `teacher` `[batch, len, wt]`, `projection` `ws → wt` (`None` when the widths are
/// equal and no projection is wanted).
pub fn hidden_mse(
    student: Tensor<3>,
    teacher: Tensor<3>,
    projection: Option<&Linear>,
    mask: Tensor<2>,
) -> Tensor<1> {
    let mapped = match projection {
        Some(linear) => linear.forward(student),
        None => student,
    };
    let [_, _, width] = teacher.dims();
    let (weights, count) = token_weights(mask);
    let squared = (mapped - teacher).powi_scalar(2) * weights;
    squared.sum() / (count * width as f64)
}
