//! A language model's tied output projection, `logits = x · Eᵀ` with `E` the `vocab × width`
//! embedding table, and its two gradients, split over every core, giving burn's own floats bit
//! for bit.
//!
//! burn computes it as a product with the transposed table on one thread, then backward
//! `dx = dY · E` and `dEᵀ = xᵀ · dY`, whose transpose it adds, as a strided view, to the
//! lookup's gradient of the same table. `gemm` sums each output element over the inner
//! dimension in an order that depends only on that dimension (outside its paths for small
//! products, see the `linear` module), so:
//!
//! - the logits are computed in blocks of vocabulary columns, each block one product;
//! - `dx` is the very call burn makes, run beside the table's gradient;
//! - the table's gradient is computed as `dE = dYᵀ · x`, in blocks of vocabulary rows, straight
//!   into the table's own layout: each element is the same sum, over the same rows, of the same
//!   products (`a · b` is `b · a`), and the addition to the lookup's gradient reads two
//!   contiguous tables instead of one strided one.
//!
//! `gemm` also has a dot-product path for products of at most 256 outputs with a transposed
//! right-hand side, and vector paths for one row or column, each with its own order; the
//! caller keeps burn's operations unless the width and the vocabulary both exceed the
//! small-product limit and there are at least four rows, which keeps every call here, and
//! burn's, on the main path. `tests/tied_head_kernel.rs` checks the
//! bits against burn.

use rayon::prelude::*;

use super::matmul::{MatRef, matmul};

/// The fewest columns (or rows) of a block, above `gemm`'s small-product limit of 64.
const MIN_BLOCK: usize = 65;

/// At most this many blocks: enough for a few cores.
const MAX_BLOCKS: usize = 8;

/// The fewest rows: with fewer, a block of [`MIN_BLOCK`] columns can fall within `gemm`'s
/// 256-element limit for its dot-product path, whose order is not its main path's.
const MIN_ROWS: usize = 4;

/// Whether `[rows, width, vocab]` keeps every product here, and burn's, on `gemm`'s main path
/// (see the module documentation).
pub(super) fn covers([rows, width, vocab]: [usize; 3]) -> bool {
    rows >= MIN_ROWS && width >= MIN_BLOCK && vocab >= MIN_BLOCK
}

/// Consecutive ranges of at least [`MIN_BLOCK`] covering `0..len` (one range when `len` is
/// too short to split).
fn blocks(len: usize) -> Vec<std::ops::Range<usize>> {
    let count = (len / MIN_BLOCK).clamp(1, MAX_BLOCKS);
    (0..count)
        .map(|b| b * len / count..(b + 1) * len / count)
        .collect()
}

/// `x · Eᵀ`: `x` is `rows × width`, `table` `vocab × width`, both row-major; the logits are
/// `rows × vocab`, row-major.
pub(super) fn forward(x: &[f32], table: &[f32], [rows, width, vocab]: [usize; 3]) -> Vec<f32> {
    let lhs = MatRef::row_major(x, rows, width);
    let parts: Vec<(std::ops::Range<usize>, Vec<f32>)> = blocks(vocab)
        .into_par_iter()
        .map(|range| {
            let rhs = MatRef::row_major(
                &table[range.start * width..range.end * width],
                range.len(),
                width,
            )
            .t();
            let mut out = vec![0.0f32; rows * range.len()];
            matmul(&mut out, lhs, rhs, false);
            (range, out)
        })
        .collect();
    let mut logits = super::parallel::zeros(rows * vocab);
    logits
        .par_chunks_mut(vocab)
        .enumerate()
        .for_each(|(r, row)| {
            for (range, part) in &parts {
                row[range.clone()].copy_from_slice(&part[r * range.len()..(r + 1) * range.len()]);
            }
        });
    logits
}

/// The gradients of [`forward`] given the logits' gradient `dy` (`rows × vocab`): `dx`
/// (`rows × width`) when `want_x`, and the table's `dE` (`vocab × width`) when `want_table`.
pub(super) fn backward(
    dy: &[f32],
    x: &[f32],
    table: &[f32],
    [rows, width, vocab]: [usize; 3],
    want_x: bool,
    want_table: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    rayon::join(
        || {
            want_x.then(|| {
                let mut dx = vec![0.0f32; rows * width];
                let table = MatRef::row_major(table, vocab, width);
                matmul(&mut dx, MatRef::row_major(dy, rows, vocab), table, false);
                dx
            })
        },
        || {
            want_table.then(|| {
                let mut de = super::parallel::zeros(vocab * width);
                let x = MatRef::row_major(x, rows, width);
                let ranges = blocks(vocab);
                let slices = super::parallel::split_by_samples(&mut de, width, &ranges);
                super::parallel::run(&ranges, slices, |_, range, out: &mut [f32]| {
                    // Columns `range` of `dy`, transposed: `range.len() × rows`.
                    let lhs = MatRef {
                        data: &dy[range.start..],
                        rows: range.len(),
                        cols: rows,
                        row_stride: 1,
                        col_stride: vocab,
                    };
                    matmul(out, lhs, x, false);
                });
                de
            })
        },
    )
}
