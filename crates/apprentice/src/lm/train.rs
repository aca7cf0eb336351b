//! Training one student language model for a fixed number of steps on a list of token
//! sequences, from the next tokens alone or distilled from the teacher's cached top-k
//! distributions, with its held-out perplexity measured along the way.
//!
//! The batch order depends only on the seed (one ChaCha shuffle of the training sequences per
//! pass), so every student of a seed sees the same sequences in the same order. An on-policy
//! student ([`OnPolicy`]) replaces a seeded share of those batches by its own continuations
//! of their prompts, which the teacher scores on the spot.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::config::Continuations;
use super::error::LmError;
use super::llama::{Llama, LlamaConfig};
use super::logit_cache::TopKLogits;
use super::metrics::evaluate;
use super::objectives::TokenLoss;
use super::sequences::{continue_prompts, prompt_of, row_seed};
use super::student::{LmBatch, train_step};
use super::teacher::batch_ids;
use crate::backend::{self, ComputeDevice};
use crate::distill::optim::OptimizerSpec;

/// What every student of a seed trains on.
#[derive(Debug, Clone)]
pub struct TrainPlan<'a> {
    /// Every sequence of the run (the teacher cache is indexed the same way).
    pub sequences: &'a [Vec<u32>],
    /// Indices of the training sequences.
    pub train: &'a [usize],
    /// Optimiser steps.
    pub steps: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// The optimiser and schedule.
    pub optimizer: &'a OptimizerSpec,
    /// Seed of the batch order.
    pub seed: u64,
    /// Steps between two curve points (0: only at the end).
    pub eval_every: usize,
    /// The held-out sequences of the curve.
    pub curve: &'a [Vec<u32>],
    /// Sequences per evaluation forward.
    pub eval_batch: usize,
    /// On-policy distillation: the share of steps on the student's own sequences.
    pub on_policy: Option<OnPolicy<'a>>,
}

/// On-policy distillation (GKD): with probability `lambda` per step (drawn from the seed), the
/// batch is the student's continuations of the batch's prompts, up to `max_len` tokens, and
/// the teacher's logits on them are computed on the spot; the loss covers the continuations
/// alone. The other steps train on the corpus batch with the cached distributions.
#[derive(Debug, Clone, Copy)]
pub struct OnPolicy<'a> {
    /// Probability that a step is on-policy.
    pub lambda: f64,
    /// The prompts and the student's sampling.
    pub continuations: Continuations,
    /// Longest generated sequence.
    pub max_len: usize,
    /// The token that ends a text, if any.
    pub stop: Option<u32>,
    /// The teacher's decoder (on the inference side of the device).
    pub teacher: &'a Llama,
    /// Its shape.
    pub teacher_config: &'a LlamaConfig,
}

/// A student's held-out perplexity and accuracy over training.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LmCurve {
    /// Steps done at each point (0: the initial weights).
    pub steps: Vec<usize>,
    /// Mean training loss of the steps since the previous point (NaN at step 0; `null` in
    /// JSON).
    #[serde(deserialize_with = "crate::nullable::numbers")]
    pub train_loss: Vec<f64>,
    /// Perplexity of the curve's held-out sequences.
    #[serde(deserialize_with = "crate::nullable::numbers")]
    pub perplexity: Vec<f64>,
    /// Next-token accuracy on them.
    #[serde(deserialize_with = "crate::nullable::numbers")]
    pub accuracy: Vec<f64>,
    /// Learning rate of the last step before the point.
    #[serde(deserialize_with = "crate::nullable::numbers")]
    pub learning_rate: Vec<f64>,
}

/// A trained student and how its training went.
#[derive(Debug)]
pub struct TrainedStudent {
    /// The student, without gradient tracking.
    pub model: Llama,
    /// Its curve.
    pub curve: LmCurve,
    /// Seconds of training (the curve's evaluations excluded).
    pub train_time_s: f64,
    /// Real (unpadded) tokens trained on per second.
    pub tokens_per_s: f64,
    /// Steps that trained on the student's own sequences.
    pub on_policy_steps: usize,
}

/// What an on-policy step trains on.
struct OnPolicyBatch {
    /// The student's sequences: each prompt and its continuation.
    sequences: Vec<Vec<u32>>,
    /// The teacher's logits on them, `[rows, width, vocab]`.
    teacher_logits: Tensor<3>,
    /// The length of each row's prompt.
    prompts: Vec<usize>,
}

/// The student's continuations of the prompts of `prompts_from`, row `r` sampled from
/// `row_seed(step_seed, r)`, and the teacher's logits on them (on `training`).
fn on_policy_batch(
    on_policy: &OnPolicy<'_>,
    student: (&Llama, &LlamaConfig),
    prompts_from: &[Vec<u32>],
    step_seed: u64,
    inference: &Device,
    training: &Device,
) -> Result<OnPolicyBatch, LmError> {
    let settings = &on_policy.continuations;
    let seeds: Vec<u64> = (0..prompts_from.len() as u64)
        .map(|r| row_seed(step_seed, r))
        .collect();
    let sequences = continue_prompts(
        student.0,
        student.1,
        prompts_from,
        settings,
        &seeds,
        on_policy.max_len,
        on_policy.stop,
        prompts_from.len(),
        inference,
    )?;
    let inputs: Vec<Vec<u32>> = sequences
        .iter()
        .map(|s| s[..s.len().saturating_sub(1).max(1)].to_vec())
        .collect();
    let ids = batch_ids(&inputs, on_policy.teacher_config, inference)?;
    let [rows, width] = ids.dims();
    let logits = backend::to_host(on_policy.teacher.forward(ids));
    let vocab = on_policy.teacher_config.vocab_size;
    let teacher_logits =
        Tensor::<3>::from_data(TensorData::new(logits, [rows, width, vocab]), training);
    let prompts = prompts_from
        .iter()
        .map(|s| prompt_of(s, settings.prompt_tokens).len())
        .collect();
    Ok(OnPolicyBatch {
        sequences,
        teacher_logits,
        prompts,
    })
}

