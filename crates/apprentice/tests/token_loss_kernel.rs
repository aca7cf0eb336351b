//! A language model's next-token losses on every core (`models::kernels::forward_kl_rows`,
//! `reverse_kl_rows`, `mixed_divergence_rows` and `log_softmax_pick`, which `TokenLoss` uses on
//! the CPU) against burn's own operations: the loss and the gradient of the logits equal bit
//! for bit, for the forward and reverse KL, the generalised JSD, the skew KLs and the total
//! variation at several temperatures and weights, the cross-entropy, and each mixed with it,
//! with padded positions, rows of many widths (a group of eight rows and a remainder), on 1
//! and 2 threads; and the gradient against central differences of textbook f64 formulas.

mod common;

use apprentice::lm::objectives::{TokenDivergence, TokenLoss, divergence};
use apprentice::models::kernels::{
    MixedDivergence, forward_kl_rows, log_softmax_pick, mixed_divergence_rows,
};
use burn::tensor::{Device, Int, Tensor, TensorData, activation};
use common::bits::{assert_same_bits, on_threads};
use common::numeric::{assert_central_differences, host, uniform};

/// burn's own loss, as `TokenLoss::forward` computed it before the kernels: the reference
/// (`divergence` is burn's operations, the composition `TokenLoss` falls back to).
fn burn_loss(
    loss: &TokenLoss,
    student: Tensor<3>,
    teacher: Tensor<3>,
    targets: Tensor<2, Int>,
    mask: Tensor<2>,
) -> Tensor<1> {
    let real = mask.clone().sum().clamp_min(1.0);
    let mut per_position = Tensor::zeros(mask.dims(), &mask.device());
    if loss.ce_weight < 1.0 {
        let t = loss.temperature;
        let log_q = activation::log_softmax(student.clone() / t, 2);
        let log_p = activation::log_softmax(teacher / t, 2);
        let value = divergence(loss.divergence, log_q, log_p);
        per_position = per_position + value * ((1.0 - loss.ce_weight) * t * t);
    }
    if loss.ce_weight > 0.0 {
        let log_q = activation::log_softmax(student, 2);
        let picked: Tensor<2> = log_q.gather(2, targets.unsqueeze_dim(2)).squeeze_dim(2);
        per_position = per_position - picked * loss.ce_weight;
    }
    (per_position * mask).sum() / real
}

/// The loss and the student's gradient, through `TokenLoss::forward` (the kernels) or burn.
fn loss_and_gradient(
    loss: &TokenLoss,
    dims: [usize; 3],
    seed: u64,
    ours: bool,
) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex().autodiff();
    let [batch, len, vocab] = dims;
    let n = batch * len * vocab;
    let student = Tensor::<3>::from_data(TensorData::new(uniform(n, seed, 6.0), dims), &device)
        .require_grad();
    let teacher = Tensor::<3>::from_data(TensorData::new(uniform(n, seed + 1, 9.0), dims), &device);
    let targets: Vec<i64> = (0..batch * len)
        .map(|i| ((i * 7 + seed as usize) % vocab) as i64)
        .collect();
    let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [batch, len]), &device);
    // The last position of every other sequence is padding.
    let mask: Vec<f32> = (0..batch * len)
        .map(|i| {
            if i % len == len - 1 && (i / len) % 2 == 1 {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [batch, len]), &device);
    let value = if ours {
        loss.forward(student.clone(), teacher.detach(), targets, mask)
    } else {
        burn_loss(loss, student.clone(), teacher.detach(), targets, mask)
    };
    let grads = value.backward();
    (
        host(value),
        host(student.grad(&grads).expect("the student's gradient")),
    )
}

fn losses() -> Vec<TokenLoss> {
    let kl = |temperature, ce_weight| TokenLoss {
        divergence: TokenDivergence::ForwardKl,
        temperature,
        ce_weight,
    };
    vec![
        kl(1.0, 0.0),
        kl(2.0, 0.0),
        kl(1.0, 1.0),
        kl(1.0, 0.5),
        kl(0.7, 0.25),
        TokenLoss {
            divergence: TokenDivergence::Jsd { beta: 0.0 },
            temperature: 1.5,
            ce_weight: 0.0,
        },
        TokenLoss {
            divergence: TokenDivergence::ReverseKl,
            temperature: 1.0,
            ce_weight: 0.0,
        },
        TokenLoss {
            divergence: TokenDivergence::ReverseKl,
            temperature: 2.0,
            ce_weight: 0.4,
        },
        TokenLoss {
            divergence: TokenDivergence::Jsd { beta: 1.0 },
            temperature: 0.8,
            ce_weight: 0.0,
        },
    ]
}

