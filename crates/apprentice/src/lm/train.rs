//! Training one student language model for a fixed number of steps on a list of token
//! sequences, from the next tokens alone or distilled from the teacher's cached top-k
//! distributions, with its held-out perplexity measured along the way.
//!
//! The batch order depends only on the seed (one ChaCha shuffle of the training sequences per
//! pass), so every student of a seed sees the same sequences in the same order.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::error::LmError;
use super::llama::{Llama, LlamaConfig};
use super::logit_cache::TopKLogits;
use super::metrics::evaluate;
use super::objectives::TokenLoss;
use super::student::{LmBatch, train_step};
use crate::backend::ComputeDevice;
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
    for (step, batch) in batches.iter().enumerate() {
        let started = Instant::now();
        let sequences: Vec<Vec<u32>> = batch.iter().map(|&i| plan.sequences[i].clone()).collect();
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
    })
}
