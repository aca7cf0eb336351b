//! The GELU on every core (`models::kernels::gelu`) against burn's own `activation::gelu`: the
//! output and the input gradient equal bit for bit (on the size of the BERT encoder's
//! feed-forward block, on a size below one task's chunk and on a transposed input), with and
//! without autodiff and on 1 and 2 threads; and the gradient against central differences.

mod common;

use apprentice::models::kernels::gelu;
use burn::tensor::{Device, Tensor, TensorData, activation};
use common::bits::{assert_same_bits, on_threads};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Values over GELU's whole interesting range and beyond, with zeros, signed zeros, tiny and
/// large values mixed in.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let special = [0.0, -0.0, 1e-30, -1e-30, 1e-8, -30.0, 30.0, -9.5, 9.5];
    (0..len)
        .map(|i| match i % 97 {
            k if k < special.len() => special[k],
            _ => rng.random_range(-8.0f32..=8.0),
        })
        .collect()
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("float32")
}

/// Output and input gradient of `sum(gelu(x) ⊙ r)`, `x` of `dims` (transposed in its last two
/// dimensions before GELU when `transposed`).
fn run(dims: [usize; 3], transposed: bool, ours: bool) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex().autodiff();
    let n = dims.iter().product();
    let x = Tensor::<3>::from_data(TensorData::new(values(n, 1), dims), &device).require_grad();
    let input = if transposed {
        x.clone().swap_dims(1, 2)
    } else {
        x.clone()
    };
    let r = Tensor::<3>::from_data(TensorData::new(values(n, 2), input.dims()), &device);
    let y = if ours {
        gelu(input)
    } else {
        activation::gelu(input)
    };
    let grads = (y.clone() * r).sum().backward();
    (host(y), host(x.grad(&grads).expect("an input gradient")))
}

const SHAPES: &[([usize; 3], bool)] = &[
    ([32, 64, 1536], false),
    ([3, 7, 5], false),
    ([4, 33, 17], true),
];

#[test]
fn output_and_gradient_are_burns_bit_for_bit() {
    for &(dims, transposed) in SHAPES {
        let ours = run(dims, transposed, true);
        let burn = run(dims, transposed, false);
        let case = format!("{dims:?} transposed {transposed}");
        assert_same_bits(&format!("output {case}"), &ours.0, &burn.0);
        assert_same_bits(&format!("input gradient {case}"), &ours.1, &burn.1);
    }
}

#[test]
fn without_autodiff_the_output_is_burns_bit_for_bit() {
    let device = Device::flex();
    let dims = [8, 40, 1536];
    let x = Tensor::<3>::from_data(TensorData::new(values(8 * 40 * 1536, 3), dims), &device);
    assert_same_bits("output", &host(gelu(x.clone())), &host(activation::gelu(x)));
}

#[test]
fn one_thread_and_two_give_the_same_bits() {
    let on = |threads: usize| on_threads(threads, || run([32, 64, 1536], false, true));
    let (one, two) = (on(1), on(2));
    assert_same_bits("output", &one.0, &two.0);
    assert_same_bits("input gradient", &one.1, &two.1);
}

#[test]
fn the_gradient_matches_central_differences() {
    let device = Device::flex().autodiff();
    let points: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.1).collect();
    let n = points.len();
    let x = Tensor::<1>::from_data(TensorData::new(points.clone(), [n]), &device).require_grad();
    let grads = gelu(x.clone()).sum().backward();
    let gradient = host(x.grad(&grads).expect("an input gradient"));
    // GELU in f64 with the same erf, so the difference quotient is not drowned in rounding.
    let f = |x: f64| 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
    let h = 1e-4;
    for (&x, &g) in points.iter().zip(&gradient) {
        let x = f64::from(x);
        let numeric = (f(x + h) - f(x - h)) / (2.0 * h);
        assert!(
            (f64::from(g) - numeric).abs() < 1e-5,
            "at {x}: gradient {g}, central difference {numeric}"
        );
    }
}
