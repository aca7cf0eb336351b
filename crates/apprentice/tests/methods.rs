//! The distillation methods against independent reference values
//! (tests/fixtures/make_methods_reference.py, numpy, float64), against finite differences of
//! themselves, and for the properties their papers rely on: DKD's decomposition of Hinton's
//! loss, a minimum when the student matches the teacher, finite values for huge logits, and
//! clear errors for batches too small to compare samples.

use apprentice::backend::{ComputeDevice, class_indices, matrix, scalar, to_host};
use apprentice::distill::loss::soft_target_kl;
use apprentice::distill::methods::{
    AttentionSettings, DistSettings, DkdSettings, FitNetRegressor, FitNetSettings, MethodError,
    PktSettings, RkdSettings, SpSettings, at_loss, dist_loss, dist_parts, dkd_loss, dkd_parts,
    dkd_warmup_factor, fitnet_loss, flatten_feature, pkt_loss, rkd_loss, rkd_parts, sp_loss,
};
use apprentice::models::FeatureTensor;
use burn::tensor::{Device, Tensor, TensorData, activation};
use serde::Deserialize;

// ------------------------------------------------------------------------------------ fixture

#[derive(Deserialize)]
struct Fixture {
    dkd: Vec<DkdCase>,
    dist: Vec<DistCase>,
    fitnet: Vec<FitNetCase>,
    attention: Vec<AttentionCase>,
    rkd: Vec<RkdCase>,
    pkt: Vec<PktCase>,
    sp: Vec<SpCase>,
}

#[derive(Deserialize)]
struct DkdCase {
    name: String,
    batch: usize,
    classes: usize,
    temperature: f64,
    alpha: f64,
    beta: f64,
    student: Vec<f32>,
    teacher: Vec<f32>,
    labels: Vec<u32>,
    tckd: Vec<f64>,
    nckd: Vec<f64>,
    teacher_target_probability: Vec<f64>,
    loss: f64,
    grad: Vec<f64>,
}

#[derive(Deserialize)]
struct DistCase {
    name: String,
    batch: usize,
    classes: usize,
    temperature: f64,
    beta: f64,
    gamma: f64,
    student: Vec<f32>,
    teacher: Vec<f32>,
    inter: f64,
    intra: f64,
    loss: f64,
    grad: Vec<f64>,
}

#[derive(Deserialize)]
struct FitNetCase {
    name: String,
    student_shape: Vec<usize>,
    teacher_shape: Vec<usize>,
    weight: f64,
    student: Vec<f32>,
    teacher: Vec<f32>,
    regressor_weight: Vec<f32>,
    regressor_bias: Vec<f32>,
    loss: f64,
    grad: Vec<f64>,
}

#[derive(Deserialize)]
struct AttentionCase {
    name: String,
    p: f64,
    weight: f64,
    stages: Vec<Stage>,
    loss: f64,
}

/// One (student, teacher) pair of an attention or SP case, with the gradient with respect to
/// its student input.
#[derive(Deserialize)]
struct Stage {
    student_shape: Vec<usize>,
    teacher_shape: Vec<usize>,
    student: Vec<f32>,
    teacher: Vec<f32>,
    grad: Vec<f64>,
}

#[derive(Deserialize)]
struct RkdCase {
    name: String,
    batch: usize,
    student_dim: usize,
    teacher_dim: usize,
    distance_weight: f64,
    angle_weight: f64,
    student: Vec<f32>,
    teacher: Vec<f32>,
    distance: f64,
    angle: f64,
    loss: f64,
    grad: Vec<f64>,
}

#[derive(Deserialize)]
struct PktCase {
    name: String,
    batch: usize,
    student_dim: usize,
    teacher_dim: usize,
    weight: f64,
    student: Vec<f32>,
    teacher: Vec<f32>,
    loss: f64,
    grad: Vec<f64>,
}

#[derive(Deserialize)]
struct SpCase {
    name: String,
    weight: f64,
    pairs: Vec<Stage>,
    loss: f64,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/methods_reference.json")).expect("fixture parses")
}

// ------------------------------------------------------------------------------------ helpers

/// Relative tolerance of loss values against the float64 reference.
const LOSS_TOLERANCE: f64 = 1e-5;
/// Tolerance of every gradient entry, relative to the case's largest reference entry: f32
/// rounding spreads over a whole gradient, so small entries are held to the scale of the large
/// ones rather than to their own. Most cases agree to 1e-6; PKT's row normalisation subtracts
/// terms of similar size and costs a few more digits (7e-6 on its 16-sample case).
const GRAD_TOLERANCE: f64 = 3e-5;

