//! Splitting a batch into a fixed number of chunks, run on rayon's pool.
//!
//! The chunk boundaries depend only on the batch size, never on the number of threads, so that
//! sums taken chunk by chunk and then added in chunk order give bit-identical results on one
//! thread and on many.

use std::ops::Range;

use rayon::prelude::*;

/// At most this many chunks per batch: enough to keep a few cores busy with uneven samples,
/// few enough that the per-chunk partial gradients stay cheap to add up.
const MAX_CHUNKS: usize = 8;

/// The sample ranges a batch of `batch` samples is split into: `min(batch, 8)` consecutive,
/// nearly equal ranges.
pub(super) fn chunks(batch: usize) -> Vec<Range<usize>> {
    let count = batch.min(MAX_CHUNKS);
    (0..count)
        .map(|c| c * batch / count..(c + 1) * batch / count)
        .collect()
}

/// Splits `data`, which holds `per_sample` values for each sample, into one mutable slice per
/// range of `ranges` (consecutive and starting at 0). With `per_sample == 0` every slice is empty.
pub(super) fn split_by_samples<'a, T>(
    mut data: &'a mut [T],
    per_sample: usize,
    ranges: &[Range<usize>],
) -> Vec<&'a mut [T]> {
    ranges
        .iter()
        .map(|range| {
            let (head, tail) = std::mem::take(&mut data).split_at_mut(range.len() * per_sample);
            data = tail;
            head
        })
        .collect()
}

/// Runs `work(chunk index, sample range, slices)` for every chunk on rayon's pool and returns
/// the results in chunk order.
pub(super) fn run<S, R, F>(ranges: &[Range<usize>], slices: Vec<S>, work: F) -> Vec<R>
where
    S: Send,
    R: Send,
    F: Fn(usize, Range<usize>, S) -> R + Sync + Send,
{
    slices
        .into_par_iter()
        .enumerate()
        .map(|(index, slice)| work(index, ranges[index].clone(), slice))
        .collect()
}

/// Below this many floats a buffer is zeroed on the calling thread.
const PARALLEL_ZEROS: usize = 1 << 16;

/// `len` zeros. A large buffer is written on rayon's pool, so that its first touch (the
/// zeroing, and the page faults of memory fresh from the system) is split over the cores
/// instead of running on one while the others wait.
pub(super) fn zeros(len: usize) -> Vec<f32> {
    if len < PARALLEL_ZEROS {
        return vec![0.0; len];
    }
    let mut buffer = Vec::with_capacity(len);
    buffer.par_extend(rayon::iter::repeat_n(0.0f32, len));
    buffer
}
