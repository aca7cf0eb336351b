//! The empirical NTK: the fast path against burn's autodiff on random MLPs and CNNs (biases,
//! batch norm in evaluation mode, pooling), symmetry and positive semi-definiteness, and small
//! cases computed by hand.

use apprentice::backend::{ComputeDevice, matrix, to_host};
use apprentice::complexity::{
    ComplexityError, HostNetwork, KernelKind, Ntk, empirical_ntk, empirical_ntk_brute_force,
};
use apprentice::data::SampleShape;
use apprentice::models::{Activation, CnnSpec, MlpSpec, ModelSpec, Network};
use burn::module::{Param, RunningState};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const AGREEMENT: f64 = 1e-4;

fn random_values(len: usize, low: f32, high: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(low..high)).collect()
}

fn mlp(hidden: Vec<usize>, activation: Activation) -> ModelSpec {
    ModelSpec::Mlp(MlpSpec {
        hidden,
        activation,
        dropout: 0.25,
    })
}

fn cnn(
    channels: Vec<usize>,
    kernel_size: usize,
    batch_norm: bool,
    pool: bool,
    activation: Activation,
) -> ModelSpec {
    ModelSpec::Cnn(CnnSpec {
        channels,
        kernel_size,
        batch_norm,
        pool,
        hidden: vec![5],
        activation,
        dropout: 0.25,
    })
}

fn vector(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let len = values.len();
    Tensor::from_data(TensorData::new(values, [len]), device)
}

/// Gives every batch norm statistics and an affine map far from the identity, as training would,
/// so that the test sees evaluation mode rather than a no-op.
fn perturb_batch_norms(network: &mut Network, seed: u64, device: &Device) {
    for (index, block) in network.blocks.iter_mut().enumerate() {
        if let Some(norm) = block.norm.as_mut() {
            let channels = norm.gamma.val().dims()[0];
            let seed = seed + 10 * index as u64;
            norm.gamma =
                Param::from_tensor(vector(random_values(channels, 0.5, 2.0, seed), device));
            norm.beta =
                Param::from_tensor(vector(random_values(channels, -0.5, 0.5, seed + 1), device));
            norm.running_mean =
                RunningState::new(vector(random_values(channels, -0.3, 0.3, seed + 2), device));
            norm.running_var =
                RunningState::new(vector(random_values(channels, 0.2, 3.0, seed + 3), device));
        }
    }
}

fn build(spec: &ModelSpec, shape: SampleShape, classes: usize, seed: u64) -> Network {
    let device = ComputeDevice::cpu().inference();
    let mut network = Network::new(spec, shape, classes, seed, &device).unwrap();
    perturb_batch_norms(&mut network, seed, &device);
    network
}

/// Fast and brute-force kernels of both kinds, their agreement, and the checks every kernel must
/// pass; returns the worst relative difference.
fn check_agreement(network: &Network, inputs: &[f32]) -> f64 {
    let device = ComputeDevice::cpu();
    let mut worst: f64 = 0.0;
    for kind in [KernelKind::Trace, KernelKind::Block] {
        let fast = empirical_ntk(network, inputs, kind).unwrap();
        let slow = empirical_ntk_brute_force(network, inputs, kind, &device).unwrap();
        let difference = fast.relative_difference(&slow).unwrap();
        assert!(
            difference < AGREEMENT,
            "{kind:?}: relative difference {difference:e}"
        );
        assert_symmetric_psd(&fast);
        assert_symmetric_psd(&slow);
        worst = worst.max(difference);
    }
    let block = empirical_ntk(network, inputs, KernelKind::Block).unwrap();
    let trace = empirical_ntk(network, inputs, KernelKind::Trace).unwrap();
    assert!(block.to_trace().relative_difference(&trace).unwrap() < 1e-12);
    worst
}

fn assert_symmetric_psd(kernel: &Ntk) {
    let dim = kernel.dim();
    for r in 0..dim {
        for s in 0..r {
            assert_eq!(
                kernel.get(r, s),
                kernel.get(s, r),
                "not symmetric at ({r}, {s})"
            );
        }
    }
    let eigenvalues = kernel.eigenvalues().unwrap();
    let largest = eigenvalues[dim - 1];
    assert!(largest > 0.0);
    assert!(
        eigenvalues[0] >= -1e-6 * largest,
        "smallest eigenvalue {} against largest {largest}",
        eigenvalues[0]
    );
}

