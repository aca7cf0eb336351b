//! LayerNorm over the last dimension as burn's autodiff computes it on flex, row by row on every
//! core.
//!
//! On an autodiff tensor burn runs LayerNorm as nine operations (two row means, a subtraction,
//! a square, `+ ε`, `sqrt`, a division, `· γ` and `+ β`) and differentiates each. Apart from
//! the gradients of `γ` and `β`, which sum over rows, all of it is local to a row; within a
//! row the operations, and the left-to-right order of every row sum (flex's scalar row sum),
//! are flex's, and where two backward steps add into one tensor they add in the order burn's
//! tape runs them. So every float is burn's, whichever thread computes the row.
//!
//! The forward pass keeps, per element, `x − mean`, and per row the standard deviation
//! `d = sqrt(var + ε)` and `var + ε`.

use rayon::prelude::*;

/// Rows per task at the least.
const MIN_ROWS: usize = 32;

/// flex's row sum: left to right.
fn row_sum(values: impl Iterator<Item = f32>) -> f32 {
    values.sum()
}

/// What [`forward`] returns: the output and what [`backward`] needs.
pub(super) struct Forward {
    /// `(x − mean) / d · γ + β`, element by element.
    pub output: Vec<f32>,
    /// `x − mean`, element by element.
    pub centered: Vec<f32>,
    /// `d = sqrt(var + ε)`, one per row.
    pub deviations: Vec<f32>,
    /// `var + ε`, one per row.
    pub variances: Vec<f32>,
}

/// LayerNorm of every row of `x` (rows of `gamma.len()` values) with `epsilon` (as flex adds
/// it, rounded to float32) and an optional `beta`.
pub(super) fn forward(x: &[f32], gamma: &[f32], beta: Option<&[f32]>, epsilon: f32) -> Forward {
    let width = gamma.len();
    let rows = x.len() / width;
    let n = width as f32;
    let mut output = super::parallel::zeros(x.len());
    let mut centered = super::parallel::zeros(x.len());
    let mut deviations = vec![0.0f32; rows];
    let mut variances = vec![0.0f32; rows];
    output
        .par_chunks_mut(width)
        .zip(centered.par_chunks_mut(width))
        .zip(deviations.par_iter_mut().zip(variances.par_iter_mut()))
        .zip(x.par_chunks(width))
        .with_min_len(MIN_ROWS)
        .for_each(|(((out, c), (d, ve)), x)| {
            let mean = row_sum(x.iter().copied()) / n;
            for (c, &x) in c.iter_mut().zip(x) {
                *c = x - mean;
            }
            let var = row_sum(c.iter().map(|&c| c * c)) / n;
            *ve = var + epsilon;
            *d = ve.sqrt();
            for (i, (o, &c)) in out.iter_mut().zip(c.iter()).enumerate() {
                let scaled = c / *d * gamma[i];
                *o = match beta {
                    Some(beta) => scaled + beta[i],
                    None => scaled,
                };
            }
        });
    Forward {
        output,
        centered,
        deviations,
        variances,
    }
}

/// The gradient with respect to the input, and, element by element, `g · (x − mean) / d` (the
/// terms that burn sums over rows into `γ`'s gradient), given the output gradient `g` and what
/// [`forward`] kept.
pub(super) fn backward(
    g: &[f32],
    gamma: &[f32],
    centered: &[f32],
    deviations: &[f32],
    variances: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let width = gamma.len();
    assert!(
        g.len() == centered.len() && g.len() == deviations.len() * width,
        "layer norm: the gradient and the kept values differ in size"
    );
    // burn's mean backward multiplies by `1 / n` worked out in f64 and rounded to float32.
    let inv_n = (1.0f64 / width as f64) as f32;
    let mut dx = super::parallel::zeros(g.len());
    let mut gamma_terms = super::parallel::zeros(g.len());
    dx.par_chunks_mut(width)
        .zip(gamma_terms.par_chunks_mut(width))
        .zip(g.par_chunks(width).zip(centered.par_chunks(width)))
        .zip(deviations.par_iter().zip(variances.par_iter()))
        .with_min_len(MIN_ROWS)
        .for_each(|(((dx, gt), (g, c)), (&d, &ve))| {
            // `· γ`: the normalised values' gradient, and the terms of γ's.
            for ((gt, &g), &c) in gt.iter_mut().zip(g).zip(c) {
                *gt = g * (c / d);
            }
            let gn = g.iter().zip(gamma).map(|(&g, &gamma)| g * gamma);
            // The division `c / d`: `gn · (1 / d)` to `c`, `Σ gn · (−c / (d · d))` to `d`.
            let recip = 1.0 / d;
            let square = d * d;
            let gd = row_sum(gn.clone().zip(c).map(|(gn, &c)| gn * (-c / square)));
            // `sqrt`, `+ ε`, then the variance's mean (a sum over its one column, then `1 / n`).
            let gve = gd * (ve.powf(-0.5) / 2.0);
            let gsq = inv_n * row_sum(std::iter::once(gve));
            // `c` gets the division's term first, then the square's two equal terms.
            for ((dx, gn), &c) in dx.iter_mut().zip(gn).zip(c) {
                let from_square = gsq * c;
                *dx = from_square + (from_square + gn * recip);
            }
            // The subtraction gives `−Σ gc` to the mean, whose step spreads `1 / n` of it back;
            // it runs after the subtraction's, so it is added to `gc` (one addition of two
            // floats: the order of the operands does not matter).
            let gm = row_sum(dx.iter().map(|&gc| -gc));
            let from_mean = inv_n * row_sum(std::iter::once(gm));
            for dx in dx.iter_mut() {
                *dx += from_mean;
            }
        });
    (dx, gamma_terms)
}
