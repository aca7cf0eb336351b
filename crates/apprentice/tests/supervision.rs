//! Supervision complexity: small cases computed by hand, scale invariance of the adjusted
//! measure, agreement of the block and trace kernels where theory says they agree, the target
//! helpers, and errors instead of panics.

use apprentice::backend::ComputeDevice;
use apprentice::complexity::{
    ComplexityError, ConditionMethod, FactoredKernel, KernelKind, Ntk, SolverOptions, Targets,
    empirical_ntk, supervision_complexity,
};
use apprentice::data::SampleShape;
use apprentice::models::{Activation, CnnSpec, ModelSpec, Network};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn exact(relative_ridge: f64) -> SolverOptions {
    SolverOptions {
        relative_ridge,
        ..SolverOptions::default()
    }
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * a.abs().max(b.abs())
}

/// The trace kernel of a small random CNN, a realistic kernel for the invariance checks.
fn network_kernel(kind: KernelKind) -> Ntk {
    let spec = ModelSpec::Cnn(CnnSpec {
        channels: vec![3],
        kernel_size: 3,
        batch_norm: true,
        pool: true,
        hidden: vec![6],
        activation: Activation::Tanh,
        dropout: 0.0,
    });
    let device = ComputeDevice::cpu().inference();
    let network = Network::new(&spec, SampleShape::image(1, 6, 6), 4, 3, &device).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let inputs: Vec<f32> = (0..12 * 36).map(|_| rng.random_range(-1.0..1.0)).collect();
    empirical_ntk(&network, &inputs, kind).unwrap()
}

#[test]
fn a_diagonal_kernel_by_hand() {
    // K = diag(2, 8), y = (1, 2): yᵀK⁻¹y = 1/2 + 4/8 = 1; tr K = 10; adjusted = √10 / 2.
    let kernel = Ntk::new(KernelKind::Trace, 2, 1, vec![2.0, 0.0, 0.0, 8.0]).unwrap();
    let targets = Targets::new(vec![1.0, 2.0], 2, 1).unwrap();
    let result = supervision_complexity(&kernel, &targets, &exact(0.0)).unwrap();
    assert!(close(result.complexity, 1.0, 1e-14));
    assert!(close(result.adjusted, 10f64.sqrt() / 2.0, 1e-14));
    assert!(close(result.condition_number, 4.0, 1e-14));
    assert_eq!(result.condition_method, ConditionMethod::Eigenvalues);
    assert_eq!(result.ridge, 0.0);
}

#[test]
fn a_coupled_kernel_with_two_target_columns_by_hand() {
    // K = [[2, 1], [1, 2]], K⁻¹ = [[2, −1], [−1, 2]]/3. Columns y₁ = (1, 1): 2/3;
    // y₂ = (1, −1): 6/3 = 2. Total 8/3; tr K = 4; adjusted = √(32/3)/2; eigenvalues 1 and 3.
    let kernel = Ntk::new(KernelKind::Trace, 2, 2, vec![2.0, 1.0, 1.0, 2.0]).unwrap();
    let targets = Targets::new(vec![1.0, 1.0, 1.0, -1.0], 2, 2).unwrap();
    let result = supervision_complexity(&kernel, &targets, &exact(0.0)).unwrap();
    assert!(close(result.complexity, 8.0 / 3.0, 1e-14));
    assert!(close(result.adjusted, (32.0f64 / 3.0).sqrt() / 2.0, 1e-14));
    assert!(close(result.condition_number, 3.0, 1e-14));
}

#[test]
fn the_ridge_is_relative_to_the_mean_diagonal() {
    // ρ = 0.5 on diag(2, 8): λ = 0.5 · 10/2 = 2.5, so y = (1, 0) gives 1/4.5.
    let kernel = Ntk::new(KernelKind::Trace, 2, 1, vec![2.0, 0.0, 0.0, 8.0]).unwrap();
    let targets = Targets::new(vec![1.0, 0.0], 2, 1).unwrap();
    let result = supervision_complexity(&kernel, &targets, &exact(0.5)).unwrap();
    assert!(close(result.ridge, 2.5, 1e-14));
    assert!(close(result.complexity, 1.0 / 4.5, 1e-14));
    assert!(close(result.condition_number, 10.5 / 4.5, 1e-14));
}

#[test]
fn the_adjusted_complexity_ignores_the_kernels_scale() {
    for kind in [KernelKind::Trace, KernelKind::Block] {
        let kernel = network_kernel(kind);
        let targets = Targets::random_labels(12, 4, 1).unwrap();
        for rho in [0.0, 1e-6, 1e-2] {
            let reference = supervision_complexity(&kernel, &targets, &exact(rho)).unwrap();
            for scale in [1e-3, 0.37, 250.0, 1e4] {
                let scaled =
                    supervision_complexity(&kernel.scaled(scale), &targets, &exact(rho)).unwrap();
                assert!(
                    close(scaled.adjusted, reference.adjusted, 1e-9),
                    "{kind:?} ρ={rho} s={scale}"
                );
                assert!(close(scaled.complexity * scale, reference.complexity, 1e-9));
                assert!(close(
                    scaled.condition_number,
                    reference.condition_number,
                    1e-6
                ));
                assert!(close(
                    scaled.kernel_trace,
                    reference.kernel_trace * scale,
                    1e-12
                ));
            }
        }
    }
}

