//! A language model's next-token losses over its whole vocabulary as burn's autodiff computes
//! them on flex, row by row on every core: the forward KL from the teacher's distribution
//! (word-level KD), the reverse KL (MiniLLM's direction) and the log-probability of the target
//! token (the cross-entropy's term).
//!
//! burn runs `log_softmax` as six operations on an autodiff tensor — the row maximum (of the
//! detached input), a subtraction, `exp`, the row sum, `ln` and a subtraction — then the KL as
//! `exp`, a subtraction, a product and a row sum, each operation a pass over `rows × vocab`
//! floats on one thread, and as many again backward. With a vocabulary of tens of thousands
//! that was most of a student's training step. Every one of these operations is local to a
//! row, so rows can run on any thread; within a row the operations, the left-to-right order of
//! every sum (flex's scalar row sum) and the order in which gradients meet are burn's, so every
//! float, forward and backward, is. `exp` runs sixteen or eight floats at a time and the row
//! sums eight rows side by side, with the same floats as one at a time.
//!
//! Backward, burn's steps give, for the KL's row gradient `g` and the teacher's probabilities
//! `p = exp(log p)`: `g · p` to the KL's difference, its negation to `log q`; the `ln` of the
//! row sum `s` receives `Σ g · p` (the subtraction's broadcast, summed) times `1 / s`, and the
//! exponentials that times `exp(x − max)`; the two gradients of `x − max` are added. For the
//! picked log-probability the gather's gradient is `0 + g` at the target and `0` elsewhere, so
//! the row sum receives exactly `−(0 + g)`.

use rayon::prelude::*;

use super::exp::exp_in_place;
use super::row_sums::row_sums_in_order;
use super::softmax::row_max;

/// Rows per task: one group of row sums, and hundreds of thousands of `exp`s at a vocabulary
/// of tens of thousands.
pub(super) const TASK_ROWS: usize = 8;

/// Writes `x − max(x)` (flex's row maximum) into `out`, then `exp` of it into `exps`.
fn shifted_and_exps(x: &[f32], out: &mut [f32], exps: &mut [f32]) {
    let max = row_max(x);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v - max;
    }
    exps.copy_from_slice(out);
    exp_in_place(exps);
}

/// burn's `log_softmax` of rows of `width`: writes `log q = (x − max) − ln s` into `log_q`,
/// `exp(x − max)` into `exps` and `1 / s` into `recips`, `s` the row's sum of `exps`.
pub(super) fn log_softmax_rows(
    x: &[f32],
    width: usize,
    log_q: &mut [f32],
    exps: &mut [f32],
    recips: &mut [f32],
) {
    for ((row, q), e) in x
        .chunks(width)
        .zip(log_q.chunks_mut(width))
        .zip(exps.chunks_mut(width))
    {
        shifted_and_exps(row, q, e);
    }
    let mut sums = vec![0.0f32; recips.len()];
    row_sums_in_order(exps, width, &mut sums);
    for ((q, &s), r) in log_q.chunks_mut(width).zip(&sums).zip(recips.iter_mut()) {
        let lse = s.ln();
        for q in q.iter_mut() {
            *q -= lse;
        }
        *r = 1.0 / s;
    }
}

/// The log-softmax's backward steps over rows of `width`, in place: `dx` holds `−∂L/∂log q`
/// (what the subtraction of `ln s` sums into its gradient) and becomes
/// `∂L/∂log q + (Σ −∂L/∂log q) · (1 / s) · exp(x − max)`, burn's gradient of `x`.
pub(super) fn log_softmax_backward(dx: &mut [f32], exps: &[f32], recips: &[f32], width: usize) {
    let mut lse_grad = vec![0.0f32; recips.len()];
    row_sums_in_order(dx, width, &mut lse_grad);
    let rows = dx.chunks_mut(width).zip(exps.chunks(width));
    for (((dx, e), &l), &r) in rows.zip(&lse_grad).zip(recips) {
        let gs = l * r;
        for (d, &e) in dx.iter_mut().zip(e) {
            *d = -*d + gs * e;
        }
    }
}

