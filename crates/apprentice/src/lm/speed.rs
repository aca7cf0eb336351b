//! Throughput of a decoder: tokens per second of generation at batch 1 (with the KV cache),
//! of scoring batches of sequences (one forward over every position), and of training a
//! student (forward, loss, backward and optimiser update).

use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor, TensorData};

use super::error::LmError;
use super::generate::{Sampling, generate};
use super::llama::{Llama, LlamaConfig};
use super::logit_cache::TopKLogits;
use super::objectives::TokenLoss;
use super::student::{LmBatch, train_step};
use super::teacher::batch_ids;
use crate::backend::{self, ComputeDevice};
use crate::distill::optim::OptimizerSpec;

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

/// What [`training_tokens_per_second`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingSpeed {
    /// Timed optimiser steps (the warm-up steps excluded).
    pub steps: usize,
    /// Real (unpadded) target tokens of the timed steps.
    pub tokens: usize,
    /// Seconds of the timed steps.
    pub seconds: f64,
}

impl TrainingSpeed {
    /// Target tokens trained on per second.
    pub fn tokens_per_s(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }
}

/// Target tokens per second of training `model` on `sequences`, `batch` at a time in order
/// (step `i` takes sequences `i · batch ..`, wrapping around), with `loss` against the
/// teacher's cached distributions of the same sequences or on the next tokens alone, at the
/// optimiser's base learning rate. A step is timed as [`super::train::train_student`] times
/// it: the batch and the teacher's dense logits built from the cache, the forward, the loss,
/// the backward and the update. `warmup` untimed steps come first; then steps run until
/// `budget` is spent and at least `min_steps` were timed.
#[allow(clippy::too_many_arguments)]
pub fn training_tokens_per_second(
    mut model: Llama,
    sequences: &[Vec<u32>],
    teacher: Option<(&TopKLogits, &TokenLoss)>,
    optimizer: &OptimizerSpec,
    batch: usize,
    warmup: usize,
    min_steps: usize,
    budget: Duration,
    device: &ComputeDevice,
) -> Result<TrainingSpeed, LmError> {
    if sequences.is_empty() || batch == 0 {
        return Err(LmError::Invalid(
            "timing training needs at least one sequence and a batch of at least 1".into(),
        ));
    }
    if let Some((cache, _)) = teacher
        && cache.sequences() != sequences.len()
    {
        return Err(LmError::Invalid(format!(
            "the teacher cache holds {} sequences, not the {} timed",
            cache.sequences(),
            sequences.len()
        )));
    }
    let training = device.training();
    let mut optimizer_state = optimizer.build();
    let ce = TokenLoss {
        divergence: super::objectives::TokenDivergence::ForwardKl,
        temperature: 1.0,
        ce_weight: 1.0,
    };
    let loss = teacher.map_or(&ce, |(_, loss)| loss);
    let mut speed = TrainingSpeed {
        steps: 0,
        tokens: 0,
        seconds: 0.0,
    };
    let mut step = 0;
    while step < warmup || speed.steps < min_steps.max(1) || speed.seconds < budget.as_secs_f64() {
        let indices: Vec<usize> = (0..batch)
            .map(|i| (step * batch + i) % sequences.len())
            .collect();
        let started = Instant::now();
        let chosen: Vec<Vec<u32>> = indices.iter().map(|&i| sequences[i].clone()).collect();
        let lm_batch = LmBatch::new(&chosen, &training)?;
        let teacher_logits = teacher.map(|(cache, _)| {
            let [rows, width] = lm_batch.inputs.dims();
            let values = cache.dense_batch(&indices, width);
            Tensor::<3>::from_data(
                TensorData::new(values, [rows, width, cache.vocab]),
                &training,
            )
        });
        let (next, _) = train_step(
            model,
            &mut optimizer_state,
            optimizer.lr,
            &lm_batch,
            teacher_logits,
            loss,
        )?;
        model = next;
        let seconds = started.elapsed().as_secs_f64();
        if step >= warmup {
            speed.steps += 1;
            speed.tokens += chosen.iter().map(|s| s.len() - 1).sum::<usize>();
            speed.seconds += seconds;
        }
        step += 1;
    }
    Ok(speed)
}
