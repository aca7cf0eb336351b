//! The token-level distillation losses against an independent numpy reference
//! (`fixtures/lm_objectives/make_reference.py`): loss values, and gradients with respect to the
//! student logits taken by central finite differences in float64 there.

use apprentice::backend::{ComputeDevice, scalar, to_host};
use apprentice::lm::objectives::{TokenDivergence, TokenLoss};
use burn::tensor::{Int, Tensor, TensorData};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    divergence: TokenDivergence,
    temperature: f64,
    ce_weight: f64,
    batch: usize,
    len: usize,
    vocab: usize,
    student: Vec<f32>,
    teacher: Vec<f32>,
    targets: Vec<i64>,
    mask: Vec<f32>,
    loss: f64,
    grad: Vec<f64>,
}

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

fn loss_and_grad(case: &Case) -> (f64, Vec<f32>) {
    let device = ComputeDevice::cpu().training();
    let shape = [case.batch, case.len, case.vocab];
    let s: Tensor<3> =
        Tensor::from_data(TensorData::new(case.student.clone(), shape), &device).require_grad();
    let t: Tensor<3> = Tensor::from_data(TensorData::new(case.teacher.clone(), shape), &device);
    let y: Tensor<2, Int> = Tensor::from_data(
        TensorData::new(case.targets.clone(), [case.batch, case.len]),
        &device,
    );
    let mask: Tensor<2> = Tensor::from_data(
        TensorData::new(case.mask.clone(), [case.batch, case.len]),
        &device,
    );
    let loss = TokenLoss {
        divergence: case.divergence,
        temperature: case.temperature,
        ce_weight: case.ce_weight,
    };
    loss.validate().unwrap();
    let value = loss.forward(s.clone(), t, y, mask);
    let number = scalar(value.clone()) as f64;
    let grads = value.backward();
    (number, to_host(s.grad(&grads).unwrap()))
}

#[test]
fn every_objective_matches_the_numpy_reference_in_value_and_gradient() {
    let fixture: Fixture =
        serde_json::from_str(include_str!("fixtures/lm_objectives/reference.json")).unwrap();
    assert_eq!(fixture.cases.len(), 15);
    for case in &fixture.cases {
        let name = format!(
            "{:?} τ={} w={}",
            case.divergence, case.temperature, case.ce_weight
        );
        let (value, grad) = loss_and_grad(case);
        assert!(
            (value - case.loss).abs() <= 2e-5 * case.loss.abs().max(1.0),
            "{name}: loss {value} vs {}",
            case.loss
        );
        let scale = case.grad.iter().fold(1e-3f64, |m, g| m.max(g.abs()));
        for (i, (&ours, &theirs)) in grad.iter().zip(&case.grad).enumerate() {
            assert!(
                (ours as f64 - theirs).abs() <= 1e-4 * scale,
                "{name}: gradient {i}: {ours} vs {theirs}"
            );
        }
    }
}

#[test]
fn identical_distributions_have_zero_divergence_and_settings_are_checked() {
    let device = ComputeDevice::cpu().inference();
    let logits: Tensor<3> = Tensor::from_data(
        TensorData::new(vec![0.3f32, -1.0, 2.0, 0.5, 0.0, 1.0], [1, 2, 3]),
        &device,
    );
    let y: Tensor<2, Int> = Tensor::zeros([1, 2], &device);
    let mask: Tensor<2> = Tensor::ones([1, 2], &device);
    for divergence in [
        TokenDivergence::ForwardKl,
        TokenDivergence::ReverseKl,
        TokenDivergence::Jsd { beta: 0.5 },
        TokenDivergence::TotalVariation,
        TokenDivergence::SkewKl { alpha: 0.1 },
        TokenDivergence::SkewReverseKl { alpha: 0.1 },
    ] {
        let loss = TokenLoss {
            divergence,
            temperature: 2.0,
            ce_weight: 0.0,
        };
        let value = scalar(loss.forward(logits.clone(), logits.clone(), y.clone(), mask.clone()));
        assert!(value.abs() < 1e-6, "{divergence:?}: {value}");
    }
    let bad = [
        TokenLoss {
            divergence: TokenDivergence::Jsd { beta: 1.5 },
            temperature: 1.0,
            ce_weight: 0.0,
        },
        TokenLoss {
            divergence: TokenDivergence::SkewKl { alpha: 1.0 },
            temperature: 1.0,
            ce_weight: 0.0,
        },
        TokenLoss {
            divergence: TokenDivergence::ForwardKl,
            temperature: 0.0,
            ce_weight: 0.0,
        },
        TokenLoss {
            divergence: TokenDivergence::ForwardKl,
            temperature: 1.0,
            ce_weight: -0.1,
        },
    ];
    for loss in bad {
        let err = loss.validate().unwrap_err().to_string();
        assert!(err.contains("expected"), "{err}");
    }
}
