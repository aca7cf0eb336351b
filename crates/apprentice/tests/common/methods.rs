//! What the distillation-method tests share: the cases of the numpy reference
//! (`tests/fixtures/make_methods_reference.py`, float64), the tolerances they are held to, and
//! the helpers that build tensors, take gradients and compare them with the reference and with
//! finite differences. Kept here so that each family of methods has its own test file.

use apprentice::backend::{ComputeDevice, matrix, to_host};
use apprentice::models::FeatureTensor;
use burn::tensor::{Device, Tensor, TensorData};
use serde::Deserialize;

// ------------------------------------------------------------------------------------ fixture

#[derive(Deserialize)]
pub struct Fixture {
    pub dkd: Vec<DkdCase>,
    pub dist: Vec<DistCase>,
    pub fitnet: Vec<FitNetCase>,
    pub attention: Vec<AttentionCase>,
    pub rkd: Vec<RkdCase>,
    pub pkt: Vec<PktCase>,
    pub sp: Vec<SpCase>,
}

#[derive(Deserialize)]
pub struct DkdCase {
    pub name: String,
    pub batch: usize,
    pub classes: usize,
    pub temperature: f64,
    pub alpha: f64,
    pub beta: f64,
    pub student: Vec<f32>,
    pub teacher: Vec<f32>,
    pub labels: Vec<u32>,
    pub tckd: Vec<f64>,
    pub nckd: Vec<f64>,
    pub teacher_target_probability: Vec<f64>,
    pub loss: f64,
    pub grad: Vec<f64>,
}

#[derive(Deserialize)]
pub struct DistCase {
    pub name: String,
    pub batch: usize,
    pub classes: usize,
    pub temperature: f64,
    pub beta: f64,
    pub gamma: f64,
    pub student: Vec<f32>,
    pub teacher: Vec<f32>,
    pub inter: f64,
    pub intra: f64,
    pub loss: f64,
    pub grad: Vec<f64>,
}

#[derive(Deserialize)]
pub struct FitNetCase {
    pub name: String,
    pub student_shape: Vec<usize>,
    pub teacher_shape: Vec<usize>,
    pub weight: f64,
    pub student: Vec<f32>,
    pub teacher: Vec<f32>,
    pub regressor_weight: Vec<f32>,
    pub regressor_bias: Vec<f32>,
    pub loss: f64,
    pub grad: Vec<f64>,
}

#[derive(Deserialize)]
pub struct AttentionCase {
    pub name: String,
    pub p: f64,
    pub weight: f64,
    pub stages: Vec<Stage>,
    pub loss: f64,
}

/// One (student, teacher) pair of an attention or SP case, with the gradient with respect to
/// its student input.
#[derive(Deserialize)]
pub struct Stage {
    pub student_shape: Vec<usize>,
    pub teacher_shape: Vec<usize>,
    pub student: Vec<f32>,
    pub teacher: Vec<f32>,
    pub grad: Vec<f64>,
}

#[derive(Deserialize)]
pub struct RkdCase {
    pub name: String,
    pub batch: usize,
    pub student_dim: usize,
    pub teacher_dim: usize,
    pub distance_weight: f64,
    pub angle_weight: f64,
    pub student: Vec<f32>,
    pub teacher: Vec<f32>,
    pub distance: f64,
    pub angle: f64,
    pub loss: f64,
    pub grad: Vec<f64>,
}

#[derive(Deserialize)]
pub struct PktCase {
    pub name: String,
    pub batch: usize,
    pub student_dim: usize,
    pub teacher_dim: usize,
    pub weight: f64,
    pub student: Vec<f32>,
    pub teacher: Vec<f32>,
    pub loss: f64,
    pub grad: Vec<f64>,
}

#[derive(Deserialize)]
pub struct SpCase {
    pub name: String,
    pub weight: f64,
    pub pairs: Vec<Stage>,
    pub loss: f64,
}

