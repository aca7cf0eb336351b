//! The embedding-regression (cosine) loss of the text students and deep mutual learning's
//! cohort loss against independent reference values (tests/fixtures/make_loss_reference.py,
//! numpy, float64, its gradients checked there by finite differences) and against finite
//! differences of themselves.

use apprentice::backend::{ComputeDevice, class_indices, matrix, scalar, to_host, vector};
use apprentice::distill::mutual::mutual_loss;
use apprentice::text::embedding_loss::cosine_embedding_loss;
use burn::tensor::Tensor;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture<C> {
    cases: Vec<C>,
}

#[derive(Deserialize)]
struct CosineCase {
    name: String,
    batch: usize,
    dim: usize,
    outputs: Vec<f32>,
    targets: Vec<f32>,
    loss: f64,
    grad: Vec<f64>,
}

#[derive(Deserialize)]
struct MutualCase {
    name: String,
    members: usize,
    batch: usize,
    classes: usize,
    temperature: f64,
    logits: Vec<Vec<f32>>,
    labels: Vec<u32>,
    labelled: Vec<bool>,
    loss: f64,
    grads: Vec<Vec<f64>>,
}

fn cosine_cases() -> Vec<CosineCase> {
    serde_json::from_str::<Fixture<CosineCase>>(include_str!(
        "fixtures/cosine_embedding_reference.json"
    ))
    .expect("fixture parses")
    .cases
}

fn mutual_cases() -> Vec<MutualCase> {
    serde_json::from_str::<Fixture<MutualCase>>(include_str!("fixtures/mutual_reference.json"))
        .expect("fixture parses")
        .cases
}

/// The cosine loss and its gradient with respect to the student outputs, through autodiff.
fn cosine(case: &CosineCase, outputs: &[f32]) -> (f64, Vec<f32>) {
    let device = ComputeDevice::cpu().training();
    let s: Tensor<2> = matrix(outputs.to_vec(), case.batch, case.dim, &device).require_grad();
    let t = matrix(case.targets.clone(), case.batch, case.dim, &device);
    let loss = cosine_embedding_loss(s.clone(), t);
    let value = scalar(loss.clone()) as f64;
    let grads = loss.backward();
    let grad = s
        .grad(&grads)
        .map(to_host)
        .unwrap_or_else(|| vec![0.0; outputs.len()]);
    (value, grad)
}

/// The cohort loss and its gradient with respect to every member's logits.
fn mutual(case: &MutualCase, logits: &[Vec<f32>]) -> (f64, Vec<Vec<f32>>) {
    let device = ComputeDevice::cpu().training();
    let members: Vec<Tensor<2>> = logits
        .iter()
        .map(|z| matrix(z.clone(), case.batch, case.classes, &device).require_grad())
        .collect();
    let labels = class_indices(&case.labels, &device);
    let mask = (!case.labelled.iter().all(|&l| l)).then(|| {
        vector(
            case.labelled
                .iter()
                .map(|&l| if l { 1.0 } else { 0.0 })
                .collect(),
            &device,
        )
    });
    let loss = mutual_loss(&members, labels, mask, case.temperature);
    let value = scalar(loss.clone()) as f64;
    let grads = loss.backward();
    let per_member = members
        .iter()
        .map(|z| {
            z.grad(&grads)
                .map(to_host)
                .unwrap_or_else(|| vec![0.0; case.batch * case.classes])
        })
        .collect();
    (value, per_member)
}

fn assert_close(ours: &[f32], reference: &[f64], what: &str) {
    let scale = reference
        .iter()
        .fold(0.0f64, |m, g| m.max(g.abs()))
        .max(1.0);
    for (i, (&a, &b)) in ours.iter().zip(reference).enumerate() {
        assert!(
            (a as f64 - b).abs() <= 1e-5 * scale,
            "{what}: grad[{i}] {a} vs reference {b}"
        );
    }
    assert_eq!(ours.len(), reference.len(), "{what}: gradient length");
}

#[test]
fn the_cosine_embedding_loss_matches_the_numpy_reference() {
    let cases = cosine_cases();
    assert!(cases.len() >= 5);
    for case in &cases {
        let (value, grad) = cosine(case, &case.outputs);
        assert!(
            (value - case.loss).abs() <= 1e-6 * case.loss.abs().max(1.0),
            "{}: loss {value} vs reference {}",
            case.name,
            case.loss
        );
        assert_close(&grad, &case.grad, &case.name);
    }
}