fn training() -> Device {
    ComputeDevice::cpu().training()
}

fn tensor4(values: &[f32], shape: &[usize], device: &Device) -> Tensor<4> {
    let shape: [usize; 4] = shape.try_into().expect("a map shape has four axes");
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

/// A flat `[batch, rest]` matrix from any shape: maps are flattened per sample.
fn flat_matrix(values: &[f32], shape: &[usize], device: &Device) -> Tensor<2> {
    let batch = shape[0];
    matrix(values.to_vec(), batch, values.len() / batch, device)
}

fn feature(values: &[f32], shape: &[usize], device: &Device) -> FeatureTensor {
    match shape.len() {
        2 => FeatureTensor::Flat(matrix(values.to_vec(), shape[0], shape[1], device)),
        4 => FeatureTensor::Map(tensor4(values, shape, device)),
        n => panic!("features have 2 or 4 axes, not {n}"),
    }
}

fn assert_loss(case: &str, ours: f64, reference: f64) {
    let tolerance = LOSS_TOLERANCE * reference.abs().max(1e-3);
    assert!(
        (ours - reference).abs() <= tolerance,
        "{case}: loss {ours} vs reference {reference} (off by {:.3e} relative)",
        (ours - reference).abs() / reference.abs().max(1e-300)
    );
}

fn assert_grad(case: &str, ours: &[f32], reference: &[f64]) {
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

fn grad_of<const D: usize>(input: &Tensor<D>, grads: &burn::tensor::Gradients) -> Vec<f32> {
    input
        .grad(grads)
        .map(to_host)
        .unwrap_or_else(|| vec![0.0; input.shape().num_elements()])
}

/// Central differences of `loss` (in f32) at `point`, against the autodiff gradient.
fn check_finite_differences(
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

// ------------------------------------------------------------------------------------ DKD

fn dkd_settings(case: &DkdCase) -> DkdSettings {
    DkdSettings {
        alpha: case.alpha,
        beta: case.beta,
        temperature: case.temperature,
        ..DkdSettings::default()
    }
}

fn dkd_value_and_grad(case: &DkdCase, student: &[f32]) -> (f64, Vec<f32>) {
    let device = training();
    let s = matrix(student.to_vec(), case.batch, case.classes, &device).require_grad();
    let t = matrix(case.teacher.clone(), case.batch, case.classes, &device);
    let y = class_indices(&case.labels, &device);
    let loss = dkd_loss(s.clone(), t, y, &dkd_settings(case)).expect("dkd loss");
    let value = scalar(loss.clone()) as f64;
    (value, grad_of(&s, &loss.backward()))
}

#[test]
fn dkd_matches_the_numpy_reference() {
    let device = training();
    for case in fixture().dkd {
        let (value, grad) = dkd_value_and_grad(&case, &case.student);
        assert_loss(&case.name, value, case.loss);
        assert_grad(&case.name, &grad, &case.grad);
        let parts = dkd_parts(
            matrix(case.student.clone(), case.batch, case.classes, &device),
            matrix(case.teacher.clone(), case.batch, case.classes, &device),
            class_indices(&case.labels, &device),
            case.temperature,
        )
        .expect("dkd parts");
        for (ours, reference) in [(parts.tckd, &case.tckd), (parts.nckd, &case.nckd)] {
            for (i, (&o, &r)) in to_host(ours).iter().zip(reference).enumerate() {
                // Per-sample terms can be tiny next to the batch loss; hold them to its scale.
                assert!(
                    (o as f64 - r).abs() <= LOSS_TOLERANCE * r.abs().max(case.loss.abs()),
                    "{}: sample {i}: {o} vs reference {r}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn dkd_gradient_matches_finite_differences() {
    let fixture = fixture();
    let cases: Vec<&DkdCase> = fixture
        .dkd
        .iter()
        .filter(|c| c.classes <= 10 && c.student.iter().all(|v| v.abs() < 20.0))
        .take(4)
        .collect();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let (_, grad) = dkd_value_and_grad(case, &case.student);
        check_finite_differences(&case.name, &case.student, &grad, |s| {
            dkd_value_and_grad(case, s).0
        });
    }
}

/// T²·KL(p_t ‖ p_s) = TCKD + (1 − p_target^teacher)·NCKD for every sample, with Hinton's term
/// computed by the crate's own KD loss on each row.
#[test]
fn dkd_decomposes_hintons_loss() {
    let device = ComputeDevice::cpu().inference();
    for case in fixture().dkd {
        let student = matrix(case.student.clone(), case.batch, case.classes, &device);
        let teacher = matrix(case.teacher.clone(), case.batch, case.classes, &device);
        let parts = dkd_parts(
            student.clone(),
            teacher.clone(),
            class_indices(&case.labels, &device),
            case.temperature,
        )
        .expect("dkd parts");
        let (tckd, nckd) = (to_host(parts.tckd), to_host(parts.nckd));
        let teacher_probs = to_host(activation::softmax(teacher.clone() / case.temperature, 1));
        for i in 0..case.batch {
            let row = |m: &Tensor<2>| m.clone().slice([i..i + 1, 0..case.classes]);
            let kd = scalar(soft_target_kl(
                row(&student),
                row(&teacher),
                case.temperature,
            )) as f64;
            let p_target = teacher_probs[i * case.classes + case.labels[i] as usize] as f64;
            assert!(
                (p_target - case.teacher_target_probability[i]).abs() < 1e-6,
                "{}: sample {i}: teacher target probability",
                case.name
            );
            let decomposed = tckd[i] as f64 + (1.0 - p_target) * nckd[i] as f64;
            assert!(
                (kd - decomposed).abs() <= 1e-5 * kd.abs().max(1.0),
                "{}: sample {i}: KD {kd} but TCKD + (1 − p_t)·NCKD = {decomposed}",
                case.name
            );
        }
    }
}

#[test]
fn dkd_is_zero_when_the_student_matches_the_teacher_up_to_a_shift() {
    let device = training();
    let teacher = vec![
        0.3, -1.2, 2.5, 0.0, 4.0, -4.0, 1.0, 1.0, 7.5, -2.0, 0.1, 0.2,
    ];
    // Softmax ignores a constant added to a row, and so must DKD.
    let shifted: Vec<f32> = teacher
        .iter()
        .enumerate()
        .map(|(i, v)| v + [5.0, -3.0, 100.0][i / 4])
        .collect();
    let labels = class_indices(&[2, 0, 3], &device);
    for student in [teacher.clone(), shifted] {
        for temperature in [1.0, 4.0, 10.0] {
            let settings = DkdSettings {
                temperature,
                ..DkdSettings::default()
            };
            let loss = dkd_loss(
                matrix(student.clone(), 3, 4, &device),
                matrix(teacher.clone(), 3, 4, &device),
                labels.clone(),
                &settings,
            )
            .expect("dkd loss");
            // The shifted copy rounds differently in z/T; the KL of rounding-level differences
            // grows with T².
            let value = scalar(loss);
            assert!(
                (value.abs() as f64) < 5e-6 * temperature * temperature,
                "T {temperature}: {value}"
            );
        }
    }
}

#[test]
fn dkd_warmup_ramps_linearly_from_the_first_epoch() {
    assert_eq!(dkd_warmup_factor(1, 20), 0.05);
    assert_eq!(dkd_warmup_factor(10, 20), 0.5);
    assert_eq!(dkd_warmup_factor(20, 20), 1.0);
    assert_eq!(dkd_warmup_factor(240, 20), 1.0);
    assert_eq!(dkd_warmup_factor(1, 0), 1.0);
    assert_eq!(DkdSettings::default().warmup_factor(5), 0.25);
}

// ------------------------------------------------------------------------------------ DIST

fn dist_value_and_grad(case: &DistCase, student: &[f32]) -> (f64, Vec<f32>) {
    let device = training();
    let s = matrix(student.to_vec(), case.batch, case.classes, &device).require_grad();
    let t = matrix(case.teacher.clone(), case.batch, case.classes, &device);
    let settings = DistSettings {
        beta: case.beta,
        gamma: case.gamma,
        temperature: case.temperature,
    };
    let loss = dist_loss(s.clone(), t, &settings).expect("dist loss");
    let value = scalar(loss.clone()) as f64;
    (value, grad_of(&s, &loss.backward()))
}

#[test]
fn dist_matches_the_numpy_reference() {
    let device = training();
    for case in fixture().dist {
        let (value, grad) = dist_value_and_grad(&case, &case.student);
        assert_loss(&case.name, value, case.loss);
        assert_grad(&case.name, &grad, &case.grad);
        let parts = dist_parts(
            matrix(case.student.clone(), case.batch, case.classes, &device),
            matrix(case.teacher.clone(), case.batch, case.classes, &device),
            case.temperature,
        )
        .expect("dist parts");
        assert_loss(
            &format!("{} inter", case.name),
            scalar(parts.inter) as f64,
            case.inter,
        );
        assert_loss(
            &format!("{} intra", case.name),
            scalar(parts.intra) as f64,
            case.intra,
        );
    }
}

#[test]
fn dist_gradient_matches_finite_differences() {
    let fixture = fixture();
    let cases: Vec<&DistCase> = fixture
        .dist
        .iter()
        .filter(|c| c.classes <= 10 && c.student.iter().all(|v| v.abs() < 20.0))
        .take(4)
        .collect();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let (_, grad) = dist_value_and_grad(case, &case.student);
        check_finite_differences(&case.name, &case.student, &grad, |s| {
            dist_value_and_grad(case, s).0
        });
    }
}

/// 1 − Pearson(p, p) = ε/(|p − p̄|² + ε), so equal predictions give almost zero as long as every
/// row and column varies.
#[test]
fn dist_is_almost_zero_when_the_student_matches_the_teacher() {
    let device = training();
    let logits = vec![
        0.3, -1.2, 2.5, 0.0, 4.0, -4.0, 1.0, 1.5, 7.5, -2.0, 0.1, 0.2,
    ];
    for temperature in [1.0, 4.0] {
        let settings = DistSettings {
            temperature,
            ..DistSettings::default()
        };
        let loss = dist_loss(
            matrix(logits.clone(), 3, 4, &device),
            matrix(logits.clone(), 3, 4, &device),
            &settings,
        )
        .expect("dist loss");
        assert!(scalar(loss).abs() < 1e-3, "T {temperature}");
    }
}

/// A class whose probability is the same for every sample has no correlation to match: its
/// intra-class term is 1 − 0 = 1 even for a perfect student. This is DIST's definition (a
/// constant column has Pearson correlation 0 by the ε convention), not a defect.
#[test]
fn dist_intra_term_is_one_for_constant_columns() {
    let device = training();
    let same_rows = vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0];
    let parts = dist_parts(
        matrix(same_rows.clone(), 2, 3, &device),
        matrix(same_rows, 2, 3, &device),
        1.0,
    )
    .expect("dist parts");
    assert!(scalar(parts.inter).abs() < 1e-3);
    assert!((scalar(parts.intra) - 1.0).abs() < 1e-6);
}

// ------------------------------------------------------------------------------------ huge logits

#[test]
fn dkd_and_dist_stay_finite_for_huge_logits() {
    let device = training();
    for &magnitude in &[1e4f32, -1e4] {
        let student = vec![
            magnitude, -magnitude, 0.0, 0.5, //
            -magnitude, magnitude, 0.5, 0.0, //
            0.0, 0.0, magnitude, -magnitude,
        ];
        let teacher = vec![
            -magnitude, magnitude, 0.5, 0.0, //
            magnitude, 0.0, -magnitude, 0.5, //
            0.0, magnitude, 0.0, -magnitude,
        ];
        // Labels where the student is confidently wrong, the teacher confidently right, and
        // both certain of a class far from the label.
        let labels = [1u32, 0, 3];
        for temperature in [1.0, 4.0, 20.0] {
            let s = matrix(student.clone(), 3, 4, &device).require_grad();
            let t = matrix(teacher.clone(), 3, 4, &device);
            let dkd = dkd_loss(
                s.clone(),
                t.clone(),
                class_indices(&labels, &device),
                &DkdSettings {
                    temperature,
                    ..DkdSettings::default()
                },
            )
            .expect("dkd loss");
            let dist = dist_loss(
                s.clone(),
                t,
                &DistSettings {
                    temperature,
                    ..DistSettings::default()
                },
            )
            .expect("dist loss");
            for (name, loss) in [("dkd", dkd), ("dist", dist)] {
                let value = scalar(loss.clone());
                let grad = grad_of(&s, &loss.backward());
                assert!(
                    value.is_finite() && grad.iter().all(|g| g.is_finite()),
                    "{name}: magnitude {magnitude}, T {temperature}: loss {value}, grad {grad:?}"
                );
            }
        }
    }
}

// ------------------------------------------------------------------------------------ FitNets

fn fitnet_value_and_grad(case: &FitNetCase, student: &[f32]) -> (f64, Vec<f32>) {
    let device = training();
    let (s_width, t_width) = (case.student_shape[1], case.teacher_shape[1]);
    let regressor = FitNetRegressor::from_parameters(
        matrix(case.regressor_weight.clone(), s_width, t_width, &device).require_grad(),
        Tensor::from_data(
            TensorData::new(case.regressor_bias.clone(), [t_width]),
            &device,
        )
        .require_grad(),
    );
    let (input, student_feature) = match case.student_shape.len() {
        2 => {
            let x =
                matrix(student.to_vec(), case.student_shape[0], s_width, &device).require_grad();
            (Err(x.clone()), FeatureTensor::Flat(x))
        }
        _ => {
            let x = tensor4(student, &case.student_shape, &device).require_grad();
            (Ok(x.clone()), FeatureTensor::Map(x))
        }
    };
    let teacher = feature(&case.teacher, &case.teacher_shape, &device);
    let settings = FitNetSettings {
        weight: case.weight,
    };
    let loss = fitnet_loss(&regressor, student_feature, teacher, &settings).expect("fitnet loss");
    let value = scalar(loss.clone()) as f64;
    let grads = loss.backward();
    assert!(
        regressor.layer.weight.val().grad(&grads).is_some(),
        "{}: the regressor learns",
        case.name
    );
    let grad = match input {
        Ok(map) => grad_of(&map, &grads),
        Err(flat) => grad_of(&flat, &grads),
    };
    (value, grad)
}

#[test]
fn fitnet_matches_the_numpy_reference_and_finite_differences() {
    for (index, case) in fixture().fitnet.iter().enumerate() {
        let (value, grad) = fitnet_value_and_grad(case, &case.student);
        assert_loss(&case.name, value, case.loss);
        assert_grad(&case.name, &grad, &case.grad);
        if index < 3 {
            check_finite_differences(&case.name, &case.student, &grad, |s| {
                fitnet_value_and_grad(case, s).0
            });
        }
    }
}

#[test]
fn fitnet_is_zero_for_an_identity_regressor_and_equal_features() {
    let device = training();
    let width = 3;
    let identity = FitNetRegressor::from_parameters(
        Tensor::eye(width, &device),
        Tensor::zeros([width], &device),
    );
    let values: Vec<f32> = (0..2 * width * 4)
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    let map = |v: &[f32]| FeatureTensor::Map(tensor4(v, &[2, width, 2, 2], &device));
    let loss = fitnet_loss(
        &identity,
        map(&values),
        map(&values),
        &FitNetSettings::default(),
    )
    .expect("fitnet loss");
    assert!(scalar(loss).abs() < 1e-10);
}

#[test]
fn fitnet_regressors_are_drawn_from_their_seed() {
    let device = training();
    let weights = |seed| to_host(FitNetRegressor::new(6, 4, seed, &device).layer.weight.val());
    assert_eq!(weights(3), weights(3));
    assert_ne!(weights(3), weights(4));
    let bound = 1.0 / 6f32.sqrt();
    assert!(weights(3).iter().all(|w| w.abs() <= bound));
}

#[test]
fn fitnet_rejects_features_a_regressor_cannot_relate() {
    let device = training();
    let flat = FeatureTensor::Flat(Tensor::zeros([2, 4], &device));
    let map = FeatureTensor::Map(Tensor::zeros([2, 4, 3, 3], &device));
    let smaller_map = FeatureTensor::Map(Tensor::zeros([2, 4, 2, 2], &device));
    for (student, teacher) in [(&flat, &map), (&map, &smaller_map)] {
        let error = FitNetRegressor::for_features(student, teacher, 7, &device)
            .expect_err("no regressor relates these");
        assert!(matches!(error, MethodError::Shape { .. }), "{error}");
    }
    let regressor = FitNetRegressor::for_features(&map, &map, 7, &device).expect("same kind");
    assert_eq!((regressor.input_width(), regressor.output_width()), (4, 4));
    let error = fitnet_loss(
        &regressor,
        FeatureTensor::Map(Tensor::zeros([2, 5, 3, 3], &device)),
        map.clone(),
        &FitNetSettings::default(),
    )
    .expect_err("wrong student width");
    assert!(error.to_string().contains("5"), "{error}");
}

// ------------------------------------------------------------------------------------ attention

fn attention_value_and_grads(
    case: &AttentionCase,
    override_stage: Option<(usize, &[f32])>,
) -> (f64, Vec<Vec<f32>>) {
    let device = training();
    let mut inputs = Vec::new();
    let mut stages = Vec::new();
    for (index, stage) in case.stages.iter().enumerate() {
        let values = match override_stage {
            Some((k, values)) if k == index => values,
            _ => &stage.student[..],
        };
        let s = tensor4(values, &stage.student_shape, &device).require_grad();
        let t = tensor4(&stage.teacher, &stage.teacher_shape, &device);
        inputs.push(s.clone());
        stages.push((s, t));
    }
    let settings = AttentionSettings {
        weight: case.weight,
        p: case.p,
    };
    let loss = at_loss(&stages, &settings).expect("attention loss");
    let value = scalar(loss.clone()) as f64;
    let grads = loss.backward();
    (value, inputs.iter().map(|s| grad_of(s, &grads)).collect())
}

#[test]
fn attention_transfer_matches_the_numpy_reference_and_finite_differences() {
    for (index, case) in fixture().attention.iter().enumerate() {
        let (value, grads) = attention_value_and_grads(case, None);
        assert_loss(&case.name, value, case.loss);
        for (k, (stage, grad)) in case.stages.iter().zip(&grads).enumerate() {
            assert_grad(&format!("{} stage {k}", case.name), grad, &stage.grad);
        }
        if index < 2 {
            let stage = &case.stages[0];
            check_finite_differences(&case.name, &stage.student, &grads[0], |s| {
                attention_value_and_grads(case, Some((0, s))).0
            });
        }
    }
}

#[test]
fn attention_transfer_rejects_maps_of_different_resolution() {
    let device = training();
    let stages = [(
        Tensor::<4>::ones([2, 3, 4, 4], &device),
        Tensor::<4>::ones([2, 5, 2, 2], &device),
    )];
    let error = at_loss(&stages, &AttentionSettings::default()).expect_err("4×4 vs 2×2");
    assert!(
        matches!(error, MethodError::Shape { .. }) && error.to_string().contains("4×4"),
        "{error}"
    );
    let error = at_loss(&[], &AttentionSettings::default()).expect_err("no stages");
    assert!(matches!(error, MethodError::Shape { .. }), "{error}");
}

// ------------------------------------------------------------------------------------ RKD

fn rkd_value_and_grad(case: &RkdCase, student: &[f32]) -> (f64, Vec<f32>) {
    let device = training();
    let s = matrix(student.to_vec(), case.batch, case.student_dim, &device).require_grad();
    let t = matrix(case.teacher.clone(), case.batch, case.teacher_dim, &device);
    let settings = RkdSettings {
        distance_weight: case.distance_weight,
        angle_weight: case.angle_weight,
    };
    let loss = rkd_loss(s.clone(), t, &settings).expect("rkd loss");
    let value = scalar(loss.clone()) as f64;
    (value, grad_of(&s, &loss.backward()))
}

#[test]
fn rkd_matches_the_numpy_reference_and_finite_differences() {
    let device = training();
    for (index, case) in fixture().rkd.iter().enumerate() {
        let (value, grad) = rkd_value_and_grad(case, &case.student);
        if case.loss == 0.0 {
            // Two samples: both terms vanish identically.
            assert!(value.abs() < 1e-6, "{}: {value}", case.name);
            assert!(
                grad.iter().all(|g| g.abs() < 1e-5),
                "{}: {grad:?}",
                case.name
            );
            continue;
        }
        assert_loss(&case.name, value, case.loss);
        assert_grad(&case.name, &grad, &case.grad);
        let parts = rkd_parts(
            matrix(case.student.clone(), case.batch, case.student_dim, &device),
            matrix(case.teacher.clone(), case.batch, case.teacher_dim, &device),
        )
        .expect("rkd parts");
        assert_loss(
            &format!("{} distance", case.name),
            scalar(parts.distance) as f64,
            case.distance,
        );
        assert_loss(
            &format!("{} angle", case.name),
            scalar(parts.angle) as f64,
            case.angle,
        );
        if index < 2 {
            check_finite_differences(&case.name, &case.student, &grad, |s| {
                rkd_value_and_grad(case, s).0
            });
        }
    }
}

// ------------------------------------------------------------------------------------ PKT

fn pkt_value_and_grad(case: &PktCase, student: &[f32]) -> (f64, Vec<f32>) {
    let device = training();
    let s = matrix(student.to_vec(), case.batch, case.student_dim, &device).require_grad();
    let t = matrix(case.teacher.clone(), case.batch, case.teacher_dim, &device);
    let loss = pkt_loss(
        s.clone(),
        t,
        &PktSettings {
            weight: case.weight,
        },
    )
    .expect("pkt loss");
    let value = scalar(loss.clone()) as f64;
    (value, grad_of(&s, &loss.backward()))
}

#[test]
fn pkt_matches_the_numpy_reference_and_finite_differences() {
    for (index, case) in fixture().pkt.iter().enumerate() {
        let (value, grad) = pkt_value_and_grad(case, &case.student);
        assert_loss(&case.name, value, case.loss);
        assert_grad(&case.name, &grad, &case.grad);
        if index < 2 {
            check_finite_differences(&case.name, &case.student, &grad, |s| {
                pkt_value_and_grad(case, s).0
            });
        }
    }
}

// ------------------------------------------------------------------------------------ SP

fn sp_value_and_grads(
    case: &SpCase,
    override_pair: Option<(usize, &[f32])>,
) -> (f64, Vec<Vec<f32>>) {
    let device = training();
    let mut inputs = Vec::new();
    let mut pairs = Vec::new();
    for (index, pair) in case.pairs.iter().enumerate() {
        let values = match override_pair {
            Some((k, values)) if k == index => values,
            _ => &pair.student[..],
        };
        // Maps go through flatten_feature, as a caller holding network features would do.
        let student = if pair.student_shape.len() == 4 {
            let map = tensor4(values, &pair.student_shape, &device).require_grad();
            inputs.push(Ok(map.clone()));
            flatten_feature(FeatureTensor::Map(map))
        } else {
            let flat = flat_matrix(values, &pair.student_shape, &device).require_grad();
            inputs.push(Err(flat.clone()));
            flat
        };
        let teacher = flatten_feature(feature(&pair.teacher, &pair.teacher_shape, &device));
        pairs.push((student, teacher));
    }
    let loss = sp_loss(
        &pairs,
        &SpSettings {
            weight: case.weight,
        },
    )
    .expect("sp loss");
    let value = scalar(loss.clone()) as f64;
    let grads = loss.backward();
    let per_pair = inputs
        .iter()
        .map(|input| match input {
            Ok(map) => grad_of(map, &grads),
            Err(flat) => grad_of(flat, &grads),
        })
        .collect();
    (value, per_pair)
}

#[test]
fn sp_matches_the_numpy_reference_and_finite_differences() {
    for (index, case) in fixture().sp.iter().enumerate() {
        let (value, grads) = sp_value_and_grads(case, None);
        assert_loss(&case.name, value, case.loss);
        for (k, (pair, grad)) in case.pairs.iter().zip(&grads).enumerate() {
            assert_grad(&format!("{} pair {k}", case.name), grad, &pair.grad);
        }
        if index < 2 {
            let pair = &case.pairs[0];
            check_finite_differences(&case.name, &pair.student, &grads[0], |s| {
                sp_value_and_grads(case, Some((0, s))).0
            });
        }
    }
}

// ------------------------------------------------------------------------------------ shared properties

/// The relation-based losses compare the student's geometry with the teacher's, which a
/// uniform rescaling of the student does not change: a student equal to the teacher, or to
/// three times the teacher, has (numerically) zero loss.
#[test]
fn relation_losses_are_zero_for_a_rescaled_copy_of_the_teacher() {
    let device = training();
    let values: Vec<f32> = (0..5 * 6)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0)
        .collect();
    let maps: Vec<f32> = (0..3 * 2 * 3 * 3)
        .map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0)
        .collect();
    for factor in [1.0f32, 3.0] {
        let scaled: Vec<f32> = values.iter().map(|v| v * factor).collect();
        let scaled_maps: Vec<f32> = maps.iter().map(|v| v * factor).collect();
        let teacher = matrix(values.clone(), 5, 6, &device);
        let student = matrix(scaled, 5, 6, &device);
        let losses = [
            (
                "rkd",
                rkd_loss(student.clone(), teacher.clone(), &RkdSettings::default()),
            ),
            (
                "pkt",
                pkt_loss(student.clone(), teacher.clone(), &PktSettings::default()),
            ),
            ("sp", sp_loss(&[(student, teacher)], &SpSettings::default())),
            (
                "at",
                at_loss(
                    &[(
                        tensor4(&scaled_maps, &[3, 2, 3, 3], &device),
                        tensor4(&maps, &[3, 2, 3, 3], &device),
                    )],
                    &AttentionSettings::default(),
                ),
            ),
        ];
        for (name, loss) in losses {
            let value = scalar(loss.expect(name));
            assert!(
                value.abs() < 1e-4,
                "{name}, student = {factor}·teacher: {value}"
            );
        }
    }
}

#[test]
fn methods_that_compare_samples_reject_a_batch_of_one() {
    let device = training();
    let one = || matrix(vec![0.5, -1.0, 2.0], 1, 3, &device);
    let results = [
        (
            "dist",
            dist_loss(one(), one(), &DistSettings::default()).map(|_| ()),
        ),
        (
            "rkd",
            rkd_loss(one(), one(), &RkdSettings::default()).map(|_| ()),
        ),
        (
            "pkt",
            pkt_loss(one(), one(), &PktSettings::default()).map(|_| ()),
        ),
        (
            "sp",
            sp_loss(&[(one(), one())], &SpSettings::default()).map(|_| ()),
        ),
    ];
    for (name, result) in results {
        match result {
            Err(MethodError::BatchTooSmall {
                method,
                needed: 2,
                got: 1,
                ..
            }) => assert_eq!(method, name),
            other => panic!("{name}: expected BatchTooSmall, got {other:?}"),
        }
    }
    // The per-sample methods are defined for a single sample.
    let dkd = dkd_loss(
        one(),
        one(),
        class_indices(&[1], &device),
        &DkdSettings::default(),
    );
    assert!(dkd.is_ok());
}

#[test]
fn mismatched_batches_and_bad_settings_are_errors() {
    let device = training();
    let two = matrix(vec![0.0; 6], 2, 3, &device);
    let three = matrix(vec![0.0; 9], 3, 3, &device);
    assert!(matches!(
        rkd_loss(two.clone(), three.clone(), &RkdSettings::default()),
        Err(MethodError::Shape { .. })
    ));
    assert!(matches!(
        dkd_loss(
            two.clone(),
            two.clone(),
            class_indices(&[0, 1, 2], &device),
            &DkdSettings::default()
        ),
        Err(MethodError::Shape { .. })
    ));
    let cold = DkdSettings {
        temperature: 0.0,
        ..DkdSettings::default()
    };
    let error = dkd_loss(
        two.clone(),
        two.clone(),
        class_indices(&[0, 1], &device),
        &cold,
    )
    .expect_err("T = 0");
    assert!(error.to_string().contains("temperature"), "{error}");
    let negative = DistSettings {
        gamma: -1.0,
        ..DistSettings::default()
    };
    assert!(matches!(
        dist_loss(two.clone(), two, &negative),
        Err(MethodError::Setting { .. })
    ));
    let fractional = AttentionSettings {
        p: 0.5,
        ..AttentionSettings::default()
    };
    assert!(fractional.validate().is_err());
}

// ------------------------------------------------------------------------------------ settings

/// The hyper-parameter tables that a listing prints are the settings' real defaults, and they
/// list every field.
#[test]
fn hyper_parameter_tables_match_the_defaults() {
    let defaults = [
        serde_json::to_value(DkdSettings::default()),
        serde_json::to_value(DistSettings::default()),
        serde_json::to_value(FitNetSettings::default()),
        serde_json::to_value(AttentionSettings::default()),
        serde_json::to_value(RkdSettings::default()),
        serde_json::to_value(PktSettings::default()),
        serde_json::to_value(SpSettings::default()),
    ];
    let mut names = std::collections::HashSet::new();
    let infos = [
        &DkdSettings::INFO,
        &DistSettings::INFO,
        &FitNetSettings::INFO,
        &AttentionSettings::INFO,
        &RkdSettings::INFO,
        &PktSettings::INFO,
        &SpSettings::INFO,
    ];
    for (info, value) in infos.into_iter().zip(defaults) {
        assert!(names.insert(info.name), "{} is listed twice", info.name);
        let value = value.expect("settings serialise");
        let fields = value.as_object().expect("settings are a table");
        assert_eq!(
            fields.len(),
            info.hyper_parameters.len(),
            "{}: every field is listed",
            info.name
        );
        for parameter in info.hyper_parameters {
            let default = fields
                .get(parameter.key)
                .and_then(|v| v.as_f64())
                .unwrap_or_else(|| panic!("{}: no field {}", info.name, parameter.key));
            assert_eq!(
                default, parameter.default,
                "{}.{}",
                info.name, parameter.key
            );
        }
    }
    assert_eq!(DkdSettings::describe().name, "dkd");
    assert_eq!(SpSettings::describe().hyper_parameters[0].default, 3000.0);
}

#[test]
fn settings_fill_defaults_and_reject_unknown_keys() {
    let dkd: DkdSettings = toml::from_str("beta = 2.0\nwarmup_epochs = 5").expect("valid");
    assert_eq!(
        dkd,
        DkdSettings {
            beta: 2.0,
            warmup_epochs: 5,
            ..DkdSettings::default()
        }
    );
    let rkd: RkdSettings = toml::from_str("").expect("empty is all defaults");
    assert_eq!(rkd, RkdSettings::default());
    let error = toml::from_str::<DistSettings>("tau = 4.0").expect_err("unknown key");
    assert!(error.to_string().contains("tau"), "{error}");
    let error = toml::from_str::<SpSettings>("weight = \"high\"").expect_err("wrong type");
    assert!(error.to_string().contains("weight"), "{error}");
}
