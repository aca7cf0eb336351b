//! Throughput of a decoder: tokens per second of generation at batch 1 (with the KV cache)
//! and of scoring batches of sequences (one forward over every position).

use std::time::Instant;

use burn::tensor::Device;

use super::error::LmError;
use super::generate::{Sampling, generate};
use super::llama::{Llama, LlamaConfig};
use super::teacher::batch_ids;
use crate::backend;

/// New tokens per second of greedy generation of `new` tokens after `prompt` (the prompt's
/// own forward included in the time, as a user waits for it).
pub fn generation_tokens_per_second(
    model: &Llama,
    config: &LlamaConfig,
    prompt: &[u32],
    new: usize,
    device: &Device,
) -> Result<f64, LmError> {
    let started = Instant::now();
    let out = generate(
        model,
        config,
        prompt,
        new,
        &Sampling::greedy(),
        None,
        device,
    )?;
    Ok(out.len() as f64 / started.elapsed().as_secs_f64())
}

/// Real (unpadded) tokens per second of computing the logits of `sequences`, `batch` at a time.
pub fn scoring_tokens_per_second(
    model: &Llama,
    config: &LlamaConfig,
    sequences: &[Vec<u32>],
    batch: usize,
    device: &Device,
) -> Result<f64, LmError> {
    let started = Instant::now();
    let mut tokens = 0;
    for chunk in sequences.chunks(batch.max(1)) {
        let ids = batch_ids(chunk, config, device)?;
        // Copying the logits to the host is part of scoring: a cache or a loss reads them.
        let logits = backend::to_host(model.forward(ids));
        std::hint::black_box(logits);
        tokens += chunk.iter().map(Vec::len).sum::<usize>();
    }
    Ok(tokens as f64 / started.elapsed().as_secs_f64())
}