#[test]
fn the_cosine_embedding_gradient_matches_finite_differences() {
    for case in cosine_cases().iter().filter(|c| c.name != "tiny norms") {
        let (_, grad) = cosine(case, &case.outputs);
        // The step scales with the rows' norms so that f32 rounding stays below the change.
        let norm = case.outputs.iter().map(|v| v * v).sum::<f32>().sqrt();
        let step = 1e-2 * norm / (case.batch as f32).sqrt();
        for i in 0..case.outputs.len() {
            let mut plus = case.outputs.clone();
            plus[i] += step;
            let mut minus = case.outputs.clone();
            minus[i] -= step;
            let numeric = (cosine(case, &plus).0 - cosine(case, &minus).0) / (2.0 * step as f64);
            // The floor covers f32 rounding where the gradient vanishes (a row along its target).
            let scale = case
                .grad
                .iter()
                .fold(0.0f64, |m, g| m.max(g.abs()))
                .max(1e-3);
            assert!(
                (numeric - grad[i] as f64).abs() <= 2e-2 * scale,
                "{}: d loss / d s[{i}] autodiff {} vs finite difference {numeric}",
                case.name,
                grad[i]
            );
        }
    }
}

#[test]
fn the_mutual_loss_matches_the_numpy_reference() {
    let cases = mutual_cases();
    assert!(cases.len() >= 5);
    for case in &cases {
        assert_eq!(case.logits.len(), case.members);
        let (value, grads) = mutual(case, &case.logits);
        assert!(
            (value - case.loss).abs() <= 1e-5 * case.loss.abs().max(1.0),
            "{}: loss {value} vs reference {}",
            case.name,
            case.loss
        );
        for (k, (ours, reference)) in grads.iter().zip(&case.grads).enumerate() {
            assert_close(ours, reference, &format!("{} member {k}", case.name));
        }
    }
}

#[test]
fn the_mutual_gradient_matches_finite_differences_of_each_members_own_loss() {
    // The summed loss's gradient with respect to z_k must be that of member k's own loss
    // (its peers are fixed targets there, and the peers' own terms treat z_k as a detached
    // target), so the finite difference is taken of member k's own term alone.
    let mut checked = 0;
    for case in mutual_cases()
        .iter()
        .filter(|c| c.logits.iter().flatten().all(|v| v.abs() < 20.0))
    {
        let (_, grads) = mutual(case, &case.logits);
        let step = 1e-2f32;
        for k in 0..case.members {
            let own_term = |z: &[f32]| {
                let mut moved = case.logits.clone();
                moved[k] = z.to_vec();
                own_term(case, &moved, k)
            };
            for i in 0..case.batch * case.classes {
                let mut plus = case.logits[k].clone();
                plus[i] += step;
                let mut minus = case.logits[k].clone();
                minus[i] -= step;
                let numeric = (own_term(&plus) - own_term(&minus)) / (2.0 * step as f64);
                let ours = grads[k][i] as f64;
                assert!(
                    (numeric - ours).abs() <= 2e-3 * (1.0 + numeric.abs()),
                    "{} member {k}: d loss / d z[{i}] autodiff {ours} vs finite difference {numeric}",
                    case.name
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 4, "too few cases were checked: {checked}");
}

/// Member `j`'s own loss in the cohort `logits`: its cross-entropy (a cohort of one) plus
/// the mean of its mutual terms against the others.
fn own_term(case: &MutualCase, logits: &[Vec<f32>], j: usize) -> f64 {
    let device = ComputeDevice::cpu().training();
    let tensor = |z: &Vec<f32>| matrix(z.clone(), case.batch, case.classes, &device);
    let labels = || class_indices(&case.labels, &device);
    let mask = || {
        (!case.labelled.iter().all(|&l| l)).then(|| {
            vector(
                case.labelled
                    .iter()
                    .map(|&l| if l { 1.0 } else { 0.0 })
                    .collect(),
                &device,
            )
        })
    };
    let peers = (case.members - 1).max(1) as f64;
    let mut term = scalar(mutual_loss(
        &[tensor(&logits[j])],
        labels(),
        mask(),
        case.temperature,
    )) as f64;
    for (m, other) in logits.iter().enumerate() {
        if m != j {
            term += scalar(apprentice::distill::loss::soft_target_kl(
                tensor(&logits[j]),
                tensor(other),
                case.temperature,
            )) as f64
                / peers;
        }
    }
    term
}
