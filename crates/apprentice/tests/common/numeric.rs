//! Inputs and checks shared by the kernel tests: seeded uniform values, a tensor's values on
//! the host, and a gradient against central differences of an f64 formula.

use burn::tensor::Tensor;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `len` values uniform in `[-spread, spread]`, from a generator seeded with `seed`.
pub fn uniform(len: usize, seed: u64, spread: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| rng.random_range(-spread..=spread))
        .collect()
}

/// A float32 tensor's values in row-major order.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("float32")
}

/// Fails unless each element of `gradient` is within `tolerance` of the central difference
/// `(f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h` at `point` (the inputs, widened to f64).
pub fn assert_central_differences(
    gradient: &[f32],
    point: &[f32],
    f: impl Fn(&[f64]) -> f64,
    h: f64,
    tolerance: f64,
) {
    let base: Vec<f64> = point.iter().map(|&v| f64::from(v)).collect();
    for (index, &g) in gradient.iter().enumerate() {
        let (mut up, mut down) = (base.clone(), base.clone());
        up[index] += h;
        down[index] -= h;
        let numeric = (f(&up) - f(&down)) / (2.0 * h);
        assert!(
            (f64::from(g) - numeric).abs() < tolerance,
            "element {index}: gradient {g}, central difference {numeric}"
        );
    }
}