/// The teacher's `log_softmax(t / τ)` of rows of `width`, as burn computes it on the detached
/// teacher.
pub(super) fn teacher_log_probs(t: &[f32], temperature: f32, width: usize) -> Vec<f32> {
    let scaled: Vec<f32> = t.iter().map(|&v| v / temperature).collect();
    let mut log_p = vec![0.0f32; scaled.len()];
    let mut exps = vec![0.0f32; scaled.len()];
    let mut recips = vec![0.0f32; scaled.len() / width];
    log_softmax_rows(&scaled, width, &mut log_p, &mut exps, &mut recips);
    log_p
}

/// burn's `KL(u ‖ v)` of each row of `width` into `out`: `Σ u · (log u − log v)`, left to
/// right, with `probs = exp(log u)` given.
pub(super) fn kl_row_sums(
    probs: &[f32],
    log_u: &[f32],
    log_v: &[f32],
    width: usize,
    out: &mut [f32],
) {
    let terms: Vec<f32> = probs
        .iter()
        .zip(log_u.iter().zip(log_v))
        .map(|(u, (lu, lv))| u * (lu - lv))
        .collect();
    row_sums_in_order(&terms, width, out);
}

/// The forward KL of every row and what its backward pass needs.
pub(super) struct KlForward {
    /// `KL(p ‖ q)` of each row.
    pub divergence: Vec<f32>,
    /// The teacher's probabilities `exp(log_softmax(teacher / τ))`, element by element.
    pub teacher_probs: Vec<f32>,
    /// The student's `exp(x − max)`, element by element.
    pub student_exps: Vec<f32>,
    /// `1 / s` of each student row, `s` the sum of its exponentials.
    pub recip_sums: Vec<f32>,
}

/// `KL(softmax(teacher / τ) ‖ softmax(student))` of every row of `width` values, `student`
/// already divided by `τ` (burn divides it, as a tracked operation), `teacher` not.
pub(super) fn forward_kl(
    student: &[f32],
    teacher: &[f32],
    temperature: f32,
    width: usize,
) -> KlForward {
    assert!(
        student.len() == teacher.len() && width > 0 && student.len().is_multiple_of(width),
        "forward KL: the student's and teacher's logits differ in size"
    );
    let rows = student.len() / width;
    let mut teacher_probs = super::parallel::zeros(student.len());
    let mut student_exps = super::parallel::zeros(student.len());
    let mut recip_sums = vec![0.0f32; rows];
    let mut divergence = vec![0.0f32; rows];
    let task = width * TASK_ROWS;
    teacher_probs
        .par_chunks_mut(task)
        .zip(student_exps.par_chunks_mut(task))
        .zip(recip_sums.par_chunks_mut(TASK_ROWS))
        .zip(divergence.par_chunks_mut(TASK_ROWS))
        .zip(student.par_chunks(task).zip(teacher.par_chunks(task)))
        .for_each(|((((probs, exps), recips), div), (x, t))| {
            // The teacher: p = exp(log p).
            let log_p = teacher_log_probs(t, temperature, width);
            probs.copy_from_slice(&log_p);
            exp_in_place(probs);
            // The student: log q.
            let mut log_q = vec![0.0f32; log_p.len()];
            log_softmax_rows(x, width, &mut log_q, exps, recips);
            kl_row_sums(probs, &log_p, &log_q, width, div);
        });
    KlForward {
        divergence,
        teacher_probs,
        student_exps,
        recip_sums,
    }
}

