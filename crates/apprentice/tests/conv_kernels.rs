//! Our convolution-block kernels (`models::kernels`) against burn's own operations: forward
//! values and the gradients of input, weight and bias, on odd shapes, with and without padding,
//! ReLU and pool; a finite-difference check; and bitwise-equal results on 1 and 2 threads.

mod common;

use apprentice::models::Activation;
use apprentice::models::kernels::{conv2d_block, max_pool2x2};
use apprentice::models::layers::ConvBlock;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData, activation};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use common::bits::{assert_same_bits, on_threads};

/// One block configuration.
#[derive(Clone, Copy, Debug)]
struct Case {
    batch: usize,
    in_channels: usize,
    height: usize,
    width: usize,
    out_channels: usize,
    kernel: usize,
    padding: usize,
    relu: bool,
    pool: bool,
}

impl Case {
    #[allow(clippy::too_many_arguments)]
    const fn new(
        batch: usize,
        in_channels: usize,
        height: usize,
        width: usize,
        out_channels: usize,
        kernel: usize,
        padding: usize,
        relu: bool,
        pool: bool,
    ) -> Self {
        Self {
            batch,
            in_channels,
            height,
            width,
            out_channels,
            kernel,
            padding,
            relu,
            pool,
        }
    }

    fn out_size(&self) -> (usize, usize) {
        (
            self.height + 2 * self.padding + 1 - self.kernel,
            self.width + 2 * self.padding + 1 - self.kernel,
        )
    }
}

const CASES: &[Case] = &[
    Case::new(1, 1, 5, 5, 2, 3, 1, true, true),
    Case::new(3, 2, 7, 6, 4, 3, 1, true, true),
    Case::new(2, 3, 9, 7, 5, 5, 2, false, true),
    Case::new(4, 1, 28, 28, 8, 3, 1, true, true),
    Case::new(2, 4, 6, 5, 3, 3, 0, true, false),
    Case::new(1, 2, 4, 4, 3, 1, 0, false, false),
    Case::new(5, 3, 11, 13, 6, 3, 1, true, false),
    Case::new(13, 8, 14, 14, 16, 3, 1, true, true),
    Case::new(2, 2, 3, 3, 2, 5, 2, true, true),
    Case::new(9, 3, 2, 9, 2, 3, 1, false, false),
    Case::new(3, 2, 1, 6, 2, 3, 1, true, true),
];

fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..=1.0)).collect()
}

fn tensor<const D: usize>(values: Vec<f32>, dims: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, dims), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("float32 values")
}

/// The random inputs of one case: input, weight, bias and the weights `r` of the loss
/// `sum(output · r)`, so that every output position gets its own gradient.
struct Inputs {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    r: Vec<f32>,
}

fn output_dims(case: &Case) -> [usize; 4] {
    let (oh, ow) = case.out_size();
    let pool = case.pool && oh >= 2 && ow >= 2;
    if pool {
        [case.batch, case.out_channels, oh / 2, ow / 2]
    } else {
        [case.batch, case.out_channels, oh, ow]
    }
}

fn inputs(case: &Case, seed: u64) -> Inputs {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x_len = case.batch * case.in_channels * case.height * case.width;
    let mut x = random(x_len, &mut rng);
    // Zero patches, as on an image's background: the convolution output there is exactly the
    // bias, so pool windows tie and the argmax must be chosen as burn chooses it.
    for v in x.iter_mut().take(x_len / 3) {
        *v = 0.0;
    }
    let w = random(
        case.out_channels * case.in_channels * case.kernel * case.kernel,
        &mut rng,
    );
    let b = random(case.out_channels, &mut rng);
    let r = random(output_dims(case).iter().product(), &mut rng);
    Inputs { x, w, b, r }
}

/// Output, input gradient, weight gradient, bias gradient.
type Results = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// Runs the block with our kernels (`ours`) or with burn's operations, on an autodiff device.
fn run(case: &Case, data: &Inputs, ours: bool) -> Results {
    let device = Device::flex().autodiff();
    let x = tensor(
        data.x.clone(),
        [case.batch, case.in_channels, case.height, case.width],
        &device,
    )
    .require_grad();
    let w = tensor(
        data.w.clone(),
        [
            case.out_channels,
            case.in_channels,
            case.kernel,
            case.kernel,
        ],
        &device,
    )
    .require_grad();
    let b = tensor(data.b.clone(), [case.out_channels], &device).require_grad();
    let (oh, ow) = case.out_size();
    let pool = case.pool && oh >= 2 && ow >= 2;
    let y = if ours {
        conv2d_block(&x, &w, &b, case.padding, case.relu, case.pool)
            .expect("our kernels cover float32 flex tensors")
    } else {
        let options = ConvOptions::new([1, 1], [case.padding; 2], [1, 1], 1);
        let mut y = conv2d(x.clone(), w.clone(), Some(b.clone()), options);
        if case.relu {
            y = activation::relu(y);
        }
        if pool {
            y = max_pool2d(y, MaxPoolOptions::new([2, 2]));
        }
        y
    };
    assert_eq!(y.dims(), output_dims(case), "{case:?}");
    let r = tensor(data.r.clone(), output_dims(case), &device);
    let grads = (y.clone() * r).sum().backward();
    let grad = |t: &Tensor<4>| host(t.grad(&grads).expect("a gradient"));
    (
        host(y),
        grad(&x),
        grad(&w),
        host(b.grad(&grads).expect("a gradient")),
    )
}

