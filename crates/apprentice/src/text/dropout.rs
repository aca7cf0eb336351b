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
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::models::kernels::dropout_with_mask;

/// Elements drawn per task: enough that copying and repositioning the generator is negligible.
const CHUNK: usize = 1 << 15;

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
pub fn keep_mask(rng: &mut ChaCha8Rng, len: usize, keep: f64) -> Vec<f32> {
    let start = rng.get_word_pos();
    let base = rng.clone();
    let mut mask = vec![0.0f32; len];
    mask.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, values)| {
            let mut local = base.clone();
            // Two 32-bit words per `f64`.
            local.set_word_pos(start + 2 * (chunk * CHUNK) as u128);
            for v in values {
                *v = f32::from(local.random::<f64>() < keep);
            }
        });
    rng.set_word_pos(start + 2 * len as u128);
    mask
}
