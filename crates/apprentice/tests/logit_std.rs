//! Logit standardisation (Sun et al., CVPR 2024) against independent reference values
//! (tests/fixtures/make_logit_std_reference.py, numpy, float64, analytic gradient checked there
//! by finite differences) and against finite differences of itself; and its place in the
//! experiment file like any other method.

use apprentice::backend::{ComputeDevice, class_indices, matrix, scalar, to_host, vector};
use apprentice::config::{ExperimentConfig, MethodName};
use apprentice::distill::loss::LogitLoss;
use apprentice::distill::methods::logit_std::{LogitStdSettings, standardize};
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
    ce_weight: f64,
    kd_weight: f64,
    student: Vec<f32>,
    teacher: Vec<f32>,
    labels: Vec<u32>,
    labelled: Vec<bool>,
    loss: f64,
    grad: Vec<f64>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/logit_std_reference.json")).expect("fixture parses")
}

/// Loss value and gradient with respect to the student logits, through the method's
/// [`LogitLoss`] as training calls it.
fn loss_and_grad(case: &Case, student: &[f32]) -> (f64, Vec<f32>) {
    let device = ComputeDevice::cpu().training();
    let s: Tensor<2> = matrix(student.to_vec(), case.batch, case.classes, &device).require_grad();
    let t = matrix(case.teacher.clone(), case.batch, case.classes, &device);
    let y = class_indices(&case.labels, &device);
    let mask = (!case.labelled.iter().all(|&l| l)).then(|| {
        vector(
            case.labelled
                .iter()
                .map(|&l| if l { 1.0 } else { 0.0 })
                .collect(),
            &device,
        )
    });
    let settings = LogitStdSettings {
        temperature: case.temperature,
        ce_weight: case.ce_weight,
        kd_weight: case.kd_weight,
    };
    let loss = settings
        .loss(s.clone(), t, y, mask, 1)
        .expect("every case has two classes or more");
    let value = scalar(loss.clone()) as f64;
    let grads = loss.backward();
    let grad = s
        .grad(&grads)
        .map(to_host)
        .unwrap_or_else(|| vec![0.0; student.len()]);
    (value, grad)
}

#[test]
fn loss_and_gradient_match_the_numpy_reference() {
    let fixture = fixture();
    assert!(fixture.cases.len() >= 6);
    for case in &fixture.cases {
        let (value, grad) = loss_and_grad(case, &case.student);
        let tolerance = 2e-5 * case.loss.abs().max(1.0);
        assert!(
            (value - case.loss).abs() <= tolerance,
            "{}: loss {value} vs reference {}",
            case.name,
            case.loss
        );
        let scale = case.grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        for (i, (&ours, &reference)) in grad.iter().zip(&case.grad).enumerate() {
            assert!(
                (ours as f64 - reference).abs() <= 1e-4 * scale.max(1e-2),
                "{}: grad[{i}] {ours} vs reference {reference}",
                case.name
            );
        }
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let fixture = fixture();
    for case in &fixture.cases {
        let (_, grad) = loss_and_grad(case, &case.student);
        // z-scores are invariant to the logits' scale, so the step is relative to it.
        let spread = case.student.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let h = 1e-2 * spread.max(1.0);
        let scale = grad.iter().fold(0.0f32, |m, g| m.max(g.abs())).max(1e-2);
        for i in 0..case.student.len() {
            let mut up = case.student.clone();
            let mut down = case.student.clone();
            up[i] += h;
            down[i] -= h;
            let numeric =
                (loss_and_grad(case, &up).0 - loss_and_grad(case, &down).0) / (2.0 * h as f64);
            assert!(
                (numeric - grad[i] as f64).abs() <= 2e-2 * scale as f64,
                "{}: d/ds[{i}] autodiff {} vs finite difference {numeric}",
                case.name,
                grad[i]
            );
        }
    }
}

#[test]
fn standardised_rows_have_zero_mean_and_unit_unbiased_deviation() {
    let device = ComputeDevice::cpu().inference();
    let logits = matrix(
        vec![1.0, 2.0, 3.0, 4.0, -10.0, 0.0, 10.0, 20.0],
        2,
        4,
        &device,
    );
    let z = to_host(standardize(logits).unwrap());
    for row in z.chunks(4) {
        let mean: f32 = row.iter().sum::<f32>() / 4.0;
        let variance: f32 = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 3.0;
        assert!(mean.abs() < 1e-6, "{row:?}");
        assert!((variance - 1.0).abs() < 1e-5, "{row:?}");
    }
    let one_class = matrix(vec![1.0, 2.0], 2, 1, &device);
    let error = standardize(one_class).unwrap_err().to_string();
    assert!(error.contains("at least 2 classes"), "{error}");
}

#[test]
fn the_method_is_selected_and_configured_like_any_other() {
    let base = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/quickstart.toml"
    ))
    .unwrap();
    let text = base.replace("[distill]", "[distill]\nmethods = [\"kd\", \"logit-std\"]")
        + "\n[distill.logit_std]\ntemperature = 3.0\nkd_weight = 4.0\n";
    let config = ExperimentConfig::from_toml(&text, "ls.toml").expect("valid");
    assert_eq!(
        config.distill.method_list(),
        vec![MethodName::Kd, MethodName::LogitStd]
    );
    assert_eq!(config.distill.logit_std.temperature, 3.0);
    assert_eq!(config.distill.logit_std.kd_weight, 4.0);
    assert_eq!(config.distill.logit_std.ce_weight, 0.1);
    let built = config.distill.build_all(4.0);
    assert_eq!(built[1].info().name, "logit-std");

    let bad = text.replace("kd_weight = 4.0", "kd_weight = -1.0");
    let error = ExperimentConfig::from_toml(&bad, "ls.toml")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("ls.toml: distill.logit_std: logit-std:") && error.contains("kd_weight"),
        "{error}"
    );
    let unknown = text.replace("kd_weight = 4.0", "kd_wieght = 4.0");
    let error = ExperimentConfig::from_toml(&unknown, "ls.toml")
        .unwrap_err()
        .to_string();
    assert!(error.contains("kd_wieght"), "{error}");
}
