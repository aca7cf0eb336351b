//! Text generation with a [`Llama`] and its KV cache: greedy decoding, or sampling with a
//! temperature and nucleus (top-p) truncation from a seeded ChaCha generator, so that the
//! same seed gives the same continuation.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::error::LmError;
use super::llama::{KvCache, Llama, LlamaConfig};
use crate::backend;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Divides the logits; `0` means greedy (the most likely token, ties to the lowest id).
    pub temperature: f32,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p` (1 keeps
    /// all).
    pub top_p: f32,
    /// Seed of the sampler.
    pub seed: u64,
}

impl Sampling {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        }
    }

    /// Checks the settings; the message names the field.
    pub fn validate(&self) -> Result<(), LmError> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(LmError::Invalid(format!(
                "temperature: expected a number ≥ 0, found {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(LmError::Invalid(format!(
                "top_p: expected a number in (0, 1], found {}",
                self.top_p
            )));
        }
        Ok(())
    }
}

/// Up to `max_new` tokens after `prompt`, stopping after `stop` when it is generated; the
/// prompt is read once and every new token costs one cached step.
pub fn generate(
    model: &Llama,
    config: &LlamaConfig,
    prompt: &[u32],
    max_new: usize,
    sampling: &Sampling,
    stop: Option<u32>,
    device: &Device,
) -> Result<Vec<u32>, LmError> {
    sampling.validate()?;
    if prompt.is_empty() {
        return Err(LmError::Invalid("the prompt has no tokens".into()));
    }
    if prompt.len() + max_new > config.max_len {
        return Err(LmError::Invalid(format!(
            "{} prompt tokens and {max_new} new ones exceed the context of {}",
            prompt.len(),
            config.max_len
        )));
    }
    if let Some(&id) = prompt.iter().find(|&&id| id as usize >= config.vocab_size) {
        return Err(LmError::Invalid(format!(
            "token id {id} is outside the vocabulary of {}",
            config.vocab_size
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(sampling.seed);
    let mut cache = KvCache::new();
    let mut input: Vec<u32> = prompt.to_vec();
    let mut out = Vec::with_capacity(max_new);
    let output = model.output_weight();
    for _ in 0..max_new {
        let ids: Vec<i64> = input.iter().map(|&i| i as i64).collect();
        let len = ids.len();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, len]), device);
        let logits = model.forward_cached_with(ids, &mut cache, &output);
        let [_, _, vocab] = logits.dims();
        let last = backend::to_host(logits.slice([0..1, len - 1..len, 0..vocab]));
        let next = choose(&last, sampling, &mut rng);
        out.push(next);
        if Some(next) == stop {
            break;
        }
        input = vec![next];
    }
    Ok(out)
}

/// The next token from one position's logits.
pub fn choose(logits: &[f32], sampling: &Sampling, rng: &mut ChaCha8Rng) -> u32 {
    if sampling.temperature == 0.0 {
        return argmax(logits);
    }
    let scaled: Vec<f64> = logits
        .iter()
        .map(|&l| l as f64 / sampling.temperature as f64)
        .collect();
    let max = scaled.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = scaled.iter().map(|&l| (l - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
    // The nucleus: most likely first, until the kept mass reaches top_p.
    let mut kept = 0.0;
    let mut cut = order.len();
    for (rank, &i) in order.iter().enumerate() {
        kept += weights[i];
        if kept >= sampling.top_p as f64 * total {
            cut = rank + 1;
            break;
        }
    }
    let mut draw = rng.random::<f64>() * kept;
    for &i in &order[..cut] {
        draw -= weights[i];
        if draw < 0.0 {
            return i as u32;
        }
    }
    order[cut - 1] as u32
}

/// Index of the largest value (the first of ties).
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}