#[test]
fn host_forward_pass_matches_the_network() {
    let device = ComputeDevice::cpu().inference();
    let cases = [
        (
            mlp(vec![9, 7], Activation::Gelu),
            SampleShape::image(1, 4, 4),
        ),
        (
            cnn(vec![3, 4], 3, true, true, Activation::Relu),
            SampleShape::image(2, 7, 6),
        ),
        (
            cnn(vec![2], 5, false, false, Activation::LeakyRelu),
            SampleShape::image(1, 5, 5),
        ),
    ];
    for (seed, (spec, shape)) in cases.into_iter().enumerate() {
        let network = build(&spec, shape, 4, seed as u64);
        let inputs = random_values(5 * shape.len(), -1.0, 1.0, 100 + seed as u64);
        let expected = to_host(network.logits(matrix(inputs.clone(), 5, shape.len(), &device)));
        let host = HostNetwork::from_network(&network).unwrap();
        assert_eq!(host.parameter_count(), network.parameter_count());
        let found = host.logits(&inputs).unwrap();
        for (f, e) in found.iter().zip(&expected) {
            assert!(
                (f - f64::from(*e)).abs() < 1e-5 * (1.0 + e.abs() as f64),
                "{f} vs {e}"
            );
        }
    }
}

#[test]
fn fast_ntk_matches_brute_force_on_random_mlps() {
    let shape = SampleShape::image(1, 3, 4);
    let cases = [
        (vec![], Activation::Relu),
        (vec![8], Activation::Relu),
        (vec![8], Activation::Tanh),
        (vec![7, 5], Activation::Relu),
        (vec![6, 5], Activation::Tanh),
        (vec![6], Activation::Gelu),
        (vec![6], Activation::LeakyRelu),
    ];
    for (seed, (hidden, activation)) in cases.into_iter().enumerate() {
        let network = build(&mlp(hidden.clone(), activation), shape, 3, seed as u64);
        let inputs = random_values(6 * shape.len(), -1.5, 1.5, 200 + seed as u64);
        let worst = check_agreement(&network, &inputs);
        println!("mlp {hidden:?} {activation:?}: worst relative difference {worst:.2e}");
    }
}

#[test]
fn fast_ntk_matches_brute_force_on_random_cnns() {
    let cases = [
        // Two blocks with batch norm and pooling, an odd-sized two-channel image.
        (
            cnn(vec![3, 4], 3, true, true, Activation::Relu),
            SampleShape::image(2, 7, 6),
        ),
        (
            cnn(vec![3, 2], 3, true, true, Activation::Tanh),
            SampleShape::image(1, 6, 6),
        ),
        // No batch norm, no pooling, a wider kernel.
        (
            cnn(vec![2], 5, false, false, Activation::Tanh),
            SampleShape::image(1, 5, 5),
        ),
        // Pooling down to a single pixel, after which the last block does not pool.
        (
            cnn(vec![2, 3, 2], 3, true, true, Activation::LeakyRelu),
            SampleShape::image(1, 4, 4),
        ),
    ];
    for (seed, (spec, shape)) in cases.into_iter().enumerate() {
        let network = build(&spec, shape, 3, 50 + seed as u64);
        let inputs = random_values(5 * shape.len(), -1.0, 1.0, 300 + seed as u64);
        let worst = check_agreement(&network, &inputs);
        println!("cnn case {seed}: worst relative difference {worst:.2e}");
    }
}

#[test]
fn a_linear_model_has_the_kernel_of_its_inputs_plus_one() {
    // f(x) = xW + b: ∇_W f_c(x) = x ⊗ e_c, ∇_b f_c = e_c, so K[(i,c),(j,d)] = (x_i·x_j + 1)·[c = d].
    let network = build(&mlp(vec![], Activation::Relu), SampleShape::flat(3), 2, 7);
    let inputs = [1.0f32, 2.0, 0.0, -1.0, 0.5, 3.0];
    let gram = [
        [1.0 + 4.0 + 1.0, -1.0 + 1.0 + 1.0],
        [-1.0 + 1.0 + 1.0, 1.0 + 0.25 + 9.0 + 1.0],
    ];
    let block = empirical_ntk(&network, &inputs, KernelKind::Block).unwrap();
    for r in 0..4 {
        for s in 0..4 {
            let expected = if r % 2 == s % 2 {
                gram[r / 2][s / 2]
            } else {
                0.0
            };
            assert!((block.get(r, s) - expected).abs() < 1e-12, "({r}, {s})");
        }
    }
    let trace = empirical_ntk(&network, &inputs, KernelKind::Trace).unwrap();
    for (i, row) in gram.iter().enumerate() {
        for (j, expected) in row.iter().enumerate() {
            assert!((trace.get(i, j) - expected).abs() < 1e-12);
        }
    }
}

