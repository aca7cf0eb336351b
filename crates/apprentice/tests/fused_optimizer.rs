//! The fused optimiser updates (`apprentice::distill::fused`) against burn's optimisers and
//! against PyTorch's update formulas: the same parameters to the bit as burn's Adam, AdamW and
//! SGD over several steps of random gradients, within float rounding of an independent `f64`
//! evaluation of `torch.optim`'s documented algorithms, and optimiser states that load in
//! either direction between the two.

use apprentice::distill::optim::{OptimizerKind, OptimizerSpec};
use burn::module::{Module, Param, ParamId};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Parameters of ranks 1, 2 and 4 (bias, dense weight, convolution kernel).
#[derive(Module, Debug)]
struct Weights {
    bias: Param<Tensor<1>>,
    dense: Param<Tensor<2>>,
    kernel: Param<Tensor<4>>,
}

// The middle one has more elements than one parallel chunk of the fused update (32 Ki), in
// three uneven chunks.
const SHAPES: [&[usize]; 3] = [&[7], &[300, 250], &[3, 2, 3, 3]];

fn random(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

fn tensor<const D: usize>(values: Vec<f32>, shape: &[usize], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape.to_vec()), device)
}

/// Random initial weights, the same for every optimiser compared.
fn weights(seed: u64) -> Weights {
    // Trained parameters live on the gradient-recording device, as in training.
    let device = Device::flex().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = SHAPES.map(|shape| random(&mut rng, shape.iter().product(), 1.0));
    Weights {
        bias: Param::initialized(
            ParamId::from(1),
            tensor(std::mem::take(&mut values[0]), SHAPES[0], &device),
        ),
        dense: Param::initialized(
            ParamId::from(2),
            tensor(std::mem::take(&mut values[1]), SHAPES[1], &device),
        ),
        kernel: Param::initialized(
            ParamId::from(3),
            tensor(std::mem::take(&mut values[2]), SHAPES[2], &device),
        ),
    }
}

/// One step's gradients, host copies first (one vector per parameter), with magnitudes spread
/// over several orders so that ε and the bias corrections matter.
fn gradients(seed: u64, step: usize) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed * 1000 + step as u64);
    SHAPES
        .iter()
        .enumerate()
        .map(|(k, shape)| {
            let scale = [1e-3, 1.0, 30.0][k];
            random(&mut rng, shape.iter().product(), scale)
        })
        .collect()
}

fn to_params(grads: &[Vec<f32>]) -> GradientsParams {
    let device = Device::flex();
    let mut params = GradientsParams::new();
    params.register::<1>(
        ParamId::from(1),
        tensor(grads[0].clone(), SHAPES[0], &device),
    );
    params.register::<2>(
        ParamId::from(2),
        tensor(grads[1].clone(), SHAPES[1], &device),
    );
    params.register::<4>(
        ParamId::from(3),
        tensor(grads[2].clone(), SHAPES[2], &device),
    );
    params
}

fn values(weights: &Weights) -> Vec<Vec<f32>> {
    let host = |data: TensorData| data.try_to_vec::<f32>().unwrap();
    vec![
        host(weights.bias.val().into_data()),
        host(weights.dense.val().into_data()),
        host(weights.kernel.val().into_data()),
    ]
}

/// burn's optimiser for a spec, configured as apprentice configured it before the fused
/// updates: the reference they must match exactly.
fn burn_reference(spec: &OptimizerSpec) -> ModuleOptimizer {
    let decay = (spec.weight_decay > 0.0).then(|| WeightDecayConfig::new(spec.weight_decay as f32));
    match spec.optimizer {
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum((spec.momentum > 0.0).then_some(MomentumConfig {
                momentum: spec.momentum,
                dampening: 0.0,
                nesterov: spec.nesterov,
            }))
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Adamw => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(spec.weight_decay as f32)
            .init(),
    }
}