/// The gradient with respect to the (scaled) student's logits of [`forward_kl`], given each
/// row's gradient `g` and what the forward pass kept.
pub(super) fn backward_kl(g: &[f32], kept: &KlForward, width: usize) -> Vec<f32> {
    let probs = &kept.teacher_probs;
    assert!(
        probs.len() == g.len() * width && kept.student_exps.len() == probs.len(),
        "forward KL: the gradient and the kept values differ in size"
    );
    let mut dx = super::parallel::zeros(probs.len());
    let task = width * TASK_ROWS;
    dx.par_chunks_mut(task)
        .zip(probs.par_chunks(task))
        .zip(kept.student_exps.par_chunks(task))
        .zip(
            g.par_chunks(TASK_ROWS)
                .zip(kept.recip_sums.par_chunks(TASK_ROWS)),
        )
        .for_each(|(((dx, p), e), (g, recips))| {
            // −∂L/∂log q = g · p.
            for ((dx, p), &g) in dx.chunks_mut(width).zip(p.chunks(width)).zip(g) {
                for (d, &p) in dx.iter_mut().zip(p) {
                    *d = g * p;
                }
            }
            log_softmax_backward(dx, e, recips, width);
        });
    dx
}

/// The reverse KL of every row and what its backward pass needs.
pub(super) struct ReverseKlForward {
    /// `KL(q ‖ p)` of each row.
    pub divergence: Vec<f32>,
    /// The student's probabilities `exp(log q)`, element by element.
    pub probs: Vec<f32>,
    /// `log q − log p`, element by element.
    pub diffs: Vec<f32>,
    /// The student's `exp(x − max)`, element by element.
    pub exps: Vec<f32>,
    /// `1 / s` of each student row.
    pub recip_sums: Vec<f32>,
}

/// `KL(softmax(student) ‖ softmax(teacher / τ))` of every row of `width` values, `student`
/// already divided by `τ`, `teacher` not: burn's `Σ exp(log q) · (log q − log p)`, with
/// `exp(log q)` computed from `log q` as burn does.
pub(super) fn forward_reverse_kl(
    student: &[f32],
    teacher: &[f32],
    temperature: f32,
    width: usize,
) -> ReverseKlForward {
    assert!(
        student.len() == teacher.len() && width > 0 && student.len().is_multiple_of(width),
        "reverse KL: the student's and teacher's logits differ in size"
    );
    let rows = student.len() / width;
    let mut probs = super::parallel::zeros(student.len());
    let mut diffs = super::parallel::zeros(student.len());
    let mut exps = super::parallel::zeros(student.len());
    let mut recip_sums = vec![0.0f32; rows];
    let mut divergence = vec![0.0f32; rows];
    let task = width * TASK_ROWS;
    probs
        .par_chunks_mut(task)
        .zip(diffs.par_chunks_mut(task))
        .zip(exps.par_chunks_mut(task))
        .zip(
            recip_sums
                .par_chunks_mut(TASK_ROWS)
                .zip(divergence.par_chunks_mut(TASK_ROWS)),
        )
        .zip(student.par_chunks(task).zip(teacher.par_chunks(task)))
        .for_each(|((((q, diff), e), (recips, div)), (x, t))| {
            let log_p = teacher_log_probs(t, temperature, width);
            // log q into `diff`, exp(log q) into `q`, then log q − log p into `diff`.
            log_softmax_rows(x, width, diff, e, recips);
            q.copy_from_slice(diff);
            exp_in_place(q);
            let mut terms = vec![0.0f32; diff.len()];
            for (((k, d), &q), &lp) in terms
                .iter_mut()
                .zip(diff.iter_mut())
                .zip(q.iter())
                .zip(&log_p)
            {
                *d -= lp;
                *k = q * *d;
            }
            row_sums_in_order(&terms, width, div);
        });
    ReverseKlForward {
        divergence,
        probs,
        diffs,
        exps,
        recip_sums,
    }
}