#[test]
fn a_one_unit_relu_network_has_the_kernel_computed_by_hand() {
    // f(x) = w₂·relu(w₁x + b₁) + b₂, with w₁ = 2, b₁ = −1, w₂ = 3, b₂ = 0.5. For h = relu(w₁x+b₁)
    // and m = [w₁x + b₁ > 0]: K(x, x') = w₂²(x x' + 1) m m' + h h' + 1.
    let device = ComputeDevice::cpu().inference();
    let mut network = Network::new(
        &mlp(vec![1], Activation::Relu),
        SampleShape::flat(1),
        1,
        0,
        &device,
    )
    .unwrap();
    let param2 = |v: f32| {
        Param::from_tensor(Tensor::<2>::from_data(
            TensorData::new(vec![v], [1, 1]),
            &device,
        ))
    };
    let param1 = |v: f32| Param::from_tensor(vector(vec![v], &device));
    network.dense[0].weight = param2(2.0);
    network.dense[0].bias = param1(-1.0);
    network.dense[1].weight = param2(3.0);
    network.dense[1].bias = param1(0.5);
    let xs = [2.0f64, 0.25, 1.0];
    let kernel = empirical_ntk(&network, &xs.map(|x| x as f32), KernelKind::Trace).unwrap();
    let features = |x: f64| {
        let z = 2.0 * x - 1.0;
        (z.max(0.0), if z > 0.0 { 1.0 } else { 0.0 })
    };
    for (i, &x) in xs.iter().enumerate() {
        for (j, &y) in xs.iter().enumerate() {
            let ((hx, mx), (hy, my)) = (features(x), features(y));
            let expected = 9.0 * (x * y + 1.0) * mx * my + hx * hy + 1.0;
            assert!(
                (kernel.get(i, j) - expected).abs() < 1e-12,
                "({i}, {j}): {} vs {expected}",
                kernel.get(i, j)
            );
        }
    }
}

#[test]
fn a_network_built_for_training_gives_the_same_kernel() {
    let spec = cnn(vec![2], 3, true, true, Activation::Relu);
    let shape = SampleShape::image(1, 4, 4);
    let plain = build(&spec, shape, 3, 9);
    let device = ComputeDevice::cpu();
    let mut trainable = Network::new(&spec, shape, 3, 9, &device.training()).unwrap();
    perturb_batch_norms(&mut trainable, 9, &device.training());
    let inputs = random_values(4 * shape.len(), -1.0, 1.0, 400);
    let expected = empirical_ntk(&plain, &inputs, KernelKind::Trace).unwrap();
    let fast = empirical_ntk(&trainable, &inputs, KernelKind::Trace).unwrap();
    let slow = empirical_ntk_brute_force(&trainable, &inputs, KernelKind::Trace, &device).unwrap();
    assert!(fast.relative_difference(&expected).unwrap() < 1e-12);
    assert!(slow.relative_difference(&expected).unwrap() < AGREEMENT);
    // Measuring leaves the network as it was: batch norm stayed on its running statistics.
    let again = empirical_ntk(&trainable, &inputs, KernelKind::Trace).unwrap();
    assert_eq!(again, fast);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let network = build(&mlp(vec![4], Activation::Relu), SampleShape::flat(3), 2, 0);
    let device = ComputeDevice::cpu();
    assert!(matches!(
        empirical_ntk(&network, &[], KernelKind::Trace),
        Err(ComplexityError::Empty(_))
    ));
    assert!(matches!(
        empirical_ntk(&network, &[1.0; 4], KernelKind::Trace),
        Err(ComplexityError::Invalid(_))
    ));
    assert!(matches!(
        empirical_ntk(&network, &[1.0, f32::NAN, 0.0], KernelKind::Block),
        Err(ComplexityError::NonFinite(_))
    ));
    assert!(empirical_ntk_brute_force(&network, &[1.0; 5], KernelKind::Trace, &device).is_err());
    assert!(matches!(
        Ntk::new(KernelKind::Trace, 2, 1, vec![1.0; 3]),
        Err(ComplexityError::Shape { .. })
    ));
    assert!(matches!(
        Ntk::new(KernelKind::Block, 0, 1, vec![]),
        Err(ComplexityError::Empty(_))
    ));
}
