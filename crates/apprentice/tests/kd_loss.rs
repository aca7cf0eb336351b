//! Hinton's KD loss against independent reference values (tests/fixtures/make_reference.py,
//! numpy, float64) and against finite differences of itself.

use apprentice::backend::{ComputeDevice, class_indices, matrix, scalar, to_host, vector};
use apprentice::distill::loss::{KdWeights, cross_entropy, kd_loss, soft_target_kl};
use burn::tensor::Tensor;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    batch: usize,
    classes: usize,
    temperature: f64,
    alpha: f64,
    student: Vec<f32>,
    teacher: Vec<f32>,
    labels: Vec<u32>,
    labelled: Vec<bool>,
    loss: f64,
    grad: Vec<f64>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/kd_reference.json")).expect("fixture parses")
}

/// Loss value and gradient with respect to the student logits, through burn's autodiff.
fn loss_and_grad(case: &Case, student: &[f32]) -> (f64, Vec<f32>) {
    let device = ComputeDevice::cpu().training();
    let s: Tensor<2> = matrix(student.to_vec(), case.batch, case.classes, &device).require_grad();
    let t = matrix(case.teacher.clone(), case.batch, case.classes, &device);
    let y = class_indices(&case.labels, &device);
    let all_labelled = case.labelled.iter().all(|&l| l);
    let mask = (!all_labelled).then(|| {
        vector(
            case.labelled
                .iter()
                .map(|&l| if l { 1.0 } else { 0.0 })
                .collect(),
            &device,
        )
    });
    let weights = KdWeights {
        temperature: case.temperature,
        alpha: case.alpha,
    };
    let loss = kd_loss(s.clone(), t, y, mask, weights);
    let value = scalar(loss.clone()) as f64;
    let grads = loss.backward();
    let grad = s
        .grad(&grads)
        .map(to_host)
        .unwrap_or_else(|| vec![0.0; student.len()]);
    (value, grad)
}

#[test]
fn kd_loss_matches_the_numpy_reference() {
    for case in fixture().cases {
        let (value, grad) = loss_and_grad(&case, &case.student);
        let tolerance = 1e-5 * case.loss.abs().max(1.0);
        assert!(
            (value - case.loss).abs() <= tolerance,
            "{}: loss {value} vs reference {}",
            case.name,
            case.loss
        );
        let scale = case
            .grad
            .iter()
            .fold(0.0f64, |m, g| m.max(g.abs()))
            .max(1e-3);
        for (i, (&ours, &reference)) in grad.iter().zip(&case.grad).enumerate() {
            assert!(
                (ours as f64 - reference).abs() <= 1e-5 * scale.max(1.0),
                "{}: grad[{i}] {ours} vs reference {reference}",
                case.name
            );
        }
    }
}

#[test]
fn kd_gradient_matches_finite_differences() {
    // Central differences in f32 need a step large enough to beat rounding; the cases with
    // moderate logits keep the curvature small at that step.
    let fixture = fixture();
    let cases = fixture
        .cases
        .iter()
        .filter(|c| c.student.iter().all(|v| v.abs() < 20.0));
    let mut checked = 0;
    for case in cases {
        let (_, grad) = loss_and_grad(case, &case.student);
        let step = 1e-2f32;
        for i in 0..case.student.len() {
            let mut plus = case.student.clone();
            plus[i] += step;
            let mut minus = case.student.clone();
            minus[i] -= step;
            let numeric = (loss_and_grad(case, &plus).0 - loss_and_grad(case, &minus).0)
                / (2.0 * step as f64);
            assert!(
                (numeric - grad[i] as f64).abs() <= 2e-3 * (1.0 + numeric.abs()),
                "{}: d loss / d s[{i}] autodiff {} vs finite difference {numeric}",
                case.name,
                grad[i]
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "too few cases were checked: {checked}");
}

#[test]
fn losses_stay_finite_for_huge_logits_and_single_samples() {
    let device = ComputeDevice::cpu().training();
    for &magnitude in &[1e4f32, -1e4] {
        let s = matrix(vec![magnitude, -magnitude, 0.0], 1, 3, &device);
        let t = matrix(vec![-magnitude, magnitude, 0.5], 1, 3, &device);
        let y = class_indices(&[2], &device);
        for temperature in [1.0, 4.0, 20.0] {
            let loss = kd_loss(
                s.clone(),
                t.clone(),
                y.clone(),
                None,
                KdWeights {
                    temperature,
                    alpha: 0.5,
                },
            );
            assert!(
                scalar(loss).is_finite(),
                "magnitude {magnitude}, T {temperature}"
            );
        }
    }
}

#[test]
fn soft_term_is_zero_when_student_equals_teacher() {
    let device = ComputeDevice::cpu().training();
    let logits = vec![0.3, -1.2, 2.5, 0.0, 4.0, -4.0];
    let s = matrix(logits.clone(), 2, 3, &device);
    let t = matrix(logits, 2, 3, &device);
    for temperature in [1.0, 2.0, 8.0] {
        assert!(scalar(soft_target_kl(s.clone(), t.clone(), temperature)).abs() < 1e-6);
    }
}

#[test]
fn masked_cross_entropy_ignores_unlabelled_samples_and_empty_masks() {
    let device = ComputeDevice::cpu().training();
    let logits = matrix(vec![2.0, 0.0, 0.0, 5.0], 2, 2, &device);
    let labels = class_indices(&[0, 0], &device);
    let only_first = cross_entropy(
        logits.clone(),
        labels.clone(),
        Some(vector(vec![1.0, 0.0], &device)),
    );
    let expected = (1.0f64 + (-2.0f64).exp()).ln();
    assert!((scalar(only_first) as f64 - expected).abs() < 1e-6);
    let none = cross_entropy(logits, labels, Some(vector(vec![0.0, 0.0], &device)));
    assert_eq!(scalar(none), 0.0);
}
