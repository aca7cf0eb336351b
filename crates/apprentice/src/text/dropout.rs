//! BERT's dropout during training: where the masks come from and how they are drawn.
//!
//! A seeded generator draws one `f64` per element and keeps the element when it is below
//! `1 − p`. The draws of a large tensor are split over rayon's pool: ChaCha's output is one
//! stream of 32-bit words, an `f64` takes the next two, so a task that starts its own copy of
//! the generator at word `start + 2 · i` draws exactly what the single sequential loop would
//! have drawn for element `i`. The masks are the same as one thread's, and the generator ends
//! where that loop would have left it.

use std::sync::{Arc, Mutex};

use burn::tensor::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::models::kernels::dropout_with_mask;

/// Elements drawn per task: enough that copying and repositioning the generator is negligible.
const CHUNK: usize = 1 << 15;

/// Elements whose words a task reads from its generator at a time (8 KiB, in the L1 cache).
const BULK: usize = 1024;

/// Dropout probabilities of a BERT model (`hidden_dropout_prob`,
/// `attention_probs_dropout_prob`) and where the masks come from; zero for inference.
#[derive(Debug, Clone, Default)]
pub struct BertDropout {
    /// After the embeddings and after each block's output projection.
    pub hidden: f64,
    /// On the attention probabilities.
    pub attention: f64,
    /// A seeded generator for the masks, so that a run repeats whatever else draws random
    /// numbers meanwhile; `None`: burn's generator for the device.
    pub generator: Option<Arc<Mutex<ChaCha8Rng>>>,
}

impl BertDropout {
    /// The same probabilities with masks drawn from a generator seeded with `seed`.
    pub fn seeded(mut self, seed: u64) -> Self {
        self.generator = Some(Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))));
        self
    }

    /// Inverted dropout with probability `prob` (identity when 0 or off autodiff devices, as
    /// burn's `Dropout`).
    pub fn apply<const D: usize>(&self, prob: f64, x: Tensor<D>) -> Tensor<D> {
        if prob <= 0.0 || !x.device().is_autodiff() {
            return x;
        }
        let keep = 1.0 - prob;
        match &self.generator {
            Some(generator) => {
                let mut rng = generator.lock().unwrap_or_else(|e| e.into_inner());
                let mask = keep_mask(&mut rng, x.dims().iter().product(), keep);
                drop(rng);
                dropout_with_mask(x, mask, keep)
            }
            None => {
                let random = x.random_like(burn::tensor::Distribution::Bernoulli(keep));
                x * random * (1.0 / keep)
            }
        }
    }

    /// Dropout with the hidden-state probability.
    pub(super) fn hidden<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.apply(self.hidden, x)
    }
}

/// `len` mask values, 1 where a fresh `f64` from `rng` is below `keep` and 0 elsewhere: the
/// values of `(0..len).map(|_| f32::from(rng.random::<f64>() < keep))`, drawn on every core,
/// with `rng` left where that loop leaves it.
///
/// Each task reads its generator's words in bulk (`fill_bytes`, the stream's words in order)
/// and compares integers: `rand` makes an `f64` of the next `u64` as `(u >> 11) · 2⁻⁵³`, exact,
/// so it is below `keep` exactly when `u >> 11` is below `⌈keep · 2⁵³⌉` (also exact). Drawing
/// one `f64` at a time spent more on the generator's bookkeeping than on ChaCha itself.
pub fn keep_mask(rng: &mut ChaCha8Rng, len: usize, keep: f64) -> Vec<f32> {
    let start = rng.get_word_pos();
    let base = rng.clone();
    let threshold = keep_threshold(keep);
    let mut mask = vec![0.0f32; len];
    mask.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, values)| {
            let mut local = base.clone();
            // Two 32-bit words per `f64`.
            local.set_word_pos(start + 2 * (chunk * CHUNK) as u128);
            let mut words = [0u8; 8 * BULK];
            for values in values.chunks_mut(BULK) {
                let bytes = &mut words[..8 * values.len()];
                local.fill_bytes(bytes);
                for (v, word) in values.iter_mut().zip(bytes.chunks_exact(8)) {
                    let draw = u64::from_le_bytes(word.try_into().expect("eight bytes"));
                    *v = f32::from((draw >> 11) < threshold);
                }
            }
        });
    rng.set_word_pos(start + 2 * len as u128);
    mask
}

/// The `n = u >> 11` below which `rand`'s `f64` of `u`, `n · 2⁻⁵³`, is below `keep`:
/// `⌈keep · 2⁵³⌉`. The product is exact (a power of two), and an integer is below a real number
/// exactly when it is below that number's ceiling. `as` saturates, so a `keep` of 0 or below (or
/// NaN) keeps nothing, as the comparison would.
fn keep_threshold(keep: f64) -> u64 {
    (keep * (1u64 << 53) as f64).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::keep_threshold;

    #[test]
    fn the_integer_threshold_agrees_with_the_float_comparison_at_its_edge() {
        let scale = 1.0 / (1u64 << 53) as f64;
        for keep in [
            0.0,
            1e-300,
            0.1,
            1.0 / 3.0,
            0.5,
            0.9,
            1.0 - f64::EPSILON,
            1.0,
        ] {
            let threshold = keep_threshold(keep);
            let edge = threshold.saturating_sub(2)..(threshold + 2).min(1 << 53);
            for n in edge {
                assert_eq!(
                    n < threshold,
                    (n as f64) * scale < keep,
                    "keep {keep}, n {n}, threshold {threshold}"
                );
            }
        }
        assert_eq!(keep_threshold(-0.5), 0);
        assert_eq!(keep_threshold(f64::NAN), 0);
    }
}
