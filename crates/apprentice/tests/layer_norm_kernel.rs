//! LayerNorm on every core (`models::kernels::layer_norm`) against burn's `LayerNorm::forward`:
//! the output and the gradients of the input, `γ` and `β` equal bit for bit (on BERT's sizes,
//! with leading dimensions of 1, on 1 and 2 threads), and the input gradient against central
//! differences.

mod common;

use apprentice::models::kernels::layer_norm;
use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::{Device, Tensor, TensorData};
use common::bits::{assert_same_bits, on_threads};
use common::numeric::{assert_central_differences, host, uniform};

fn values(len: usize, seed: u64, spread: f32) -> Vec<f32> {
    uniform(len, seed, spread)
}

/// A LayerNorm of `width` with random `γ` and `β` that require gradients.
fn norm(width: usize, epsilon: f64, device: &Device) -> LayerNorm {
    let mut norm = LayerNormConfig::new(width)
        .with_epsilon(epsilon)
        .init(device);
    let tensor =
        |seed| Tensor::<1>::from_data(TensorData::new(values(width, seed, 1.5), [width]), device);
    norm.gamma = Param::from_tensor(tensor(1));
    norm.beta = Some(Param::from_tensor(tensor(2)));
    norm
}

/// Output and the gradients of `a`, `γ` and `β` for `LayerNorm(a + b)` (a residual sum, as in
/// BERT), ours or burn's, the loss weighting the output unevenly.
fn run(dims: [usize; 3], epsilon: f64, ours: bool) -> Vec<Vec<f32>> {
    let device = Device::flex().autodiff();
    let n: usize = dims.iter().product();
    let norm = norm(dims[2], epsilon, &device);
    let a =
        Tensor::<3>::from_data(TensorData::new(values(n, 3, 3.0), dims), &device).require_grad();
    let b = Tensor::<3>::from_data(TensorData::new(values(n, 4, 0.5), dims), &device);
    let input = a.clone() + b;
    let y = if ours {
        layer_norm(&norm, input, epsilon)
    } else {
        norm.forward(input)
    };
    let r = Tensor::<3>::from_data(TensorData::new(values(n, 5, 1.0), dims), &device);
    let grads = (y.clone() * r).sum().backward();
    let gamma = norm.gamma.val().grad(&grads).expect("γ's gradient");
    let beta = norm
        .beta
        .as_ref()
        .expect("β")
        .val()
        .grad(&grads)
        .expect("β's gradient");
    vec![
        host(y),
        host(a.grad(&grads).expect("the input's gradient")),
        host(gamma),
        host(beta),
    ]
}

#[test]
fn output_and_gradients_are_burns_bit_for_bit() {
    let cases = [
        ([32, 64, 384], 1e-12),
        ([1, 5, 7], 1e-5),
        ([3, 1, 8], 1e-12),
        ([2, 3, 1], 1e-5),
    ];
    for (dims, epsilon) in cases {
        let ours = run(dims, epsilon, true);
        let burn = run(dims, epsilon, false);
        for (what, (a, b)) in ["output", "dx", "dγ", "dβ"]
            .iter()
            .zip(ours.iter().zip(&burn))
        {
            assert_same_bits(&format!("{what} {dims:?}"), a, b);
        }
    }
}

#[test]
fn one_thread_and_two_give_the_same_bits() {
    let on = |threads: usize| on_threads(threads, || run([16, 64, 384], 1e-12, true));
    let (one, two) = (on(1), on(2));
    for (a, b) in one.iter().zip(&two) {
        assert_same_bits("one thread against two", a, b);
    }
}

#[test]
fn without_autodiff_the_output_is_burns() {
    let device = Device::flex();
    let norm = norm(16, 1e-12, &device);
    let x = Tensor::<2>::from_data(TensorData::new(values(48, 6, 2.0), [3, 16]), &device);
    assert_same_bits(
        "output",
        &host(layer_norm(&norm, x.clone(), 1e-12)),
        &host(norm.forward(x)),
    );
}

#[test]
fn the_input_gradient_matches_central_differences() {
    let device = Device::flex().autodiff();
    let (rows, width, epsilon) = (2, 6, 1e-5);
    let norm = norm(width, epsilon, &device);
    let x = values(rows * width, 7, 2.0);
    let r = values(rows * width, 8, 1.0);
    let gamma = values(width, 1, 1.5);
    let beta = values(width, 2, 1.5);
    let xt =
        Tensor::<2>::from_data(TensorData::new(x.clone(), [rows, width]), &device).require_grad();
    let rt = Tensor::<2>::from_data(TensorData::new(r.clone(), [rows, width]), &device);
    let grads = (layer_norm(&norm, xt.clone() * 1.0, epsilon) * rt)
        .sum()
        .backward();
    let gradient = host(xt.grad(&grads).expect("a gradient"));
    let f = |x: &[f64]| -> f64 {
        x.chunks(width)
            .zip(r.chunks(width))
            .map(|(row, r)| {
                let mean = row.iter().sum::<f64>() / width as f64;
                let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / width as f64;
                let d = (var + epsilon).sqrt();
                (0..width)
                    .map(|i| {
                        let y = (row[i] - mean) / d * f64::from(gamma[i]) + f64::from(beta[i]);
                        y * f64::from(r[i])
                    })
                    .sum::<f64>()
            })
            .sum()
    };
    assert_central_differences(&gradient, &x, f, 1e-4, 1e-4);
}
