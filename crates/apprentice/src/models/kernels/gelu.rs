//! BERT's exact GELU and its derivative, element by element on every core.
//!
//! The formulas are those of burn's CPU backend (flex), operation for operation and with the same
//! `erf` (`libm::erff`'s floats, sixteen or eight at a time), so switching to these kernels
//! changes no bit of a result; they split the elements over rayon's pool, where flex runs them
//! on one thread, and the forward pass keeps `1 + erf(x / √2)` for the backward one, which flex
//! evaluates again. An element's value never depends on which thread computes it.

use rayon::prelude::*;

use super::erf::erf_in_place;
use super::exp::exp_in_place;

/// The fewest elements per task: enough that scheduling costs nothing next to 16 Ki `erf`s.
const CHUNK: usize = 1 << 14;

/// `1 + erf(x / √2)` of every element of `x`, the part of GELU that both passes share, into
/// `out` (the same length), with `erf` eight elements at a time (the same floats as
/// `libm::erff`, see [`erf_in_place`]).
fn one_plus_erf(x: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = x / core::f32::consts::SQRT_2;
    }
    erf_in_place(out);
    for o in out.iter_mut() {
        *o += 1.0;
    }
}

/// `g · gelu'(x)` as flex's `gelu_backward` computes it, for a block of elements, given
/// `one_plus_erf(x)`: `exp(−x²/2)` is taken for the whole block first ([`exp_in_place`], the
/// floats of `f32::exp`), then `g · (½(1 + erf) + x · exp(−x²/2) / √(2π))` in flex's order.
fn gelu_backward(x: &[f32], one_plus_erf: &[f32], g: &[f32], dx: &mut [f32]) {
    // Computed at run time in f32, as flex does, so that the constant is the same float.
    let inv_sqrt_2pi: f32 = 1.0 / (2.0 * core::f32::consts::PI).sqrt();
    for (d, &x) in dx.iter_mut().zip(x) {
        *d = -0.5 * x * x;
    }
    exp_in_place(dx);
    for (((d, &x), &k), &g) in dx.iter_mut().zip(x).zip(one_plus_erf).zip(g) {
        let cdf = 0.5 * k;
        let pdf = inv_sqrt_2pi * *d;
        *d = g * (cdf + x * pdf);
    }
}

/// GELU of every element of `x`, `0.5 · x · (1 + erf(x / √2))` as flex computes it; with
/// `keep`, also each element's `1 + erf(x / √2)` for [`backward`], which then evaluates no
/// `erf` (the costliest part of both passes) and still makes flex's floats.
pub(super) fn forward(x: &[f32], keep: bool) -> (Vec<f32>, Option<Vec<f32>>) {
    let mut kept = super::parallel::zeros(x.len());
    kept.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(k, x)| one_plus_erf(x, k));
    // `erf` needs whole blocks of arguments, so `1 + erf` is worked out first, then
    // `0.5 · x · (1 + erf)` in flex's order.
    let mut out = Vec::new();
    x.par_iter()
        .with_min_len(CHUNK)
        .zip(&kept)
        .map(|(&x, &k)| 0.5 * x * k)
        .collect_into_vec(&mut out);
    (out, keep.then_some(kept))
}

/// The gradient with respect to `x` of GELU applied to `x`, given what [`forward`] kept for it
/// and the gradient `dy` of the output (all the same length).
pub(super) fn backward(x: &[f32], one_plus_erf: &[f32], dy: &[f32]) -> Vec<f32> {
    assert!(
        x.len() == dy.len() && x.len() == one_plus_erf.len(),
        "GELU's input, kept values and output gradient differ in size"
    );
    let mut dx = super::parallel::zeros(x.len());
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .zip(one_plus_erf.par_chunks(CHUNK))
        .zip(dy.par_chunks(CHUNK))
        .for_each(|(((dx, x), k), g)| gelu_backward(x, k, g, dx));
    dx
}
