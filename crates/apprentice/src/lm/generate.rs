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

/// Continuations of `prompts`, which all have the same length, generated together through one
/// KV cache: up to `max_new` tokens each, row `r` drawn with `rngs[r]` (so that a row's
/// sampling does not depend on the others'), a row ending after `stop` when it generates it.
/// Returns the new tokens of each row.
#[allow(clippy::too_many_arguments)]
pub fn generate_batch(
    model: &Llama,
    config: &LlamaConfig,
    prompts: &[Vec<u32>],
    max_new: usize,
    sampling: &Sampling,
    rngs: &mut [ChaCha8Rng],
    stop: Option<u32>,
    device: &Device,
) -> Result<Vec<Vec<u32>>, LmError> {
    sampling.validate()?;
    let rows = prompts.len();
    let Some(len) = prompts.first().map(Vec::len) else {
        return Ok(Vec::new());
    };
    if len == 0 || prompts.iter().any(|p| p.len() != len) {
        return Err(LmError::Invalid(
            "batched generation needs non-empty prompts of one length".into(),
        ));
    }
    if rngs.len() != rows {
        return Err(LmError::Invalid(format!(
            "{rows} prompts but {} samplers",
            rngs.len()
        )));
    }
    if len + max_new > config.max_len {
        return Err(LmError::Invalid(format!(
            "{len} prompt tokens and {max_new} new ones exceed the context of {}",
            config.max_len
        )));
    }
    if let Some(&id) = prompts
        .iter()
        .flatten()
        .find(|&&id| id as usize >= config.vocab_size)
    {
        return Err(LmError::Invalid(format!(
            "token id {id} is outside the vocabulary of {}",
            config.vocab_size
        )));
    }
    let mut cache = KvCache::new();
    let mut input: Vec<i64> = prompts.iter().flatten().map(|&i| i as i64).collect();
    let mut width = len;
    let mut out: Vec<Vec<u32>> = vec![Vec::with_capacity(max_new); rows];
    let mut done = vec![false; rows];
    let output = model.output_weight();
    for _ in 0..max_new {
        if done.iter().all(|&d| d) {
            break;
        }
        let ids = Tensor::<2, Int>::from_data(TensorData::new(input, [rows, width]), device);
        let logits = model.forward_cached_with(ids, &mut cache, &output);
        let [_, _, vocab] = logits.dims();
        let last = backend::to_host(logits.slice([0..rows, width - 1..width, 0..vocab]));
        let mut next_input = Vec::with_capacity(rows);
        for (r, row) in last.chunks_exact(vocab).enumerate() {
            // A finished row still runs (the batch moves together); its tokens are dropped.
            let next = choose(row, sampling, &mut rngs[r]);
            if !done[r] {
                out[r].push(next);
                done[r] = Some(next) == stop;
            }
            next_input.push(next as i64);
        }
        input = next_input;
        width = 1;
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
