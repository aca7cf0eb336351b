//! The matrix products of a linear layer, `y = x · w`, and of its two gradients, split over
//! every core, giving burn's own floats bit for bit.
//!
//! burn's CPU backend runs a linear layer's products on one thread in the default build. It runs
//! a batch of sequences either as one product per sequence or, when that tiles badly, as one
//! product over all the rows (`burn_std::MatmulTransformPolicy`), and sums the weight gradient
//! accordingly. The kernels here make the same `gemm` calls where that matters and split the
//! rest into blocks of rows run on rayon's pool:
//!
//! - `gemm` sums each output element over the inner dimension in an order that depends only on
//!   that dimension, except on its paths for small products (at most 64 × 64 outputs, or
//!   16 × 16, or vectors). So when the output has at least [`MIN_BLOCK`] columns, a product's
//!   rows can be grouped any way that keeps blocks of at least [`MIN_BLOCK`] rows: the rows are
//!   split into at most 8 such blocks, whether burn makes one product per sequence or one over
//!   all rows (one call per block packs the weight once per block, where one call per sequence
//!   packs it once per sequence);
//! - with fewer output columns, each sequence is the very call burn makes (the sequences split
//!   into fixed blocks), or the whole product is one call;
//! - the weight gradient of a batch of sequences is burn's sum of per-sequence products, see
//!   [`weight_gradient_by_sequence`].
//!
//! The block boundaries depend only on the shapes, never on the number of threads.
//! `tests/linear_kernel.rs` checks the bits against burn's `Linear`.

use super::matmul::{MatRef, matmul};
use super::parallel;

/// The fewest rows of a block, and the fewest output columns for splitting at all: above
/// `gemm`'s small-product limit of 64 (see the module documentation).
const MIN_BLOCK: usize = 65;

/// `dst` (`rows × cols`, row-major) = `lhs` (`rows × k`) · `rhs` (`k × cols`), split into blocks
/// of rows run in parallel when both sides are large enough to keep `gemm`'s path. `lhs_rows(r,
/// n)` gives the view of `lhs`'s `n` rows starting at row `r`.
fn split_rows<'a>(
    rows: usize,
    cols: usize,
    lhs_rows: impl Fn(usize, usize) -> MatRef<'a> + Sync,
    rhs: MatRef<'_>,
) -> Vec<f32> {
    let mut dst = parallel::zeros(rows * cols);
    let blocks = if cols >= MIN_BLOCK {
        (rows / MIN_BLOCK).min(8)
    } else {
        0
    };
    if blocks <= 1 {
        matmul(&mut dst, lhs_rows(0, rows), rhs, false);
        return dst;
    }
    let ranges: Vec<_> = (0..blocks)
        .map(|b| b * rows / blocks..(b + 1) * rows / blocks)
        .collect();
    let slices = parallel::split_by_samples(&mut dst, cols, &ranges);
    parallel::run(&ranges, slices, |_, range, out: &mut [f32]| {
        matmul(out, lhs_rows(range.start, range.len()), rhs, false);
    });
    dst
}

/// `dst` = `lhs` · `rhs` for each of `batch` sequences of `rows / batch` rows (burn's one product
/// per sequence), the sequences split into fixed blocks run in parallel.
fn per_sequence<'a>(
    batch: usize,
    rows: usize,
    cols: usize,
    lhs_rows: impl Fn(usize, usize) -> MatRef<'a> + Sync,
    rhs: MatRef<'_>,
) -> Vec<f32> {
    let len = rows / batch;
    let mut dst = parallel::zeros(rows * cols);
    let ranges = parallel::chunks(batch);
    let slices = parallel::split_by_samples(&mut dst, len * cols, &ranges);
    parallel::run(&ranges, slices, |_, range, out: &mut [f32]| {
        for (i, b) in range.enumerate() {
            let block = &mut out[i * len * cols..(i + 1) * len * cols];
            matmul(block, lhs_rows(b * len, len), rhs, false);
        }
    });
    dst
}