/// The divergences through a mixture, and the total variation.
fn mixed_losses() -> Vec<TokenLoss> {
    let loss = |divergence, temperature, ce_weight| TokenLoss {
        divergence,
        temperature,
        ce_weight,
    };
    vec![
        loss(TokenDivergence::Jsd { beta: 0.5 }, 1.0, 0.0),
        loss(TokenDivergence::Jsd { beta: 0.1 }, 2.0, 0.3),
        loss(TokenDivergence::Jsd { beta: 0.9 }, 0.7, 0.0),
        loss(TokenDivergence::SkewKl { alpha: 0.1 }, 1.0, 0.0),
        loss(TokenDivergence::SkewKl { alpha: 0.0 }, 1.0, 0.0),
        loss(TokenDivergence::SkewReverseKl { alpha: 0.0 }, 1.0, 0.0),
        loss(TokenDivergence::SkewReverseKl { alpha: 0.1 }, 1.0, 0.0),
        loss(TokenDivergence::SkewReverseKl { alpha: 0.5 }, 1.5, 0.5),
        loss(TokenDivergence::TotalVariation, 1.0, 0.0),
        loss(TokenDivergence::TotalVariation, 2.0, 0.2),
    ]
}

const SHAPES: &[[usize; 3]] = &[[4, 24, 2000], [3, 5, 7], [1, 1, 1], [2, 9, 300]];

#[test]
fn losses_and_gradients_are_burns_bit_for_bit() {
    for loss in losses().into_iter().chain(mixed_losses()) {
        for (i, &dims) in SHAPES.iter().enumerate() {
            let reference = loss_and_gradient(&loss, dims, i as u64, false);
            for threads in [1, 2] {
                let ours = on_threads(threads, || loss_and_gradient(&loss, dims, i as u64, true));
                let what = format!("{loss:?}, {dims:?}, {threads} threads");
                assert_same_bits(&format!("{what}: loss"), &ours.0, &reference.0);
                assert_same_bits(&format!("{what}: gradient"), &ours.1, &reference.1);
            }
        }
    }
}

#[test]
fn the_kernels_decline_what_they_do_not_cover() {
    let device = Device::flex().autodiff();
    let a = Tensor::<3>::zeros([2, 3, 4], &device);
    let b = Tensor::<3>::zeros([2, 3, 5], &device);
    assert!(forward_kl_rows(&a, &b, 1.0).is_none(), "shapes differ");
    let jsd = |beta| MixedDivergence::Jsd { beta };
    assert!(
        mixed_divergence_rows(&a, &b, 1.0, jsd(0.5)).is_none(),
        "shapes differ"
    );
    for weight in [0.0, 1.0] {
        assert!(
            mixed_divergence_rows(&a, &a, 1.0, jsd(weight)).is_none(),
            "a weight of {weight}: a plain KL"
        );
    }
    let skew = MixedDivergence::SkewReverseKl { alpha: 0.0 };
    assert!(mixed_divergence_rows(&a, &a, 1.0, skew).is_none());
    assert!(mixed_divergence_rows(&a, &a, 1.0, jsd(0.5)).is_some());
    let plain = Tensor::<3>::zeros([2, 3, 4], &Device::flex());
    assert!(
        forward_kl_rows(&plain, &plain, 1.0).is_none(),
        "not autodiff"
    );
    let outside =
        Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 3, 4, 1], [2, 3]), &device);
    assert!(
        log_softmax_pick(&a, &outside).is_none(),
        "a target outside the vocabulary"
    );
    let inside =
        Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 3, 0, 1], [2, 3]), &device);
    assert!(log_softmax_pick(&a, &inside).is_some());
}

