//! The attention's batched product, softmax, row sums and dropout on every core
//! (`models::kernels::batched_matmul`, `softmax_last`, `row_sums_in_order`, `dropout_with_mask`,
//! `text::dropout::keep_mask`) against burn's own operations and plain loops: outputs and
//! gradients equal bit for bit, with the strided views the encoder multiplies, with and without
//! autodiff and on 1 and 2 threads; the masks equal the sequential draws; and the product's
//! gradient against central differences.

mod common;

use apprentice::models::kernels::{
    batched_matmul, dropout_with_mask, row_sums_in_order, softmax_last,
};
use apprentice::text::dropout::keep_mask;
use burn::tensor::{Device, Tensor, TensorData, activation};
use common::bits::{assert_same_bits, on_threads};
use common::numeric::{assert_central_differences, host, uniform};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn values(len: usize, seed: u64) -> Vec<f32> {
    uniform(len, seed, 2.0)
}

/// The encoder's two products on `[batch, len, heads, width]` activations split by head:
/// `Q Kᵀ` (both operands strided views) then `S V`. Returns the output of `S V`, weighted and
/// summed for a loss, and the gradients of the three activations.
fn attention_products(shape: [usize; 4], ours: bool) -> Vec<Vec<f32>> {
    let device = Device::flex().autodiff();
    let [batch, len, heads, width] = shape;
    let n = batch * len * heads * width;
    let leaf = |seed| {
        Tensor::<4>::from_data(TensorData::new(values(n, seed), shape), &device).require_grad()
    };
    let (q, k, v) = (leaf(1), leaf(2), leaf(3));
    let split = |t: &Tensor<4>| t.clone().swap_dims(1, 2);
    let product = |a: Tensor<4>, b: Tensor<4>| {
        if ours {
            batched_matmul(a, b)
        } else {
            a.matmul(b)
        }
    };
    let scores = product(split(&q), split(&k).swap_dims(2, 3));
    let out = product(scores.clone(), split(&v));
    let r = Tensor::<4>::from_data(TensorData::new(values(n, 4), out.dims()), &device);
    let grads = ((out.clone() * r).sum() + scores.sum()).backward();
    let grad = |t: &Tensor<4>| host(t.grad(&grads).expect("a gradient"));
    vec![host(out), grad(&q), grad(&k), grad(&v)]
}

const SHAPES: &[[usize; 4]] = &[[32, 64, 12, 32], [3, 7, 2, 5], [1, 1, 1, 1]];

#[test]
fn batched_products_and_gradients_are_burns_bit_for_bit() {
    for &shape in SHAPES {
        let ours = attention_products(shape, true);
        let burn = attention_products(shape, false);
        for (what, (a, b)) in ["output", "dQ", "dK", "dV"]
            .iter()
            .zip(ours.iter().zip(&burn))
        {
            assert_same_bits(&format!("{what} {shape:?}"), a, b);
        }
    }
}

#[test]
fn batched_products_without_autodiff_are_burns_bit_for_bit() {
    let device = Device::flex();
    let lhs = Tensor::<4>::from_data(
        TensorData::new(values(2 * 3 * 9 * 4, 5), [2, 9, 3, 4]),
        &device,
    )
    .swap_dims(1, 2);
    let rhs = Tensor::<4>::from_data(
        TensorData::new(values(2 * 3 * 4 * 6, 6), [2, 3, 4, 6]),
        &device,
    );
    assert_same_bits(
        "output",
        &host(batched_matmul(lhs.clone(), rhs.clone())),
        &host(lhs.matmul(rhs)),
    );
}

#[test]
fn batched_products_on_one_thread_and_two_give_the_same_bits() {
    let on = |threads: usize| on_threads(threads, || attention_products([8, 40, 4, 16], true));
    let (one, two) = (on(1), on(2));
    for (a, b) in one.iter().zip(&two) {
        assert_same_bits("one thread against two", a, b);
    }
}