/// `dst` = `lhs` · `rhs` as burn computes it for `batch` sequences (1: one product over all
/// rows); with at least [`MIN_BLOCK`] output columns both give the same floats, and the rows are
/// split into blocks either way.
fn product<'a>(
    batch: usize,
    rows: usize,
    cols: usize,
    lhs_rows: impl Fn(usize, usize) -> MatRef<'a> + Sync,
    rhs: MatRef<'_>,
) -> Vec<f32> {
    if batch > 1 && cols < MIN_BLOCK {
        per_sequence(batch, rows, cols, lhs_rows, rhs)
    } else {
        split_rows(rows, cols, lhs_rows, rhs)
    }
}

/// `x · w` for `x` of `rows × d_in` (`batch` sequences, see [`product`]) and `w` of
/// `d_in × d_out`, both row-major.
pub(super) fn forward(
    x: &[f32],
    w: &[f32],
    batch: usize,
    [rows, d_in, d_out]: [usize; 3],
) -> Vec<f32> {
    let rhs = MatRef::row_major(w, d_in, d_out);
    product(
        batch,
        rows,
        d_out,
        |start, n| MatRef::row_major(&x[start * d_in..(start + n) * d_in], n, d_in),
        rhs,
    )
}

/// The gradient of `x`: `dy · wᵀ`, `rows × d_in`, as burn computes it for `batch` sequences.
pub(super) fn backward_input(
    dy: &[f32],
    w: &[f32],
    batch: usize,
    [rows, d_in, d_out]: [usize; 3],
) -> Vec<f32> {
    let rhs = MatRef::row_major(w, d_in, d_out).t();
    product(
        batch,
        rows,
        d_in,
        |start, n| MatRef::row_major(&dy[start * d_out..(start + n) * d_out], n, d_out),
        rhs,
    )
}

/// The gradient of `w` as one product over all rows: `xᵀ · dy`, `d_in × d_out`. Its rows are
/// the columns of `x`, so a block of them reads a band of `x`'s columns.
pub(super) fn backward_weight(x: &[f32], dy: &[f32], [rows, d_in, d_out]: [usize; 3]) -> Vec<f32> {
    let rhs = MatRef::row_major(dy, rows, d_out);
    split_rows(
        d_in,
        d_out,
        |start, n| MatRef {
            data: &x[start..],
            rows: n,
            cols: rows,
            row_stride: 1,
            col_stride: d_in,
        },
        rhs,
    )
}

/// The gradient of `w` sequence by sequence: the sum over the `batch` sequences of `len` rows of
/// `x_bᵀ · dy_b`, `d_in × d_out`.
///
/// burn's autodiff computes a linear layer's weight gradient on a `[batch, len, d_in]` input this
/// way: one product per sequence into a `[batch, d_in, d_out]` tensor, then a sum over the batch
/// that adds each sequence's product, in sequence order, to a sum starting at 0. This makes the
/// same products and the same additions in the same order, so the gradient is burn's bit for
/// bit, without the batch of products in memory: the rows of the gradient are split into bands
/// (as [`split_rows`] splits a product, so every band takes the whole product's `gemm` path),
/// and each band's task adds the sequences' products one after another through a scratch band
/// that stays in cache.
pub(super) fn weight_gradient_by_sequence(x: &[f32], dy: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let [batch, len, d_in, d_out] = shape;
    let mut dw = parallel::zeros(d_in * d_out);
    let bands = if d_out >= MIN_BLOCK {
        (d_in / MIN_BLOCK).clamp(1, 8)
    } else {
        1
    };
    let ranges: Vec<_> = (0..bands)
        .map(|b| b * d_in / bands..(b + 1) * d_in / bands)
        .collect();
    let slices = parallel::split_by_samples(&mut dw, d_out, &ranges);
    parallel::run(&ranges, slices, |_, band, sum: &mut [f32]| {
        let mut scratch = vec![0.0f32; sum.len()];
        for b in 0..batch {
            // Columns `band` of this sequence's rows of `x`, transposed: `band.len() × len`.
            let lhs = MatRef {
                data: &x[b * len * d_in + band.start..(b + 1) * len * d_in],
                rows: band.len(),
                cols: len,
                row_stride: 1,
                col_stride: d_in,
            };
            let rhs = MatRef::row_major(&dy[b * len * d_out..(b + 1) * len * d_out], len, d_out);
            matmul(&mut scratch, lhs, rhs, false);
            for (total, &term) in sum.iter_mut().zip(&scratch) {
                *total += term;
            }
        }
    });
    dw
}
