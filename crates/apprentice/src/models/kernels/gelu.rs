//! BERT's exact GELU and its derivative, element by element on every core.
//!
//! The formulas are those of burn's CPU backend (flex), operation for operation and with the same
//! `erf` (`libm::erff`), so switching to these kernels changes no bit of a result; they only
//! split the elements over rayon's pool, where flex runs them on one thread. An element's value
//! never depends on which thread computes it.

use rayon::prelude::*;

/// Elements per task: large enough that scheduling costs nothing next to 16 Ki `erf`s.
const CHUNK: usize = 1 << 14;

/// `0.5 · x · (1 + erf(x / √2))`, as flex computes it.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x / core::f32::consts::SQRT_2))
}

/// `g · gelu'(x)`, as flex's `gelu_backward` computes it.
fn gelu_backward(x: f32, g: f32, inv_sqrt_2pi: f32) -> f32 {
    let cdf = 0.5 * (1.0 + libm::erff(x / core::f32::consts::SQRT_2));
    let pdf = inv_sqrt_2pi * (-0.5 * x * x).exp();
    g * (cdf + x * pdf)
}

/// GELU of every element of `x`.
pub(super) fn forward(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(out, x)| {
            for (o, &x) in out.iter_mut().zip(x) {
                *o = gelu(x);
            }
        });
    out
}

/// The gradient with respect to `x` of GELU applied to `x`, given the gradient `dy` of its
/// output (same length).
pub(super) fn backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(
        x.len(),
        dy.len(),
        "GELU's input and output gradient differ in size"
    );
    // Computed at run time in f32, as flex does, so that the constant is the same float.
    let inv_sqrt_2pi: f32 = 1.0 / (2.0 * core::f32::consts::PI).sqrt();
    let mut dx = vec![0.0; x.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dx, (x, dy))| {
            for ((d, &x), &g) in dx.iter_mut().zip(x).zip(dy) {
                *d = gelu_backward(x, g, inv_sqrt_2pi);
            }
        });
    dx
}