/// The gradient with respect to the (scaled) student's logits of [`forward_reverse_kl`]: the
/// product's two factors each pass on `g` times the other, `exp`'s step multiplies the first by
/// `q` again, and the two meet at `log q` before the log-softmax's steps.
pub(super) fn backward_reverse_kl(g: &[f32], kept: &ReverseKlForward, width: usize) -> Vec<f32> {
    assert!(
        kept.probs.len() == g.len() * width && kept.diffs.len() == kept.probs.len(),
        "reverse KL: the gradient and the kept values differ in size"
    );
    let mut dx = super::parallel::zeros(kept.probs.len());
    let task = width * TASK_ROWS;
    dx.par_chunks_mut(task)
        .zip(kept.probs.par_chunks(task).zip(kept.diffs.par_chunks(task)))
        .zip(kept.exps.par_chunks(task))
        .zip(
            g.par_chunks(TASK_ROWS)
                .zip(kept.recip_sums.par_chunks(TASK_ROWS)),
        )
        .for_each(|(((dx, (q, diff)), e), (g, recips))| {
            // −∂L/∂log q: the product's two paths, `exp`'s and the difference's.
            let rows = dx
                .chunks_mut(width)
                .zip(q.chunks(width).zip(diff.chunks(width)));
            for ((dx, (q, diff)), &g) in rows.zip(g) {
                for ((d, &q), &diff) in dx.iter_mut().zip(q).zip(diff) {
                    *d = -((g * diff) * q + g * q);
                }
            }
            log_softmax_backward(dx, e, recips, width);
        });
    dx
}

/// The picked log-probability of every row and what its backward pass needs.
pub(super) struct PickForward {
    /// `log_softmax(x)[target]` of each row.
    pub picked: Vec<f32>,
    /// `exp(x − max)`, element by element.
    pub exps: Vec<f32>,
    /// `1 / s` of each row.
    pub recip_sums: Vec<f32>,
}

/// `log_softmax(x)[target]` of every row of `width` values, one target per row (each below
/// `width`).
pub(super) fn forward_pick(x: &[f32], targets: &[usize], width: usize) -> PickForward {
    assert!(
        width > 0 && x.len() == targets.len() * width && targets.iter().all(|&t| t < width),
        "picked log-probability: one target below the width per row"
    );
    let rows = targets.len();
    let mut exps = super::parallel::zeros(x.len());
    let mut recip_sums = vec![0.0f32; rows];
    let mut picked = vec![0.0f32; rows];
    let task = width * TASK_ROWS;
    exps.par_chunks_mut(task)
        .zip(x.par_chunks(task))
        .zip(recip_sums.par_chunks_mut(TASK_ROWS))
        .zip(
            picked
                .par_chunks_mut(TASK_ROWS)
                .zip(targets.par_chunks(TASK_ROWS)),
        )
        .for_each(|(((e, x), recips), (picked, targets))| {
            let mut log_q = vec![0.0f32; x.len()];
            log_softmax_rows(x, width, &mut log_q, e, recips);
            for (r, (pick, &t)) in picked.iter_mut().zip(targets).enumerate() {
                *pick = log_q[r * width + t];
            }
        });
    PickForward {
        picked,
        exps,
        recip_sums,
    }
}

/// The gradient with respect to the logits of [`forward_pick`], given each row's gradient `g`.
pub(super) fn backward_pick(
    g: &[f32],
    targets: &[usize],
    kept: &PickForward,
    width: usize,
) -> Vec<f32> {
    assert!(
        g.len() == targets.len() && kept.exps.len() == g.len() * width,
        "picked log-probability: the gradient and the kept values differ in size"
    );
    let mut dx = super::parallel::zeros(kept.exps.len());
    let task = width * TASK_ROWS;
    dx.par_chunks_mut(task)
        .zip(kept.exps.par_chunks(task))
        .zip(g.par_chunks(TASK_ROWS).zip(targets.par_chunks(TASK_ROWS)))
        .zip(kept.recip_sums.par_chunks(TASK_ROWS))
        .for_each(|(((dx, e), (g, targets)), recips)| {
            let rows = dx.chunks_mut(width).zip(e.chunks(width));
            for (((dx, e), (&g, &t)), &r) in rows.zip(g.iter().zip(targets)).zip(recips) {
                // The gather's gradient: zeros plus `g` at the target.
                let at_target = 0.0f32 + g;
                let gs = -at_target * r;
                for (d, &e) in dx.iter_mut().zip(e) {
                    *d = 0.0f32 + gs * e;
                }
                dx[t] = at_target + gs * e[t];
            }
        });
    dx
}