/// The mixed losses' gradients (each divergence with the cross-entropy) against central
/// differences of the same losses in f64.
#[test]
fn the_gradient_matches_central_differences() {
    for divergence in [
        TokenDivergence::ForwardKl,
        TokenDivergence::ReverseKl,
        TokenDivergence::Jsd { beta: 0.3 },
        TokenDivergence::SkewKl { alpha: 0.1 },
        TokenDivergence::SkewReverseKl { alpha: 0.2 },
        TokenDivergence::TotalVariation,
    ] {
        gradient_against_central_differences(divergence);
    }
}

/// The divergence of one row in f64, from the teacher's and the student's log-probabilities,
/// by its textbook formula.
fn divergence_f64(divergence: TokenDivergence, log_p: &[f64], log_q: &[f64]) -> f64 {
    let p: Vec<f64> = log_p.iter().map(|v| v.exp()).collect();
    let q: Vec<f64> = log_q.iter().map(|v| v.exp()).collect();
    let kl = |a: &[f64], b: &[f64]| -> f64 { a.iter().zip(b).map(|(a, b)| a * (a / b).ln()).sum() };
    let mix = |w: f64, a: &[f64], b: &[f64]| -> Vec<f64> {
        a.iter()
            .zip(b)
            .map(|(a, b)| w * a + (1.0 - w) * b)
            .collect()
    };
    match divergence {
        TokenDivergence::ForwardKl => kl(&p, &q),
        TokenDivergence::ReverseKl => kl(&q, &p),
        TokenDivergence::Jsd { beta } => {
            let m = mix(beta, &p, &q);
            beta * kl(&p, &m) + (1.0 - beta) * kl(&q, &m)
        }
        TokenDivergence::SkewKl { alpha } => kl(&p, &mix(alpha, &p, &q)),
        TokenDivergence::SkewReverseKl { alpha } => kl(&q, &mix(alpha, &q, &p)),
        TokenDivergence::TotalVariation => {
            0.5 * p.iter().zip(&q).map(|(p, q)| (p - q).abs()).sum::<f64>()
        }
    }
}

fn gradient_against_central_differences(divergence: TokenDivergence) {
    let (batch, len, vocab) = (2, 3, 11);
    let dims = [batch, len, vocab];
    let loss = TokenLoss {
        divergence,
        temperature: 2.0,
        ce_weight: 0.3,
    };
    let n = batch * len * vocab;
    let student = uniform(n, 5, 3.0);
    let teacher = uniform(n, 6, 3.0);
    let targets: Vec<usize> = (0..batch * len).map(|i| (i * 5) % vocab).collect();
    let device = Device::flex().autodiff();
    let x = Tensor::<3>::from_data(TensorData::new(student.clone(), dims), &device).require_grad();
    let t = Tensor::<3>::from_data(TensorData::new(teacher.clone(), dims), &device);
    let ids: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
    let y = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, len]), &device);
    let mask = Tensor::<2>::ones([batch, len], &device);
    let grads = loss.forward(x.clone(), t, y, mask).backward();
    let gradient = host(x.grad(&grads).unwrap());
    let log_softmax = |row: &[f64], scale: f64| -> Vec<f64> {
        let scaled: Vec<f64> = row.iter().map(|v| v / scale).collect();
        let max = scaled.iter().cloned().fold(f64::MIN, f64::max);
        let lse = max + scaled.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        scaled.iter().map(|v| v - lse).collect()
    };
    let tau = loss.temperature;
    let w = loss.ce_weight;
    let f = |x: &[f64]| -> f64 {
        let mut total = 0.0;
        for r in 0..batch * len {
            let row = &x[r * vocab..(r + 1) * vocab];
            let t: Vec<f64> = teacher[r * vocab..(r + 1) * vocab]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let log_p = log_softmax(&t, tau);
            let log_q = log_softmax(row, tau);
            let value = divergence_f64(divergence, &log_p, &log_q);
            let ce = -log_softmax(row, 1.0)[targets[r]];
            total += (1.0 - w) * tau * tau * value + w * ce;
        }
        total / (batch * len) as f64
    };
    assert_central_differences(&gradient, &student, f, 1e-3, 1e-4);
}