/// The sequence indices of every step: `plan.train` shuffled once per pass from `seed`.
pub fn batch_order(train: &[usize], steps: usize, batch_size: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_ba7c);
    let mut pool: Vec<usize> = Vec::new();
    let mut batches = Vec::with_capacity(steps);
    for _ in 0..steps {
        let mut batch = Vec::with_capacity(batch_size);
        while batch.len() < batch_size.min(train.len()) {
            if pool.is_empty() {
                pool = train.to_vec();
                pool.shuffle(&mut rng);
            }
            batch.push(pool.pop().expect("refilled above"));
        }
        batches.push(batch);
    }
    batches
}

/// Trains `model` (on `device`'s training side) with `loss` against `teacher`'s cached
/// distributions, or on the next tokens alone when `teacher` is `None`; `progress` hears
/// every step and its loss.
pub fn train_student(
    mut model: Llama,
    config: &LlamaConfig,
    plan: &TrainPlan<'_>,
    teacher: Option<(&TopKLogits, &TokenLoss)>,
    device: &ComputeDevice,
    progress: &mut dyn FnMut(usize, f32),
) -> Result<TrainedStudent, LmError> {
    let training = device.training();
    let inference = device.inference();
    let mut optimizer = plan.optimizer.build();
    let ce = TokenLoss {
        divergence: super::objectives::TokenDivergence::ForwardKl,
        temperature: 1.0,
        ce_weight: 1.0,
    };
    let loss = teacher.map_or(&ce, |(_, loss)| loss);
    let batches = batch_order(plan.train, plan.steps, plan.batch_size, plan.seed);
    let steps_per_epoch = plan.train.len().div_ceil(plan.batch_size).max(1);
    let mut curve = LmCurve::default();
    let mut point = |model: &Llama, step: usize, losses: &mut Vec<f32>, lr: f64| {
        let metrics = evaluate(
            &model.valid(),
            config,
            plan.curve,
            plan.eval_batch,
            &inference,
        )?;
        curve.steps.push(step);
        curve.train_loss.push(if losses.is_empty() {
            f64::NAN
        } else {
            losses.iter().map(|&l| l as f64).sum::<f64>() / losses.len() as f64
        });
        losses.clear();
        curve.perplexity.push(metrics.perplexity());
        curve.accuracy.push(metrics.accuracy);
        curve.learning_rate.push(lr);
        Ok::<_, LmError>(())
    };
    let mut losses = Vec::new();
    point(&model, 0, &mut losses, 0.0)?;
    let mut seconds = 0.0;
    let mut tokens = 0usize;
    let mut on_policy_steps = 0;
    // Its own stream, so that the corpus batches are those of every other student of the seed.
    let mut coin = ChaCha8Rng::seed_from_u64(plan.seed ^ 0x0a9_1c7e);
    for (step, batch) in batches.iter().enumerate() {
        let started = Instant::now();
        let sequences: Vec<Vec<u32>> = batch.iter().map(|&i| plan.sequences[i].clone()).collect();
        let on_policy = plan
            .on_policy
            .as_ref()
            .filter(|p| coin.random::<f64>() < p.lambda);
        let (lm_batch, teacher_logits) = if let Some(on_policy) = on_policy {
            if teacher.is_none() {
                return Err(LmError::Invalid(
                    "on-policy training needs a distillation loss".into(),
                ));
            }
            let OnPolicyBatch {
                sequences: generated,
                teacher_logits: logits,
                prompts,
            } = on_policy_batch(
                on_policy,
                (&model.valid(), config),
                &sequences,
                row_seed(plan.seed, step as u64),
                &inference,
                &training,
            )?;
            on_policy_steps += 1;
            tokens += generated
                .iter()
                .zip(&prompts)
                .map(|(s, &p)| s.len() - p.max(1).min(s.len()))
                .sum::<usize>();
            let lm_batch = LmBatch::completions(&generated, &prompts, &training)?;
            (lm_batch, Some(logits))
        } else {
            tokens += sequences.iter().map(|s| s.len() - 1).sum::<usize>();
            let lm_batch = LmBatch::new(&sequences, &training)?;
            let teacher_logits = teacher.map(|(cache, _)| {
                let [rows, width] = lm_batch.inputs.dims();
                let values = cache.dense_batch(batch, width);
                Tensor::<3>::from_data(
                    TensorData::new(values, [rows, width, cache.vocab]),
                    &training,
                )
            });
            (lm_batch, teacher_logits)
        };
        let lr = plan
            .optimizer
            .learning_rate(step, steps_per_epoch, plan.steps);
        let (next, value) = train_step(model, &mut optimizer, lr, &lm_batch, teacher_logits, loss)
            .map_err(|e| LmError::Invalid(format!("step {}: {e}", step + 1)))?;
        model = next;
        seconds += started.elapsed().as_secs_f64();
        losses.push(value);
        progress(step + 1, value);
        let done = step + 1;
        if done == plan.steps || (plan.eval_every > 0 && done.is_multiple_of(plan.eval_every)) {
            point(&model, done, &mut losses, lr)?;
        }
    }
    Ok(TrainedStudent {
        model: model.valid(),
        curve,
        train_time_s: seconds,
        tokens_per_s: tokens as f64 / seconds.max(1e-9),
        on_policy_steps,
    })
}
