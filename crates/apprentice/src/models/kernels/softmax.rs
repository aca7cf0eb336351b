//! The softmax over the last dimension as burn's autodiff computes it on flex, row by row on
//! every core.
//!
//! On an autodiff tensor burn runs softmax as five operations — the row maximum (of the
//! detached input), a subtraction, `exp`, the row sum and a division — and differentiates each
//! one: the division gives `g · (1 / s)` to the exponentials and `Σ g · (−e / (s · s))` to the
//! sum, the sum's gradient is spread back over the row and added to the first, and `exp`'s
//! step multiplies by `exp` of its input again. Every one of these is local to a row, so rows
//! can run on any thread; within a row the operations, and the left-to-right order of both
//! sums (flex's scalar row sum), are flex's, so every float is. `exp` runs sixteen or eight
//! floats at a time and the row sums eight rows side by side, with the same floats as one at a
//! time.

use rayon::prelude::*;

use super::exp::exp_in_place;
use super::row_sums::row_sums_in_order;

/// Rows per task: a task then covers thousands of `exp`s.
const TASK_ROWS: usize = 64;

/// flex's row maximum: the first NaN if there is one, else the largest value (the first of
/// equal ones).
pub(super) fn row_max(row: &[f32]) -> f32 {
    let mut best = row[0];
    for &v in row {
        if v.is_nan() {
            return f32::NAN;
        }
        if v > best {
            best = v;
        }
    }
    best
}

/// The softmax of every row of `x` (rows of `width` values), and what the backward pass
/// needs: the exponentials `e = exp(x − max)` and each row's sum `s`.
pub(super) struct Forward {
    /// `e / s`, element by element.
    pub output: Vec<f32>,
    /// `exp(x − max)`, element by element.
    pub exps: Vec<f32>,
    /// One sum per row.
    pub sums: Vec<f32>,
}

/// Softmax over rows of `width` (`x.len()` a multiple of it, `width > 0`).
pub(super) fn forward(x: &[f32], width: usize) -> Forward {
    let rows = x.len() / width;
    let mut exps = super::parallel::zeros(x.len());
    let mut output = super::parallel::zeros(x.len());
    let mut sums = vec![0.0f32; rows];
    exps.par_chunks_mut(width * TASK_ROWS)
        .zip(output.par_chunks_mut(width * TASK_ROWS))
        .zip(sums.par_chunks_mut(TASK_ROWS))
        .zip(x.par_chunks(width * TASK_ROWS))
        .for_each(|(((e, out), sums), x)| {
            for (e, x) in e.chunks_mut(width).zip(x.chunks(width)) {
                let max = row_max(x);
                for (e, &x) in e.iter_mut().zip(x) {
                    *e = x - max;
                }
                exp_in_place(e);
            }
            row_sums_in_order(e, width, sums);
            for ((out, e), &s) in out.chunks_mut(width).zip(e.chunks(width)).zip(sums.iter()) {
                for (o, &e) in out.iter_mut().zip(e) {
                    *o = e / s;
                }
            }
        });
    Forward { output, exps, sums }
}

/// The gradient with respect to the softmax's input, given the output gradient `g` and what
/// [`forward`] kept.
pub(super) fn backward(g: &[f32], exps: &[f32], sums: &[f32], width: usize) -> Vec<f32> {
    assert!(
        g.len() == exps.len() && g.len() == sums.len() * width,
        "softmax: the gradient and the kept values differ in size"
    );
    let mut dx = super::parallel::zeros(g.len());
    dx.par_chunks_mut(width * TASK_ROWS)
        .zip(g.par_chunks(width * TASK_ROWS))
        .zip(exps.par_chunks(width * TASK_ROWS))
        .zip(sums.par_chunks(TASK_ROWS))
        .for_each(|(((dx, g), e), sums)| {
            // The terms of each row's `ds` go into `dx` first, to be summed side by side.
            let rows = dx
                .chunks_mut(width)
                .zip(g.chunks(width))
                .zip(e.chunks(width));
            for (((dx, g), e), &s) in rows.zip(sums) {
                let square = s * s;
                for ((dx, &g), &e) in dx.iter_mut().zip(g).zip(e) {
                    *dx = g * (-e / square);
                }
            }
            let mut ds = vec![0.0f32; sums.len()];
            row_sums_in_order(dx, width, &mut ds);
            let rows = dx
                .chunks_mut(width)
                .zip(g.chunks(width))
                .zip(e.chunks(width));
            for ((((dx, g), e), &s), &ds) in rows.zip(sums).zip(&ds) {
                let recip = 1.0 / s;
                for ((dx, &g), &e) in dx.iter_mut().zip(g).zip(e) {
                    *dx = (ds + g * recip) * e;
                }
            }
        });
    dx
}