fn specs() -> Vec<(&'static str, OptimizerSpec)> {
    let spec = |optimizer, lr, momentum, nesterov, weight_decay| OptimizerSpec {
        optimizer,
        lr,
        momentum,
        nesterov,
        weight_decay,
        ..OptimizerSpec::default()
    };
    vec![
        ("adam", spec(OptimizerKind::Adam, 1e-3, 0.9, false, 0.0)),
        (
            "adam, L2",
            spec(OptimizerKind::Adam, 3e-3, 0.9, false, 0.05),
        ),
        ("adamw", spec(OptimizerKind::Adamw, 1e-3, 0.9, false, 0.0)),
        (
            "adamw, decay",
            spec(OptimizerKind::Adamw, 2e-3, 0.9, false, 0.1),
        ),
        ("sgd", spec(OptimizerKind::Sgd, 0.05, 0.0, false, 0.0)),
        (
            "sgd, momentum",
            spec(OptimizerKind::Sgd, 0.01, 0.9, false, 0.0),
        ),
        (
            "sgd, nesterov, L2",
            spec(OptimizerKind::Sgd, 0.02, 0.8, true, 1e-3),
        ),
    ]
}

/// The learning rate of step `step`: it changes, as under a schedule.
fn lr_at(spec: &OptimizerSpec, step: usize) -> f64 {
    spec.lr * (1.0 - 0.1 * step as f64)
}

const STEPS: usize = 6;

fn assert_identical(name: &str, step: usize, ours: &[Vec<f32>], reference: &[Vec<f32>]) {
    for (k, (a, b)) in ours.iter().zip(reference).enumerate() {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                x.to_bits() == y.to_bits(),
                "{name}: step {step}, parameter {k}[{i}]: fused {x:e}, burn {y:e}"
            );
        }
    }
}

#[test]
fn fused_updates_equal_burns_optimisers_to_the_bit() {
    for (name, spec) in specs() {
        for fused in [true, false] {
            let mut ours = if fused {
                spec.build()
            } else {
                spec.build_unfused()
            };
            let mut reference = burn_reference(&spec);
            let (mut a, mut b) = (weights(1), weights(1));
            for step in 0..STEPS {
                let grads = gradients(2, step);
                let lr = lr_at(&spec, step);
                a = ours.step(lr, a, to_params(&grads));
                b = reference.step(lr, b, to_params(&grads));
                assert_identical(name, step, &values(&a), &values(&b));
            }
        }
    }
}

/// The update must not write through a buffer that another tensor still shares (a snapshot of
/// the model kept for early stopping, say).
#[test]
fn shared_parameters_are_copied_not_overwritten() {
    for (name, spec) in specs() {
        let mut ours = spec.build();
        let mut reference = burn_reference(&spec);
        let (mut a, mut b) = (weights(3), weights(3));
        for step in 0..3 {
            let kept = a.clone();
            let kept_values = values(&kept);
            let grads = gradients(4, step);
            a = ours.step(spec.lr, a, to_params(&grads));
            b = reference.step(spec.lr, b, to_params(&grads));
            assert_eq!(values(&kept), kept_values, "{name}: the kept copy changed");
            assert_identical(name, step, &values(&a), &values(&b));
        }
    }
}

/// `torch.optim.Adam`, `AdamW` and `SGD` as their documentation states the algorithms, in f64.
struct TorchReference {
    spec: OptimizerSpec,
    step: usize,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
}