pub fn fixture() -> Fixture {
    serde_json::from_str(include_str!("../fixtures/methods_reference.json"))
        .expect("fixture parses")
}

// ------------------------------------------------------------------------------------ helpers

/// Relative tolerance of loss values against the float64 reference.
pub const LOSS_TOLERANCE: f64 = 1e-5;
/// Tolerance of every gradient entry, relative to the case's largest reference entry: f32
/// rounding spreads over a whole gradient, so small entries are held to the scale of the large
/// ones rather than to their own. Most cases agree to 1e-6; PKT's row normalisation subtracts
/// terms of similar size and costs a few more digits (7e-6 on its 16-sample case).
pub const GRAD_TOLERANCE: f64 = 3e-5;

pub fn training() -> Device {
    ComputeDevice::cpu().training()
}

pub fn tensor4(values: &[f32], shape: &[usize], device: &Device) -> Tensor<4> {
    let shape: [usize; 4] = shape.try_into().expect("a map shape has four axes");
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

/// A flat `[batch, rest]` matrix from any shape: maps are flattened per sample.
pub fn flat_matrix(values: &[f32], shape: &[usize], device: &Device) -> Tensor<2> {
    let batch = shape[0];
    matrix(values.to_vec(), batch, values.len() / batch, device)
}

pub fn feature(values: &[f32], shape: &[usize], device: &Device) -> FeatureTensor {
    match shape.len() {
        2 => FeatureTensor::Flat(matrix(values.to_vec(), shape[0], shape[1], device)),
        4 => FeatureTensor::Map(tensor4(values, shape, device)),
        n => panic!("features have 2 or 4 axes, not {n}"),
    }
}

pub fn assert_loss(case: &str, ours: f64, reference: f64) {
    let tolerance = LOSS_TOLERANCE * reference.abs().max(1e-3);
    assert!(
        (ours - reference).abs() <= tolerance,
        "{case}: loss {ours} vs reference {reference} (off by {:.3e} relative)",
        (ours - reference).abs() / reference.abs().max(1e-300)
    );
}

pub fn assert_grad(case: &str, ours: &[f32], reference: &[f64]) {
    assert_eq!(ours.len(), reference.len(), "{case}: gradient length");
    let scale = reference.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let tolerance = GRAD_TOLERANCE * scale.max(1e-6);
    for (i, (&ours, &reference)) in ours.iter().zip(reference).enumerate() {
        assert!(
            (ours as f64 - reference).abs() <= tolerance,
            "{case}: grad[{i}] {ours} vs reference {reference} (tolerance {tolerance:.3e})"
        );
    }
}

pub fn grad_of<const D: usize>(input: &Tensor<D>, grads: &burn::tensor::Gradients) -> Vec<f32> {
    input
        .grad(grads)
        .map(to_host)
        .unwrap_or_else(|| vec![0.0; input.shape().num_elements()])
}

/// Central differences of `loss` (in f32) at `point`, against the autodiff gradient.
pub fn check_finite_differences(
    case: &str,
    point: &[f32],
    autodiff: &[f32],
    loss: impl Fn(&[f32]) -> f64,
) {
    // f32 needs a step large enough to beat rounding; the fixtures' moderate inputs keep the
    // curvature small at that step.
    let step = 1e-2f32;
    let scale = autodiff.iter().fold(0.0f64, |m, g| m.max(g.abs() as f64));
    for i in 0..point.len() {
        let mut plus = point.to_vec();
        plus[i] += step;
        let mut minus = point.to_vec();
        minus[i] -= step;
        let numeric = (loss(&plus) - loss(&minus)) / (2.0 * step as f64);
        assert!(
            (numeric - autodiff[i] as f64).abs() <= 5e-3 * scale.max(1e-3),
            "{case}: d loss / d x[{i}] autodiff {} vs finite difference {numeric}",
            autodiff[i]
        );
    }
}