#[test]
fn the_batched_gradient_matches_central_differences() {
    // f(A) = Σ (A B) ⊙ R is linear in A, so dA = R Bᵀ exactly; the difference quotient in f64
    // checks the step's gradient without trusting any matrix product.
    let device = Device::flex().autodiff();
    let (m, k, n) = (3, 4, 5);
    let a = values(2 * m * k, 7);
    let b = values(2 * k * n, 8);
    let r = values(2 * m * n, 9);
    let at = Tensor::<3>::from_data(TensorData::new(a.clone(), [2, m, k]), &device).require_grad();
    let bt = Tensor::<3>::from_data(TensorData::new(b.clone(), [2, k, n]), &device);
    let rt = Tensor::<3>::from_data(TensorData::new(r.clone(), [2, m, n]), &device);
    let grads = (batched_matmul(at.clone(), bt) * rt).sum().backward();
    let gradient = host(at.grad(&grads).expect("a gradient"));
    let f = |a: &[f64]| -> f64 {
        let mut total = 0.0;
        for s in 0..2 {
            for i in 0..m {
                for j in 0..n {
                    let dot: f64 = (0..k)
                        .map(|p| a[s * m * k + i * k + p] * f64::from(b[s * k * n + p * n + j]))
                        .sum();
                    total += dot * f64::from(r[s * m * n + i * n + j]);
                }
            }
        }
        total
    };
    assert_central_differences(&gradient, &a, f, 1e-3, 1e-4);
}

/// Dropout's output and input gradient for `x` of `dims` (transposed in its last two
/// dimensions first), ours or burn's `x * mask * (1 / keep)`.
fn dropout_run(dims: [usize; 3], keep: f64, ours: bool) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex().autodiff();
    let n: usize = dims.iter().product();
    let x = Tensor::<3>::from_data(TensorData::new(values(n, 10), dims), &device).require_grad();
    let input = x.clone().swap_dims(1, 2);
    let mask = keep_mask(&mut ChaCha8Rng::seed_from_u64(11), n, keep);
    let y = if ours {
        dropout_with_mask(input, mask, keep)
    } else {
        let random = Tensor::from_data(TensorData::new(mask, input.dims()), &device);
        input * random * (1.0 / keep)
    };
    let r = Tensor::<3>::from_data(TensorData::new(values(n, 12), y.dims()), &device);
    let grads = (y.clone() * r).sum().backward();
    (host(y), host(x.grad(&grads).expect("a gradient")))
}

#[test]
fn dropout_output_and_gradient_are_burns_bit_for_bit() {
    for (dims, keep) in [([32, 64, 384], 0.9), ([3, 5, 7], 0.7)] {
        let ours = dropout_run(dims, keep, true);
        let burn = dropout_run(dims, keep, false);
        assert_same_bits(&format!("output {dims:?}"), &ours.0, &burn.0);
        assert_same_bits(&format!("gradient {dims:?}"), &ours.1, &burn.1);
    }
    let on = |threads: usize| on_threads(threads, || dropout_run([16, 64, 384], 0.9, true));
    let (one, two) = (on(1), on(2));
    assert_same_bits("output, one thread against two", &one.0, &two.0);
    assert_same_bits("gradient, one thread against two", &one.1, &two.1);
}

#[test]
fn masks_are_the_sequential_draws_and_leave_the_generator_where_they_would() {
    // Lengths around the task size (32 Ki) and an odd start, so that some tasks begin in the
    // middle of one of ChaCha's blocks; keep probabilities at the ends, one whose threshold
    // `keep · 2⁵³` is a whole number (0.5) and ones that are not.
    let cases = [0, 1, 5, 32_767, 32_768, 100_003]
        .map(|len| (len, 0.9))
        .into_iter()
        .chain([0.0, 0.1, 0.5, 1.0 / 3.0, 1.0].map(|keep| (5_000, keep)));
    for (len, keep) in cases {
        let mut parallel = ChaCha8Rng::seed_from_u64(13);
        let _: u32 = parallel.random();
        let mut sequential = parallel.clone();
        let ours = on_threads(2, || keep_mask(&mut parallel, len, keep));
        let reference: Vec<f32> = (0..len)
            .map(|_| f32::from(sequential.random::<f64>() < keep))
            .collect();
        assert_same_bits(&format!("mask of {len} at keep {keep}"), &ours, &reference);
        assert_eq!(
            parallel.random::<u64>(),
            sequential.random::<u64>(),
            "the draw after a mask of {len}"
        );
    }
}

