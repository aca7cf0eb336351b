//! `Yᵀ(K + λI)⁻¹Y` against an exact reference (mpmath, 60 digits, from the same float64 kernel
//! entries) on a real, ill-conditioned kernel: the empirical NTK (trace kernel) of a digits
//! student, condition number above 1e8 with apprentice's default ridge. The kernel file and the
//! command that made it are in tests/fixtures/complexity (make_ridge_reference.sh).

use std::path::PathBuf;

use apprentice::complexity::study::dump::read_kernel_dump;
use apprentice::complexity::{FactoredKernel, SolverOptions, Targets};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    relative_ridge: f64,
    trace: f64,
    ridge: f64,
    condition_number: f64,
    targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    outputs: usize,
    values: Vec<f64>,
    complexity: f64,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/complexity")
        .join(name)
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs())
}

#[test]
fn the_complexity_of_an_ill_conditioned_ntk_matches_the_exact_reference() {
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(fixture("ridge_reference.json")).unwrap())
            .unwrap();
    let dump = read_kernel_dump(&fixture("ridge-kernel.safetensors")).unwrap();
    let options = SolverOptions::default();
    assert_eq!(options.relative_ridge, reference.relative_ridge);
    let factored = FactoredKernel::new(&dump.kernel, &options).unwrap();
    assert!(relative(factored.kernel_trace(), reference.trace) < 1e-12);
    assert!(relative(factored.ridge(), reference.ridge) < 1e-12);
    // The case is as hard as claimed: float64 keeps about 16 - 8 = 8 digits of the answer.
    assert!(
        reference.condition_number > 1e8,
        "{}",
        reference.condition_number
    );
    let (condition, _) = factored.condition_number();
    assert!(
        relative(condition, reference.condition_number) < 1e-3,
        "condition {condition:e} vs {:e}",
        reference.condition_number
    );
    let n = dump.kernel.examples();
    for target in &reference.targets {
        let targets = Targets::new(target.values.clone(), n, target.outputs).unwrap();
        let measured = factored.measure(&targets).unwrap();
        // Cholesky in float64 loses about log10(condition) digits: 1e-6 is what is left with
        // a margin, and a wrong ridge, a float32 step or a transposed factor is far outside it.
        let error = relative(measured.complexity, target.complexity);
        assert!(
            error < 1e-6,
            "{}: {:.12e} vs exact {:.12e} (relative {error:e})",
            target.name,
            measured.complexity,
            target.complexity
        );
    }
    // The two targets differ by orders of magnitude, so the check can tell them apart.
    let [a, b] = [&reference.targets[0], &reference.targets[1]];
    assert!(relative(a.complexity, b.complexity) > 0.5);
}