/// `max |a - b| <= tolerance · max |b|` (or `tolerance` when `b` is all zeros).
fn assert_close(what: &str, case: &Case, ours: &[f32], reference: &[f32], tolerance: f32) {
    assert_eq!(ours.len(), reference.len(), "{what} {case:?}: lengths");
    let scale = reference
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(1.0);
    for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
        assert!(
            (a - b).abs() <= tolerance * scale,
            "{what} {case:?}: element {i}: ours {a} vs burn {b} (scale {scale})"
        );
    }
}

#[test]
fn block_matches_burn_forward_and_gradients() {
    for (seed, case) in CASES.iter().enumerate() {
        let data = inputs(case, seed as u64);
        let ours = run(case, &data, true);
        let burn = run(case, &data, false);
        assert_close("output", case, &ours.0, &burn.0, 1e-5);
        assert_close("input gradient", case, &ours.1, &burn.1, 1e-5);
        assert_close("weight gradient", case, &ours.2, &burn.2, 1e-5);
        assert_close("bias gradient", case, &ours.3, &burn.3, 1e-5);
    }
}

#[test]
fn random_shapes_match_burn() {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    for seed in 0..12 {
        let kernel = [1, 3, 5][rng.random_range(0..3usize)];
        let case = Case::new(
            rng.random_range(1..=6),
            rng.random_range(1..=5),
            rng.random_range(kernel..=12),
            rng.random_range(kernel..=12),
            rng.random_range(1..=7),
            kernel,
            if rng.random::<bool>() { kernel / 2 } else { 0 },
            rng.random::<bool>(),
            rng.random::<bool>(),
        );
        let data = inputs(&case, 100 + seed);
        let ours = run(&case, &data, true);
        let burn = run(&case, &data, false);
        assert_close("output", &case, &ours.0, &burn.0, 1e-5);
        assert_close("input gradient", &case, &ours.1, &burn.1, 1e-5);
        assert_close("weight gradient", &case, &ours.2, &burn.2, 1e-5);
        assert_close("bias gradient", &case, &ours.3, &burn.3, 1e-5);
    }
}

#[test]
fn block_without_autodiff_matches_the_autodiff_forward() {
    let case = CASES[1];
    let data = inputs(&case, 5);
    let device = Device::flex();
    let x = tensor(
        data.x.clone(),
        [case.batch, case.in_channels, case.height, case.width],
        &device,
    );
    let w = tensor(
        data.w.clone(),
        [
            case.out_channels,
            case.in_channels,
            case.kernel,
            case.kernel,
        ],
        &device,
    );
    let b = tensor(data.b.clone(), [case.out_channels], &device);
    let plain = host(conv2d_block(&x, &w, &b, case.padding, case.relu, case.pool).unwrap());
    assert_eq!(plain, run(&case, &data, true).0);
}

/// `sum(output · r)` in f64, with the kernels on plain tensors.
fn loss(case: &Case, data: &Inputs) -> f64 {
    let device = Device::flex();
    let x = tensor(
        data.x.clone(),
        [case.batch, case.in_channels, case.height, case.width],
        &device,
    );
    let w = tensor(
        data.w.clone(),
        [
            case.out_channels,
            case.in_channels,
            case.kernel,
            case.kernel,
        ],
        &device,
    );
    let b = tensor(data.b.clone(), [case.out_channels], &device);
    let y = host(conv2d_block(&x, &w, &b, case.padding, case.relu, case.pool).unwrap());
    y.iter()
        .zip(&data.r)
        .map(|(&a, &r)| a as f64 * r as f64)
        .sum()
}