/// Softmax's output and input gradient over the last dimension of `x` (scaled by `spread`, with
/// rows of equal values, a -inf and huge values mixed in), ours or burn's; the loss weights
/// the output unevenly so that every term of the gradient matters.
fn softmax_run(dims: [usize; 4], spread: f32, ours: bool) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex().autodiff();
    let n: usize = dims.iter().product();
    let mut data: Vec<f32> = values(n, 14).iter().map(|v| v * spread).collect();
    let width = dims[3];
    data[..width].fill(0.25);
    data[width] = f32::NEG_INFINITY;
    data[2 * width] = 80.0;
    let x = Tensor::<4>::from_data(TensorData::new(data, dims), &device).require_grad();
    let y = if ours {
        softmax_last(x.clone())
    } else {
        activation::softmax(x.clone(), 3)
    };
    let r = Tensor::<4>::from_data(TensorData::new(values(n, 15), dims), &device);
    let grads = (y.clone() * r).sum().backward();
    (host(y), host(x.grad(&grads).expect("a gradient")))
}

#[test]
fn softmax_output_and_gradient_are_burns_bit_for_bit() {
    for (dims, spread) in [
        ([32, 12, 64, 64], 4.0),
        ([2, 3, 5, 7], 1.0),
        ([3, 5, 7, 9], 3.0),
        ([1, 1, 4, 1], 1.0),
    ] {
        let ours = softmax_run(dims, spread, true);
        let burn = softmax_run(dims, spread, false);
        assert_same_bits(&format!("output {dims:?}"), &ours.0, &burn.0);
        assert_same_bits(&format!("gradient {dims:?}"), &ours.1, &burn.1);
    }
    let on = |threads: usize| on_threads(threads, || softmax_run([8, 12, 64, 64], 4.0, true));
    let (one, two) = (on(1), on(2));
    assert_same_bits("output, one thread against two", &one.0, &two.0);
    assert_same_bits("gradient, one thread against two", &one.1, &two.1);
}

#[test]
fn the_softmax_gradient_matches_central_differences() {
    let device = Device::flex().autodiff();
    let x: Vec<f32> = values(12, 16);
    let r: Vec<f32> = values(12, 17);
    let xt = Tensor::<2>::from_data(TensorData::new(x.clone(), [2, 6]), &device).require_grad();
    let rt = Tensor::<2>::from_data(TensorData::new(r.clone(), [2, 6]), &device);
    let grads = (softmax_last(xt.clone()) * rt).sum().backward();
    let gradient = host(xt.grad(&grads).expect("a gradient"));
    // The loss in f64: Σ_rows Σ_i r_i · softmax(x)_i.
    let f = |x: &[f64]| -> f64 {
        x.chunks(6)
            .zip(r.chunks(6))
            .map(|(row, r)| {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = row.iter().map(|v| (v - max).exp()).collect();
                let s: f64 = e.iter().sum();
                e.iter()
                    .zip(r)
                    .map(|(e, &r)| e / s * f64::from(r))
                    .sum::<f64>()
            })
            .sum()
    };
    assert_central_differences(&gradient, &x, f, 1e-4, 1e-5);
}

#[test]
fn row_sums_side_by_side_are_each_rows_own_sum() {
    for width in 0..20 {
        for rows in 0..20 {
            let mut data = values(rows * width, (width * 20 + rows) as u64);
            // A row of negative zeros: the sum starts from -0.0, as `iter().sum()` does.
            if rows > 3 {
                data[3 * width..4 * width].fill(-0.0);
            }
            let mut sums = vec![f32::NAN; rows];
            row_sums_in_order(&data, width, &mut sums);
            let expected: Vec<f32> = (0..rows)
                .map(|r| data[r * width..(r + 1) * width].iter().sum())
                .collect();
            assert_same_bits(&format!("{rows} rows of {width}"), &sums, &expected);
        }
    }
}
