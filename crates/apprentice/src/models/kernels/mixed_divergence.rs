//! The next-token divergences that go through a mixture of the teacher's and the student's
//! distributions — the generalised Jensen-Shannon divergence of GKD and DistiLLM's skew KLs —
//! and the total variation, as burn's autodiff computes them on flex, row by row on every core.
//!
//! With `p` the teacher's and `q` the student's distribution, burn builds the mixture's
//! logarithm from `log p` and `log q` by a log-sum-exp, `log m = top + ln(exp(a − top) +
//! exp(b − top))` with `a = log p + ln w`, `b = log q + ln(1 − w)` and `top = max(a, b)`
//! detached, then each KL as `Σ exp(log u) · (log u − log m)`. That is some twenty operations,
//! each a pass over `rows × vocabulary` on one thread, and as many backward: a GKD student
//! trained at a third of a forward-KL student's speed. Every operation is local to a row, so
//! rows run on any thread; within a row the operations and the left-to-right order of every
//! sum are burn's, and so is the order in which gradients meet (see [`accumulate`]), so every
//! float, forward and backward, is.
//!
//! The forward pass keeps what the backward pass needs, at most six `rows × vocabulary`
//! arrays (the JSD's), about as many as burn's composition keeps for its backward steps.

use rayon::prelude::*;

use super::exp::exp_in_place;
use super::row_sums::row_sums_in_order;
use super::token_loss::{
    TASK_ROWS, kl_row_sums, log_softmax_backward, log_softmax_rows, teacher_log_probs,
};

/// A divergence between the teacher's `p` and the student's `q` that these kernels compute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MixedDivergence {
    /// `β KL(p ‖ m) + (1 − β) KL(q ‖ m)` with `m = β p + (1 − β) q`, for `β` in (0, 1).
    Jsd {
        /// Weight of the teacher in the mixture.
        beta: f64,
    },
    /// `KL(p ‖ α p + (1 − α) q)`, for `α` in (0, 1).
    SkewKl {
        /// Weight of the teacher in the mixture.
        alpha: f64,
    },
    /// `KL(q ‖ α q + (1 − α) p)`, for `α` in (0, 1).
    SkewReverseKl {
        /// Weight of the student in the mixture.
        alpha: f64,
    },
    /// `½ Σ |p − q|`.
    TotalVariation,
}

impl MixedDivergence {
    /// Whether the kernels cover these settings: a weight strictly between 0 and 1 (at 0 or 1
    /// burn's composition is a plain KL, or a logarithm of 0).
    pub(super) fn covered(self) -> bool {
        match self {
            Self::Jsd { beta: w }
            | Self::SkewKl { alpha: w }
            | Self::SkewReverseKl { alpha: w } => w > 0.0 && w < 1.0,
            Self::TotalVariation => true,
        }
    }

    /// The mixture's weights: `ln w` added to the first log-probability, `ln(1 − w)` to the
    /// second, each rounded to float32 as burn rounds a scalar it adds.
    fn log_weights(w: f64) -> (f32, f32) {
        (w.ln() as f32, (1.0 - w).ln() as f32)
    }
}

/// What the backward step needs of a group of rows (at most [`TASK_ROWS`]) of `width` values
/// each; each field is empty where `kind` does not use it.
pub(super) struct Rows {
    width: usize,
    /// The teacher's `p = exp(log p)`.
    p: Vec<f32>,
    /// The student's `q = exp(log q)`.
    q: Vec<f32>,
    /// `log q − log m`, the student's KL's difference.
    diff: Vec<f32>,
    /// The log-sum-exp's `1 / S`, the reciprocal burn's `ln` step multiplies by.
    recip_mix: Vec<f32>,
    /// `exp(· − top)` of the mixture's student side, the one gradients flow through.
    student_side: Vec<f32>,
    /// The student's log-softmax: `exp(x − max)` and `1 / s` of each row.
    exps: Vec<f32>,
    recips: Vec<f32>,
}

