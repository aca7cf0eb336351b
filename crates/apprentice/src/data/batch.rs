//! Epoch orders, mini-batches and seed derivation.
//!
//! The order of every epoch is recomputed from `(seed, epoch)` alone, so a resumed run needs
//! no saved generator state to continue exactly where it stopped.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::Dataset;

/// Keeps epoch orders independent of other generators derived from the same user seed.
const EPOCH_ORDER_STREAM: u64 = 0x6570_6f63_685f_6f72; // "epoch_or"

/// One step of the splitmix64 generator: a bijective mix with full avalanche.
fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Derives the seed of sub-stream `stream` of `seed` (an epoch, a class, a purpose tag).
///
/// For a fixed `seed` distinct streams give distinct results, and vice versa, because both
/// splitmix64 steps are bijections; nearby inputs give unrelated outputs.
pub fn mix_seed(seed: u64, stream: u64) -> u64 {
    splitmix64(splitmix64(seed) ^ stream)
}

/// The ChaCha8 generator every random choice of the data module starts from.
pub(super) fn rng_for(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A random permutation of `0..len` for `epoch`, a pure function of `(len, seed, epoch)`.
pub fn epoch_order(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut rng = rng_for(mix_seed(mix_seed(seed, EPOCH_ORDER_STREAM), epoch));
    order.shuffle(&mut rng);
    order
}

/// Copies the samples at `indices` into `features` and `labels`, clearing them first; their
/// capacity is reused, so a training loop allocates only for its first batch.
///
/// # Panics
///
/// If an index is not below `data.len()`; indices come from [`epoch_order`] or a split, never
/// from user input.
pub fn gather(data: &Dataset, indices: &[usize], features: &mut Vec<f32>, labels: &mut Vec<u32>) {
    features.clear();
    labels.clear();
    features.reserve(indices.len() * data.shape.len());
    labels.reserve(indices.len());
    for &index in indices {
        features.extend_from_slice(data.sample(index));
        labels.push(data.labels[index]);
    }
}

/// Splits an epoch order into batches of `batch_size` indices; the last batch may be shorter.
/// A `batch_size` of 0 is treated as 1 rather than looping forever or panicking.
pub fn batches(order: &[usize], batch_size: usize) -> impl Iterator<Item = &[usize]> {
    order.chunks(batch_size.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SampleShape;

    #[test]
    fn epoch_order_is_a_permutation() {
        let mut order = epoch_order(1000, 7, 3);
        order.sort_unstable();
        assert_eq!(order, (0..1000).collect::<Vec<_>>());
        assert!(epoch_order(0, 1, 1).is_empty());
        assert_eq!(epoch_order(1, 1, 1), vec![0]);
    }

    #[test]
    fn epoch_order_is_deterministic_and_varies() {
        assert_eq!(epoch_order(500, 42, 5), epoch_order(500, 42, 5));
        assert_ne!(epoch_order(500, 42, 5), epoch_order(500, 42, 6));
        assert_ne!(epoch_order(500, 42, 5), epoch_order(500, 43, 5));
        assert_ne!(epoch_order(500, 42, 0), (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn mix_seed_separates_streams() {
        let seeds: std::collections::HashSet<u64> = (0..1000).map(|s| mix_seed(1, s)).collect();
        assert_eq!(seeds.len(), 1000);
        assert_ne!(mix_seed(1, 2), mix_seed(2, 1));
    }

    #[test]
    fn batches_keep_the_last_partial_batch() {
        let order: Vec<usize> = (0..10).collect();
        let sizes: Vec<usize> = batches(&order, 4).map(<[usize]>::len).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        assert_eq!(batches(&order, 0).count(), 10);
        assert_eq!(batches(&[], 3).count(), 0);
    }

    #[test]
    fn gather_copies_samples_and_reuses_buffers() {
        let data = Dataset {
            name: "t".into(),
            features: (0..12).map(|v| v as f32).collect(),
            labels: vec![0, 1, 2, 0],
            shape: SampleShape::flat(3),
            num_classes: 3,
        };
        let mut features = Vec::new();
        let mut labels = Vec::new();
        gather(&data, &[3, 1], &mut features, &mut labels);
        assert_eq!(features, vec![9.0, 10.0, 11.0, 3.0, 4.0, 5.0]);
        assert_eq!(labels, vec![0, 1]);
        let capacity = features.capacity();
        gather(&data, &[2], &mut features, &mut labels);
        assert_eq!(features, vec![6.0, 7.0, 8.0]);
        assert_eq!(labels, vec![2]);
        assert_eq!(features.capacity(), capacity);
    }
}