impl TorchReference {
    fn new(spec: OptimizerSpec) -> Self {
        Self {
            spec,
            step: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    fn step(&mut self, lr: f64, params: &mut [Vec<f64>], grads: &[Vec<f32>]) {
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
        let wd = self.spec.weight_decay;
        if self.m.is_empty() {
            self.m = params.iter().map(|p| vec![0.0; p.len()]).collect();
            self.v = self.m.clone();
        }
        for (k, p) in params.iter_mut().enumerate() {
            for i in 0..p.len() {
                let mut g = grads[k][i] as f64;
                match self.spec.optimizer {
                    OptimizerKind::Adam | OptimizerKind::Adamw => {
                        if self.spec.optimizer == OptimizerKind::Adamw {
                            p[i] *= 1.0 - lr * wd;
                        } else {
                            g += wd * p[i];
                        }
                        let m = &mut self.m[k][i];
                        let v = &mut self.v[k][i];
                        *m = b1 * *m + (1.0 - b1) * g;
                        *v = b2 * *v + (1.0 - b2) * g * g;
                        let bias_1 = 1.0 - b1.powi(t);
                        let bias_2 = 1.0 - b2.powi(t);
                        let denom = v.sqrt() / bias_2.sqrt() + eps;
                        p[i] -= lr / bias_1 * *m / denom;
                    }
                    OptimizerKind::Sgd => {
                        g += wd * p[i];
                        let mu = self.spec.momentum;
                        if mu > 0.0 {
                            let buf = &mut self.m[k][i];
                            *buf = if t == 1 { g } else { mu * *buf + g };
                            g = if self.spec.nesterov {
                                g + mu * *buf
                            } else {
                                *buf
                            };
                        }
                        p[i] -= lr * g;
                    }
                }
            }
        }
    }
}

#[test]
fn fused_updates_follow_pytorchs_formulas() {
    for (name, spec) in specs() {
        let mut ours = spec.build();
        let mut torch = TorchReference::new(spec.clone());
        let mut a = weights(5);
        let mut expected: Vec<Vec<f64>> = values(&a)
            .into_iter()
            .map(|v| v.into_iter().map(f64::from).collect())
            .collect();
        for step in 0..STEPS {
            let grads = gradients(6, step);
            let lr = lr_at(&spec, step);
            a = ours.step(lr, a, to_params(&grads));
            torch.step(lr, &mut expected, &grads);
            for (k, (got, want)) in values(&a).iter().zip(&expected).enumerate() {
                for (i, (&x, &y)) in got.iter().zip(want).enumerate() {
                    let tolerance = 2e-6 * (1.0 + y.abs());
                    assert!(
                        (x as f64 - y).abs() <= tolerance,
                        "{name}: step {step}, parameter {k}[{i}]: fused {x:e}, PyTorch's formula {y:e}"
                    );
                }
            }
        }
    }
}

/// A state saved by burn's optimiser (every checkpoint written before the fused updates)
/// resumes in the fused one, and the other way round, with the same next updates.
#[test]
fn optimiser_states_load_in_both_directions() {
    for (name, spec) in specs() {
        // burn's state into ours.
        let mut reference = burn_reference(&spec);
        let mut a = weights(7);
        for step in 0..3 {
            a = reference.step(spec.lr, a, to_params(&gradients(8, step)));
        }
        let bytes = reference.into_bytes().unwrap().to_vec();
        let mut ours = spec
            .build()
            .restore(bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut b = a.clone();
        for step in 3..STEPS {
            let grads = gradients(8, step);
            a = reference.step(spec.lr, a, to_params(&grads));
            b = ours.step(spec.lr, b, to_params(&grads));
            assert_identical(name, step, &values(&b), &values(&a));
        }

        // Ours into burn's.
        let mut ours = spec.build();
        let mut a = weights(9);
        for step in 0..3 {
            a = ours.step(spec.lr, a, to_params(&gradients(10, step)));
        }
        let bytes = ours.state_bytes().unwrap();
        let mut reference = burn_reference(&spec)
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .unwrap();
        let mut b = a.clone();
        for step in 3..STEPS {
            let grads = gradients(10, step);
            a = ours.step(spec.lr, a, to_params(&grads));
            b = reference.step(spec.lr, b, to_params(&grads));
            assert_identical(name, step, &values(&a), &values(&b));
        }
    }
}