/// burn's `log_mix(log_a, w, log_b)` with `ca = ln w` and `cb = ln(1 − w)`: `log m`, the
/// log-sum-exp's `1 / S`, and both sides' `exp(· − top)`.
fn log_mix(log_a: &[f32], ca: f32, log_b: &[f32], cb: f32) -> [Vec<f32>; 4] {
    let n = log_a.len();
    let (mut top, mut ea, mut eb) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
    for i in 0..n {
        let (a, b) = (log_a[i] + ca, log_b[i] + cb);
        // burn's `max_pair`: `mask_where(a < b, b)`.
        let t = if a < b { b } else { a };
        top[i] = t;
        ea[i] = a - t;
        eb[i] = b - t;
    }
    exp_in_place(&mut ea);
    exp_in_place(&mut eb);
    let mut recips = vec![0.0f32; n];
    for ((t, r), (a, b)) in top.iter_mut().zip(&mut recips).zip(ea.iter().zip(&eb)) {
        let sum = a + b;
        *t += sum.ln();
        *r = 1.0 / sum;
    }
    [top, recips, ea, eb]
}

/// burn's `KL(u ‖ m)` of each row of `width`, `probs = exp(log u)`.
fn kl_to_mixture(probs: &[f32], log_u: &[f32], log_m: &[f32], width: usize) -> Vec<f32> {
    let mut sums = vec![0.0f32; probs.len() / width];
    kl_row_sums(probs, log_u, log_m, width, &mut sums);
    sums
}

impl Rows {
    /// `kind` of each row as burn computes it, for the student's logits `x` (already divided
    /// by `τ`) and the teacher's `t` (not divided), and what the backward step needs.
    fn compute(
        kind: MixedDivergence,
        x: &[f32],
        t: &[f32],
        temperature: f32,
        width: usize,
    ) -> (Vec<f32>, Self) {
        let log_p = teacher_log_probs(t, temperature, width);
        let mut p = log_p.clone();
        exp_in_place(&mut p);
        let mut log_q = vec![0.0f32; x.len()];
        let mut exps = vec![0.0f32; x.len()];
        let mut recips = vec![0.0f32; x.len() / width];
        log_softmax_rows(x, width, &mut log_q, &mut exps, &mut recips);
        let mut q = log_q.clone();
        exp_in_place(&mut q);
        let difference = |log_m: &[f32]| -> Vec<f32> {
            log_q.iter().zip(log_m).map(|(lq, lm)| lq - lm).collect()
        };
        let mut rows = Self {
            width,
            p: Vec::new(),
            q: Vec::new(),
            diff: Vec::new(),
            recip_mix: Vec::new(),
            student_side: Vec::new(),
            exps,
            recips,
        };
        let values = match kind {
            MixedDivergence::Jsd { beta } => {
                let (ca, cb) = MixedDivergence::log_weights(beta);
                let [log_m, recip_mix, _, eb] = log_mix(&log_p, ca, &log_q, cb);
                let teacher = kl_to_mixture(&p, &log_p, &log_m, width);
                let student = kl_to_mixture(&q, &log_q, &log_m, width);
                let (wt, ws) = (beta as f32, (1.0 - beta) as f32);
                rows.diff = difference(&log_m);
                (rows.p, rows.q, rows.recip_mix, rows.student_side) = (p, q, recip_mix, eb);
                teacher
                    .iter()
                    .zip(&student)
                    .map(|(a, b)| a * wt + b * ws)
                    .collect()
            }
            MixedDivergence::SkewKl { alpha } => {
                let (ca, cb) = MixedDivergence::log_weights(alpha);
                let [log_m, recip_mix, _, eb] = log_mix(&log_p, ca, &log_q, cb);
                let values = kl_to_mixture(&p, &log_p, &log_m, width);
                (rows.p, rows.recip_mix, rows.student_side) = (p, recip_mix, eb);
                values
            }
            MixedDivergence::SkewReverseKl { alpha } => {
                let (ca, cb) = MixedDivergence::log_weights(alpha);
                let [log_m, recip_mix, ea, _] = log_mix(&log_q, ca, &log_p, cb);
                let values = kl_to_mixture(&q, &log_q, &log_m, width);
                rows.diff = difference(&log_m);
                (rows.q, rows.recip_mix, rows.student_side) = (q, recip_mix, ea);
                values
            }
            MixedDivergence::TotalVariation => {
                let diffs: Vec<f32> = p.iter().zip(&q).map(|(p, q)| (p - q).abs()).collect();
                let mut sums = vec![0.0f32; rows.recips.len()];
                row_sums_in_order(&diffs, width, &mut sums);
                (rows.p, rows.q) = (p, q);
                sums.iter().map(|s| s * 0.5).collect()
            }
        };
        (values, rows)
    }