#[test]
fn the_block_kernel_of_a_kronecker_product_agrees_with_its_trace_kernel() {
    // For K ⊗ I_C both complexities are Σ_c y_cᵀK⁻¹y_c; the block trace is C times larger.
    let trace = network_kernel(KernelKind::Trace);
    let (n, c) = (trace.examples(), 3);
    let mut block = vec![0.0; n * c * n * c];
    for i in 0..n {
        for j in 0..n {
            for o in 0..c {
                block[(i * c + o) * n * c + j * c + o] = trace.get(i, j);
            }
        }
    }
    let block = Ntk::new(KernelKind::Block, n, c, block).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let logits: Vec<f32> = (0..n * c).map(|_| rng.random_range(-3.0..3.0)).collect();
    let targets = Targets::softened(&logits, c, 2.0).unwrap();
    let from_trace = supervision_complexity(&trace, &targets, &exact(1e-6)).unwrap();
    let from_block = supervision_complexity(&block, &targets, &exact(1e-6)).unwrap();
    assert!(close(from_trace.complexity, from_block.complexity, 1e-8));
    assert!(close(
        from_block.adjusted,
        from_trace.adjusted * (c as f64).sqrt(),
        1e-8
    ));
}

#[test]
fn the_cholesky_bound_never_exceeds_the_exact_condition_number() {
    let kernel = network_kernel(KernelKind::Trace);
    let exact_options = exact(1e-8);
    let bound_options = SolverOptions {
        exact_condition_limit: 0,
        ..exact_options
    };
    let exact = FactoredKernel::new(&kernel, &exact_options).unwrap();
    let bound = FactoredKernel::new(&kernel, &bound_options).unwrap();
    let (exact_value, method) = exact.condition_number();
    assert_eq!(method, ConditionMethod::Eigenvalues);
    let (bound_value, method) = bound.condition_number();
    assert_eq!(method, ConditionMethod::CholeskyBound);
    assert!(bound_value >= 1.0 && bound_value <= exact_value * (1.0 + 1e-9));
    let (low, high) = exact.eigenvalue_range().unwrap();
    assert!(close(
        (high + exact.ridge()) / (low + exact.ridge()),
        exact_value,
        1e-12
    ));
}

#[test]
fn target_helpers() {
    let one_hot = Targets::one_hot(&[2, 0], 3).unwrap();
    assert_eq!(one_hot.values(), &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    let random = Targets::random_labels(200, 10, 4).unwrap();
    assert_eq!(random, Targets::random_labels(200, 10, 4).unwrap());
    assert_ne!(random, Targets::random_labels(200, 10, 5).unwrap());
    for row in random.values().chunks(10) {
        assert_eq!(row.iter().sum::<f64>(), 1.0);
        assert_eq!(row.iter().filter(|&&v| v == 1.0).count(), 1);
    }
    let logits = [1.0f32, 2.0, 4.0, -50.0, 0.0, 50.0];
    let soft = Targets::softened(&logits, 3, 1.0).unwrap();
    let e = [(-3.0f64).exp(), (-2.0f64).exp(), 1.0];
    let total: f64 = e.iter().sum();
    for (found, expected) in soft.values()[..3].iter().zip(e.iter().map(|v| v / total)) {
        assert!(close(*found, expected, 1e-12));
    }
    assert!(soft.values()[5] > 1.0 - 1e-12);
    // A high temperature flattens towards uniform.
    let flat = Targets::softened(&logits, 3, 1e6).unwrap();
    assert!(flat.values().iter().all(|v| (v - 1.0 / 3.0).abs() < 1e-4));
}

#[test]
fn bad_settings_are_errors_not_panics() {
    let kernel = Ntk::new(KernelKind::Trace, 2, 1, vec![2.0, 0.0, 0.0, 8.0]).unwrap();
    let targets = Targets::new(vec![1.0, 2.0, 3.0], 3, 1).unwrap();
    assert!(matches!(
        supervision_complexity(&kernel, &targets, &exact(0.0)),
        Err(ComplexityError::Shape { .. })
    ));
    let indefinite = Ntk::new(KernelKind::Trace, 2, 1, vec![1.0, 2.0, 2.0, 1.0]).unwrap();
    let two = Targets::new(vec![1.0, 0.0], 2, 1).unwrap();
    assert!(matches!(
        supervision_complexity(&indefinite, &two, &exact(0.0)),
        Err(ComplexityError::NotPositiveDefinite { pivot: 1, .. })
    ));
    let zero = Ntk::new(KernelKind::Trace, 2, 1, vec![0.0; 4]).unwrap();
    assert!(matches!(
        supervision_complexity(&zero, &two, &exact(1e-6)),
        Err(ComplexityError::Invalid(_))
    ));
    assert!(supervision_complexity(&kernel, &two, &exact(-1.0)).is_err());
    assert!(supervision_complexity(&kernel, &two, &exact(f64::NAN)).is_err());
    let block = Ntk::new(KernelKind::Block, 1, 2, vec![1.0, 0.0, 0.0, 1.0]).unwrap();
    let wrong_columns = Targets::new(vec![1.0, 0.0, 0.0], 1, 3).unwrap();
    assert!(supervision_complexity(&block, &wrong_columns, &exact(0.0)).is_err());
    assert!(Targets::one_hot(&[3], 3).is_err());
    assert!(Targets::one_hot(&[], 3).is_err());
    assert!(Targets::random_labels(0, 3, 0).is_err());
    assert!(Targets::softened(&[1.0, 2.0], 2, 0.0).is_err());
    assert!(Targets::softened(&[1.0, 2.0], 2, f64::INFINITY).is_err());
    assert!(Targets::softened(&[1.0, 2.0, 3.0], 2, 1.0).is_err());
    assert!(Targets::softened(&[1.0, f32::NAN], 2, 1.0).is_err());
    assert!(Targets::new(vec![f64::NAN], 1, 1).is_err());
    assert!(Ntk::new(KernelKind::Trace, 1, 1, vec![f64::INFINITY]).is_err());
}
