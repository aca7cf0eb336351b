//! An embedding table's lookup and its gradient, with flex's floats: the lookup copies rows,
//! and the gradient is flex's `embedding_backward` — a table of zeros to which each looked-up
//! position's gradient row is added, position by position in order, so that a word seen twice
//! sums its two rows in the same order. The table is zeroed on every core (it is the costly
//! part: a BERT vocabulary's table is tens of MiB, for a few thousand rows added).

use rayon::prelude::*;

use super::parallel;

/// The rows `ids` of `table` (rows of `width` floats), one after the other.
pub(super) fn gather(table: &[f32], width: usize, ids: &[usize]) -> Vec<f32> {
    let mut out = parallel::zeros(ids.len() * width);
    out.par_chunks_mut(width.max(1))
        .zip(ids.par_iter())
        .for_each(|(row, &id)| row.copy_from_slice(&table[id * width..(id + 1) * width]));
    out
}

/// The gradient of a table of `rows × width` given the gradient `grad` of each looked-up row
/// (`ids.len() × width`).
pub(super) fn scatter_add(rows: usize, width: usize, ids: &[usize], grad: &[f32]) -> Vec<f32> {
    assert_eq!(
        grad.len(),
        ids.len() * width,
        "embedding: one gradient row per id"
    );
    let mut table = parallel::zeros(rows * width);
    for (&id, g) in ids.iter().zip(grad.chunks(width.max(1))) {
        for (t, &g) in table[id * width..(id + 1) * width].iter_mut().zip(g) {
            *t += g;
        }
    }
    table
}