    /// The gradient with respect to the (scaled) student's logits, given each row's gradient
    /// `g`, written into `dx`.
    fn gradient(&self, kind: MixedDivergence, g: &[f32], dx: &mut [f32]) {
        let width = self.width;
        for (r, &g) in g.iter().enumerate() {
            let span = r * width..(r + 1) * width;
            let dx = &mut dx[span.clone()];
            // The log-sum-exp's gradient of the student's side from that of `log m`.
            let through_mix =
                |j: usize, log_m: f32| (log_m * self.recip_mix[j]) * self.student_side[j];
            // Each arm writes −∂L/∂log q, what the log-softmax's backward step starts from.
            match kind {
                MixedDivergence::Jsd { beta } => {
                    let (gt, gs) = (g * beta as f32, g * (1.0 - beta) as f32);
                    for (d, j) in dx.iter_mut().zip(span.clone()) {
                        // The two KLs' gradients of log m, and the student's KL's of log q.
                        let from_teacher = gt * self.p[j];
                        let from_student = gs * self.q[j];
                        let log_m = -from_teacher + -from_student;
                        let through_exp = (gs * self.diff[j]) * self.q[j];
                        *d = -accumulate(from_student, through_mix(j, log_m), through_exp);
                    }
                }
                MixedDivergence::SkewKl { .. } => {
                    for (d, j) in dx.iter_mut().zip(span.clone()) {
                        *d = -through_mix(j, -(g * self.p[j]));
                    }
                }
                MixedDivergence::SkewReverseKl { .. } => {
                    for (d, j) in dx.iter_mut().zip(span.clone()) {
                        let from_diff = g * self.q[j];
                        let through_exp = (g * self.diff[j]) * self.q[j];
                        *d = -accumulate(from_diff, through_mix(j, -from_diff), through_exp);
                    }
                }
                MixedDivergence::TotalVariation => {
                    let half = g * 0.5;
                    for (d, j) in dx.iter_mut().zip(span.clone()) {
                        let abs = half * sign(self.p[j] - self.q[j]);
                        *d = -((-abs) * self.q[j]);
                    }
                }
            }
        }
        log_softmax_backward(dx, &self.exps, &self.recips, width);
    }
}

/// flex's `sign`: 0 at zero (and NaN), else ±1.
fn sign(v: f32) -> f32 {
    if v == 0.0 || v.is_nan() {
        0.0
    } else {
        1.0f32.copysign(v)
    }
}

/// The gradient of `log q` from its three uses, summed as burn's tape sums them: the
/// difference `log q − log m` first (the deepest of the three, so its step runs first), then
/// the mixture's side (`log q + ln w`), then the `exp` (two steps at one depth, in the order of
/// burn's traversal; the bit-for-bit tests fail with the two swapped).
fn accumulate(from_diff: f32, through_mix: f32, through_exp: f32) -> f32 {
    (from_diff + through_mix) + through_exp
}

/// `kind` of every row of `width` values, the student's logits `x` already divided by `τ`,
/// the teacher's `t` not; with what the backward step needs, one [`Rows`] per group of rows.
pub(super) fn forward(
    kind: MixedDivergence,
    x: &[f32],
    t: &[f32],
    temperature: f32,
    width: usize,
) -> (Vec<f32>, Vec<Rows>) {
    assert!(
        x.len() == t.len() && width > 0 && x.len().is_multiple_of(width),
        "{kind:?}: the student's and teacher's logits differ in size"
    );
    let task = width * TASK_ROWS;
    let (values, kept): (Vec<Vec<f32>>, Vec<Rows>) = x
        .par_chunks(task)
        .zip(t.par_chunks(task))
        .map(|(x, t)| Rows::compute(kind, x, t, temperature, width))
        .unzip();
    (values.concat(), kept)
}

/// The gradient with respect to the (scaled) student's logits of [`forward`], given each row's
/// gradient `g` and what the forward pass kept.
pub(super) fn backward(kind: MixedDivergence, g: &[f32], kept: &[Rows], width: usize) -> Vec<f32> {
    assert!(
        g.len().div_ceil(TASK_ROWS) == kept.len(),
        "{kind:?}: the gradient and the kept values differ in size"
    );
    let mut dx = super::parallel::zeros(g.len() * width);
    dx.par_chunks_mut(width * TASK_ROWS)
        .zip(g.par_chunks(TASK_ROWS))
        .zip(kept.par_iter())
        .for_each(|((dx, g), rows)| rows.gradient(kind, g, dx));
    dx
}