#[test]
fn gradients_match_finite_differences() {
    // The loss is piecewise linear in every parameter (convolution, ReLU and max are), so a
    // central difference with a small step is exact up to float32 rounding unless the step
    // crosses a kink; a loose tolerance covers the rounding of a float32 sum.
    let case = Case::new(2, 3, 6, 5, 4, 3, 1, true, true);
    let data = inputs(&case, 42);
    let (_, dx, dw, db) = run(&case, &data, true);
    let eps = 1e-3f32;
    let check = |what: &str, analytic: &[f32], pick: &dyn Fn(&mut Inputs) -> &mut Vec<f32>| {
        let mut checked = 0;
        for i in (0..analytic.len()).step_by(analytic.len().div_ceil(12)) {
            let mut plus = Inputs {
                x: data.x.clone(),
                w: data.w.clone(),
                b: data.b.clone(),
                r: data.r.clone(),
            };
            let mut minus = Inputs {
                x: data.x.clone(),
                w: data.w.clone(),
                b: data.b.clone(),
                r: data.r.clone(),
            };
            pick(&mut plus)[i] += eps;
            pick(&mut minus)[i] -= eps;
            let numeric = (loss(&case, &plus) - loss(&case, &minus)) / (2.0 * eps as f64);
            let tolerance = 2e-2 * numeric.abs().max(1.0);
            assert!(
                (numeric - analytic[i] as f64).abs() <= tolerance,
                "{what}[{i}]: autodiff {} vs finite differences {numeric}",
                analytic[i]
            );
            checked += 1;
        }
        assert!(checked > 0);
    };
    check("input", &dx, &|d| &mut d.x);
    check("weight", &dw, &|d| &mut d.w);
    check("bias", &db, &|d| &mut d.b);
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let case = Case::new(13, 4, 12, 11, 8, 3, 1, true, true);
    let data = inputs(&case, 9);
    let on = |threads: usize| on_threads(threads, || run(&case, &data, true));
    let one = on(1);
    let two = on(2);
    assert_same_bits("output", &one.0, &two.0);
    assert_same_bits("input gradient", &one.1, &two.1);
    assert_same_bits("weight gradient", &one.2, &two.2);
    assert_same_bits("bias gradient", &one.3, &two.3);
}

#[test]
fn pool_matches_burn_with_ties() {
    let device = Device::flex().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for dims in [[1, 1, 2, 2], [2, 3, 5, 7], [3, 2, 8, 6], [1, 4, 9, 3]] {
        let len: usize = dims.iter().product();
        // Values from a set of three, so most windows hold ties.
        let values: Vec<f32> = (0..len)
            .map(|_| rng.random_range(0..3u8) as f32 - 1.0)
            .collect();
        let run = |ours: bool| {
            let x = tensor(values.clone(), dims, &device).require_grad();
            let y = if ours {
                max_pool2x2(&x).expect("a float32 flex tensor")
            } else {
                max_pool2d(x.clone(), MaxPoolOptions::new([2, 2]))
            };
            let r = tensor(
                random(y.dims().iter().product(), &mut ChaCha8Rng::seed_from_u64(1)),
                y.dims(),
                &device,
            );
            let grads = (y.clone() * r).sum().backward();
            (host(y), host(x.grad(&grads).expect("a gradient")))
        };
        assert_eq!(run(true), run(false), "{dims:?}");
    }
}

#[test]
fn conv_block_layer_matches_burn_with_batch_norm_and_other_activations() {
    // The block's own path: batch norm and non-ReLU activations use our convolution without
    // the fused ReLU, burn's norm and activation, then our pool.
    let device = Device::flex().autodiff();
    for (batch_norm, activation) in [
        (true, Activation::Relu),
        (false, Activation::Tanh),
        (true, Activation::Gelu),
        (false, Activation::Relu),
    ] {
        let block = ConvBlock::new(3, 5, 3, batch_norm, true, 11, &device);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let x = tensor(random(2 * 3 * 7 * 9, &mut rng), [2, 3, 7, 9], &device).require_grad();
        let ours = block.forward(x.clone(), activation);
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let mut reference = conv2d(
            x.clone(),
            block.weight.val(),
            Some(block.bias.val()),
            options,
        );
        if let Some(norm) = &block.norm {
            reference = norm.forward(reference);
        }
        reference = apprentice::models::layers::activate(reference, activation);
        reference = max_pool2d(reference, MaxPoolOptions::new([2, 2]));
        let case = Case::new(2, 3, 7, 9, 5, 3, 1, activation == Activation::Relu, true);
        let r = tensor(random(2 * 5 * 3 * 4, &mut rng), [2, 5, 3, 4], &device);
        let g_ours = (ours.clone() * r.clone()).sum().backward();
        let g_ref = (reference.clone() * r).sum().backward();
        assert_close("output", &case, &host(ours), &host(reference), 1e-5);
        assert_close(
            "input gradient",
            &case,
            &host(x.grad(&g_ours).unwrap()),
            &host(x.grad(&g_ref).unwrap()),
            1e-5,
        );
        assert_close(
            "weight gradient",
            &case,
            &host(block.weight.val().grad(&g_ours).unwrap()),
            &host(block.weight.val().grad(&g_ref).unwrap()),
            1e-5,
        );
    }
}
