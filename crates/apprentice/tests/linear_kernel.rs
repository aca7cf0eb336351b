//! The linear layer on every core (`models::kernels::linear_forward`) against burn's own
//! `Linear::forward`: the output and the gradients of the input, the weight and the bias equal
//! bit for bit, on the shapes of the BERT encoder's layers and on odd ones, with and without
//! autodiff, and the same bits on 1 and 2 threads.

mod common;

use apprentice::models::kernels::linear_forward;
use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use common::bits::{assert_same_bits, on_threads};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `[batch, len, d_in] → d_out`: BERT-sized (fine-tuning batches of 32 × 64 word pieces of
/// all-MiniLM-L6-v2), the language-model run's (a student's steps of 4 snippets, SmolLM2's
/// scoring batches of 32), odd sizes, and fewer rows than the split threshold.
const CASES: &[(usize, usize, usize, usize)] = &[
    (32, 64, 384, 1536),
    (32, 64, 1536, 384),
    (32, 45, 1536, 384),
    (32, 45, 384, 1536),
    (4, 24, 128, 384),
    (4, 23, 384, 128),
    (32, 24, 576, 1536),
    (7, 23, 384, 384),
    (5, 200, 70, 66),
    (3, 300, 130, 200),
    (4, 32, 16, 100),
    (3, 37, 13, 29),
    (1, 5, 16, 8),
    (2, 40, 1, 3),
];

fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..=1.0)).collect()
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("float32")
}

/// The layer of the case with seeded weights, on `device`.
fn layer(d_in: usize, d_out: usize, seed: u64, device: &Device) -> Linear {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut layer = LinearConfig::new(d_in, d_out).init(device);
    layer.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(random(d_in * d_out, &mut rng), [d_in, d_out]),
        device,
    ));
    layer.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(random(d_out, &mut rng), [d_out]),
        device,
    )));
    layer
}

/// Output, input gradient, weight gradient, bias gradient of `sum(y ⊙ r)`.
type Results = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

fn run(case: (usize, usize, usize, usize), ours: bool) -> Results {
    let (batch, len, d_in, d_out) = case;
    let device = Device::flex().autodiff();
    let linear = layer(d_in, d_out, 7, &device);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let x = Tensor::<3>::from_data(
        TensorData::new(random(batch * len * d_in, &mut rng), [batch, len, d_in]),
        &device,
    )
    .require_grad();
    let r = Tensor::<3>::from_data(
        TensorData::new(random(batch * len * d_out, &mut rng), [batch, len, d_out]),
        &device,
    );
    let y = if ours {
        linear_forward(&linear, x.clone())
    } else {
        linear.forward(x.clone())
    };
    assert_eq!(y.dims(), [batch, len, d_out]);
    let grads = (y.clone() * r).sum().backward();
    let bias = linear.bias.as_ref().expect("a bias").val();
    (
        host(y),
        host(x.grad(&grads).expect("an input gradient")),
        host(linear.weight.val().grad(&grads).expect("a weight gradient")),
        host(bias.grad(&grads).expect("a bias gradient")),
    )
}

fn assert_bits(what: &str, case: (usize, usize, usize, usize), ours: &[f32], burn: &[f32]) {
    assert_same_bits(&format!("{what} {case:?}"), ours, burn);
}

#[test]
fn forward_and_gradients_are_burns_bit_for_bit() {
    for &case in CASES {
        let ours = run(case, true);
        let burn = run(case, false);
        assert_bits("output", case, &ours.0, &burn.0);
        assert_bits("input gradient", case, &ours.1, &burn.1);
        assert_bits("weight gradient", case, &ours.2, &burn.2);
        assert_bits("bias gradient", case, &ours.3, &burn.3);
    }
}

#[test]
fn without_autodiff_the_output_is_burns_bit_for_bit() {
    let device = Device::flex();
    for &(batch, len, d_in, d_out) in CASES {
        let linear = layer(d_in, d_out, 3, &device);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x = Tensor::<3>::from_data(
            TensorData::new(random(batch * len * d_in, &mut rng), [batch, len, d_in]),
            &device,
        );
        let ours = host(linear_forward(&linear, x.clone()));
        let burn = host(linear.forward(x));
        assert_bits("output", (batch, len, d_in, d_out), &ours, &burn);
    }
}

#[test]
fn one_thread_and_two_give_the_same_bits() {
    let on = |threads: usize| on_threads(threads, || run(CASES[0], true));
    let (one, two) = (on(1), on(2));
    assert_bits("output", CASES[0], &one.0, &two.0);
    assert_bits("input gradient", CASES[0], &one.1, &two.1);
    assert_bits("weight gradient", CASES[0], &one.2, &two.2);
}
