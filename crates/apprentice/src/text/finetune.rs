//! Fine-tuning a BERT classifier end to end (or its top layers) on labelled token sequences,
//! with the usual recipe of `transformers`' Trainer: AdamW, a linear warm-up then linear decay
//! to zero, clipping of the gradients' global norm, the model's own dropout, batches padded to
//! their longest sequence, sequences cut at a maximum length. Deterministic for a seed: the
//! order of the examples and the dropout masks come from it (the new head from the caller).

use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::bert::BertConfig;
use super::classifier::{BertClassifier, batch_tensors};
use super::error::TextError;
use super::layer_distill::{LayerPhase, LayerTeacher};
use crate::distill::loss::{KdWeights, kd_loss, labelled_mask};
use crate::distill::optim::{OptimizerKind, OptimizerSpec};

/// The fine-tuning recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct FinetuneSettings {
    /// Passes over the training sequences.
    pub epochs: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Fraction of all steps spent warming the learning rate up linearly from 0.
    pub warmup_ratio: f64,
    /// Largest global gradient norm; larger gradients are scaled down (0: no clipping).
    pub max_grad_norm: f64,
    /// Longest sequence in word pieces; longer ones are cut.
    pub max_length: usize,
    /// Train only the top this many encoder layers (and the head); `None`: the whole encoder.
    pub train_top_layers: Option<usize>,
    /// Seed of the example order and of the dropout masks.
    pub seed: u64,
    /// Dropout before the classification layer; `None`: the config's `hidden_dropout_prob`
    /// (a loaded folder's `classifier_dropout` goes here).
    pub head_dropout: Option<f64>,
    /// One dropout probability for the embeddings, the attention probabilities, the blocks'
    /// outputs and (unless `head_dropout` is set) before the classification layer, in place of
    /// the model config's; `None`: the config's.
    pub dropout: Option<f64>,
    /// The order of the sequences in each epoch, one permutation of their indices per epoch,
    /// in place of the seed's shuffle; `None`: shuffled from `seed`. Given, it replays another
    /// implementation's batches (the PyTorch reference's) so that whole runs can be compared.
    pub epoch_orders: Option<Vec<Vec<usize>>>,
}

impl Default for FinetuneSettings {
    /// `transformers`' usual recipe for sentence classification: 3 epochs of batches of 32,
    /// learning rate 2e-5 with 10% warm-up, weight decay 0.01, clipping at 1, 128 word pieces.
    fn default() -> Self {
        Self {
            epochs: 3,
            batch_size: 32,
            lr: 2e-5,
            weight_decay: 0.01,
            warmup_ratio: 0.1,
            max_grad_norm: 1.0,
            max_length: 128,
            train_top_layers: None,
            seed: 0,
            head_dropout: None,
            dropout: None,
            epoch_orders: None,
        }
    }
}

/// The learning rate of step `step` (from 0) of `total`: linear warm-up over `warmup` steps
/// from 0 to `peak`, then linear decay to 0 at `total`. This is `transformers`'
/// `get_linear_schedule_with_warmup` as PyTorch steps it (the scheduler is stepped after the
/// optimiser, so the first step runs at the rate of step 0, which is 0 when there is a warm-up).
pub fn linear_schedule(step: usize, warmup: usize, total: usize, peak: f64) -> f64 {
    if step < warmup {
        return peak * step as f64 / warmup as f64;
    }
    let remaining = total.saturating_sub(step) as f64;
    let span = total.saturating_sub(warmup).max(1) as f64;
    peak * (remaining / span).clamp(0.0, 1.0)
}

/// Work on one parameter's gradient, run on rayon's pool.
type GradJob<T> = Box<dyn FnOnce() -> T + Send>;

/// Puts one scaled gradient back.
type Registration = Box<dyn FnOnce(&mut GradientsParams) + Send>;

/// Gathers one job per parameter that has a gradient, in the module's visiting order: its
/// squared norm, or its gradient scaled.
struct GradVisitor<'a> {
    grads: &'a mut GradientsParams,
    scale: Option<f64>,
    squares: Vec<GradJob<f64>>,
    scaled: Vec<GradJob<Registration>>,
}

impl ModuleVisitor for GradVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        match self.scale {
            None => {
                if let Some(grad) = self.grads.get::<D>(param.id) {
                    self.squares.push(Box::new(move || {
                        crate::backend::scalar(grad.powi_scalar(2).sum()) as f64
                    }));
                }
            }
            Some(scale) => {
                if let Some(grad) = self.grads.remove::<D>(param.id) {
                    let id = param.id;
                    self.scaled.push(Box::new(move || {
                        let scaled = grad * scale;
                        Box::new(move |grads: &mut GradientsParams| grads.register(id, scaled))
                    }));
                }
            }
        }
    }
}

/// Scales the gradients of `module` so that their global L2 norm is at most `max_norm` (as
/// PyTorch's `clip_grad_norm_`, with its 1e-6 in the denominator); returns the norm before.
///
/// Each gradient's squared norm (and scaled copy) is computed by burn's operations on rayon's
/// pool, one parameter per task; the squares are then added in the module's order, so the
/// norm is the same float as one thread's.
pub fn clip_grad_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let mut visitor = GradVisitor {
        grads,
        scale: None,
        squares: Vec::new(),
        scaled: Vec::new(),
    };
    module.visit(&mut visitor);
    let squares: Vec<f64> = std::mem::take(&mut visitor.squares)
        .into_par_iter()
        .map(|job| job())
        .collect();
    let norm = squares
        .iter()
        .fold(0.0, |total, square| total + square)
        .sqrt();
    if max_norm > 0.0 && norm > max_norm {
        visitor.scale = Some(max_norm / (norm + 1e-6));
        module.visit(&mut visitor);
        let registrations: Vec<_> = std::mem::take(&mut visitor.scaled)
            .into_par_iter()
            .map(|job| job())
            .collect();
        for register in registrations {
            register(visitor.grads);
        }
    }
    norm
}

/// Freezes the embeddings and the lower layers of `model`'s encoder, leaving the top `top`
/// layers, the pooler and the classifier trainable.
pub fn freeze_below_top(mut model: BertClassifier, top: usize) -> BertClassifier {
    let layers = model.bert.layers.len();
    model.bert.embeddings = model.bert.embeddings.no_grad();
    model.bert.layers = model
        .bert
        .layers
        .into_iter()
        .enumerate()
        .map(|(i, layer)| {
            if i + top < layers {
                layer.no_grad()
            } else {
                layer
            }
        })
        .collect();
    model
}

/// What fine-tuning reports after each epoch.
pub trait FinetuneObserver {
    /// Epoch `epoch` (from 1) ended with this mean training loss.
    fn epoch(&mut self, epoch: usize, train_loss: f64);
}

impl FinetuneObserver for () {
    fn epoch(&mut self, _: usize, _: f64) {}
}

/// What a fine-tuned model learns from.
#[derive(Debug, Clone, Copy)]
pub enum FinetuneObjective<'a> {
    /// Cross-entropy with the labels.
    Labels,
    /// Hinton's KD against a teacher's logits, one row per training sequence.
    Kd {
        /// `sequences × classes` teacher logits, row-major, in the order of the sequences.
        teacher_logits: &'a [f32],
        /// Temperature and label weight.
        weights: KdWeights,
    },
    /// Hinton's KD and an inner-layer loss against the teacher's encoder (hidden states,
    /// attentions, value relations or cosine), computed on each batch: summed, or the
    /// inner-layer loss alone in the first epochs and KD alone after
    /// ([`LayerTeacher::phase`]).
    KdLayers {
        /// `sequences × classes` teacher logits, row-major, in the order of the sequences.
        teacher_logits: &'a [f32],
        /// Temperature and label weight.
        weights: KdWeights,
        /// The teacher's encoder and the inner-layer loss.
        layers: &'a LayerTeacher,
    },
}

impl<'a> FinetuneObjective<'a> {
    /// The teacher's logits of the KD objectives.
    fn teacher_logits(&self) -> Option<&'a [f32]> {
        match *self {
            FinetuneObjective::Labels => None,
            FinetuneObjective::Kd { teacher_logits, .. }
            | FinetuneObjective::KdLayers { teacher_logits, .. } => Some(teacher_logits),
        }
    }
}

/// What the optimiser updates: the classifier, and the projection a hidden-state loss learns
/// beside it (TinyBERT's `W_h`, dropped after training).
#[derive(Module, Debug)]
struct Trainee {
    model: BertClassifier,
    projection: Option<Linear>,
}

/// Texts on which [`finetune_with`] measures accuracy after each epoch.
#[derive(Debug, Clone, Copy)]
pub struct FinetuneValidation<'a> {
    /// Unpadded id sequences.
    pub sequences: &'a [Vec<u32>],
    /// Their classes.
    pub labels: &'a [u32],
}

/// The outcome of [`finetune`].
#[derive(Debug)]
pub struct FinetuneOutcome {
    /// The trained model, on the device without gradients.
    pub model: BertClassifier,
    /// Mean training loss of each step, in order.
    pub step_losses: Vec<f64>,
    /// Mean training loss of each epoch.
    pub epoch_losses: Vec<f64>,
    /// Validation accuracy after each epoch (empty without validation texts).
    pub validation_accuracy: Vec<f64>,
    /// Learning rate of each epoch's first step.
    pub learning_rate: Vec<f64>,
    /// Optimisation steps taken.
    pub steps: usize,
    /// Wall-clock seconds of the training loop.
    pub seconds: f64,
}

/// Fine-tunes `model` (on the training device, `device`, an autodiff device) on `sequences`
/// (unpadded token ids with special tokens) and their `labels` with cross-entropy.
pub fn finetune(
    model: BertClassifier,
    config: &BertConfig,
    sequences: &[Vec<u32>],
    labels: &[u32],
    settings: &FinetuneSettings,
    device: &Device,
    observer: &mut dyn FinetuneObserver,
) -> Result<FinetuneOutcome, TextError> {
    finetune_with(
        model,
        config,
        sequences,
        labels,
        FinetuneObjective::Labels,
        None,
        settings,
        device,
        observer,
    )
}

/// [`finetune`] with a choice of objective (labels, or KD from a teacher's logits) and,
/// when `validation` is given, the accuracy on it after each epoch. The model of the last
/// epoch is returned, as `transformers`' Trainer does by default.
///
/// `labels` are the classes of the first `labels.len()` sequences. With a KD objective there
/// may be fewer labels than sequences: the sequences past them are unlabelled and learn from
/// the teacher's soft targets alone (a transfer set).
#[allow(clippy::too_many_arguments)]
pub fn finetune_with(
    model: BertClassifier,
    config: &BertConfig,
    sequences: &[Vec<u32>],
    labels: &[u32],
    objective: FinetuneObjective<'_>,
    validation: Option<FinetuneValidation<'_>>,
    settings: &FinetuneSettings,
    device: &Device,
    observer: &mut dyn FinetuneObserver,
) -> Result<FinetuneOutcome, TextError> {
    let classes = model.labels();
    if let Some(teacher_logits) = objective.teacher_logits()
        && teacher_logits.len() != sequences.len() * classes
    {
        return Err(TextError::Invalid(format!(
            "finetune: {} teacher logits for {} sequences of {classes} classes; expected {}",
            teacher_logits.len(),
            sequences.len(),
            sequences.len() * classes
        )));
    }
    let unlabelled_allowed = objective.teacher_logits().is_some();
    if labels.len() > sequences.len()
        || (labels.len() < sequences.len() && !unlabelled_allowed)
        || labels.is_empty()
    {
        return Err(TextError::Invalid(format!(
            "finetune: {} sequences and {} labels; expected a label for every sequence (or, \
             with a teacher, at least one label and at most one per sequence)",
            sequences.len(),
            labels.len()
        )));
    }
    if let Some(&bad) = labels.iter().find(|&&l| l as usize >= classes) {
        return Err(TextError::Invalid(format!(
            "finetune: label {bad} outside the classifier's {classes} classes"
        )));
    }
    if settings.batch_size == 0 || settings.max_length == 0 {
        return Err(TextError::Invalid(
            "finetune: batch_size and max_length must be at least 1".into(),
        ));
    }
    if let Some(orders) = &settings.epoch_orders {
        check_epoch_orders(orders, settings.epochs, sequences.len())?;
    }
    let model = match settings.train_top_layers {
        Some(top) => freeze_below_top(model, top),
        None => model,
    };
    let projection = match objective {
        FinetuneObjective::KdLayers { layers, .. } => layers.projection(device),
        _ => None,
    };
    let mut trainee = Trainee { model, projection };
    let spec = OptimizerSpec {
        optimizer: OptimizerKind::Adamw,
        lr: settings.lr,
        weight_decay: settings.weight_decay,
        ..OptimizerSpec::default()
    };
    let mut optimizer = spec.build();
    let steps_per_epoch = sequences.len().div_ceil(settings.batch_size);
    let total = steps_per_epoch * settings.epochs;
    // A two-stage objective starts its second stage as a new fine-tuning (TinyBERT runs its
    // stages as two trainings): a new optimiser and its own warm-up and decay.
    let second_stage = match objective {
        FinetuneObjective::KdLayers { layers, .. } => layers
            .first_epochs()
            .filter(|&first| first < settings.epochs),
        _ => None,
    };
    let schedule = |epoch: usize| {
        let (start, end) = match second_stage {
            Some(first) if epoch < first => (0, first),
            Some(first) => (first, settings.epochs),
            None => (0, settings.epochs),
        };
        let stage_total = (end - start) * steps_per_epoch;
        let warmup = (settings.warmup_ratio * stage_total as f64).ceil() as usize;
        (start * steps_per_epoch, warmup, stage_total)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut order: Vec<usize> = (0..sequences.len()).collect();
    let mut dropout = config.dropout().seeded(settings.seed);
    if let Some(probability) = settings.dropout {
        dropout.hidden = probability;
        dropout.attention = probability;
    }
    let head_dropout = settings
        .head_dropout
        .or(settings.dropout)
        .unwrap_or(config.hidden_dropout_prob);
    let max_length = settings.max_length.min(config.max_position_embeddings);
    let mut step_losses = Vec::with_capacity(total);
    let mut epoch_losses = Vec::with_capacity(settings.epochs);
    let mut validation_accuracy = Vec::new();
    let mut learning_rate = Vec::with_capacity(settings.epochs);
    let started = Instant::now();
    for epoch in 0..settings.epochs {
        match &settings.epoch_orders {
            Some(orders) => order.clone_from(&orders[epoch]),
            None => order.shuffle(&mut rng),
        }
        let mut epoch_loss = 0.0;
        if second_stage == Some(epoch) {
            optimizer = spec.build();
        }
        let (stage_start, warmup, stage_total) = schedule(epoch);
        learning_rate.push(linear_schedule(
            epoch * steps_per_epoch - stage_start,
            warmup,
            stage_total,
            settings.lr,
        ));
        for (step, chunk) in order.chunks(settings.batch_size).enumerate() {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| sequences[i].as_slice()).collect();
            let (ids, mask) = batch_tensors(&batch, config.pad_token_id, max_length, device);
            let output = trainee
                .model
                .bert
                .forward_detailed(ids.clone(), mask.clone(), &dropout);
            let logits = trainee
                .model
                .head(&output, mask.clone(), &dropout, head_dropout);
            let targets: Vec<u32> = chunk
                .iter()
                .map(|&i| labels.get(i).copied().unwrap_or(0))
                .collect();
            let loss = match objective.teacher_logits() {
                None => cross_entropy(logits, &targets, device),
                Some(teacher_logits) => {
                    let rows: Vec<f32> = chunk
                        .iter()
                        .flat_map(|&i| teacher_logits[i * classes..(i + 1) * classes].iter())
                        .copied()
                        .collect();
                    let teacher = crate::backend::matrix(rows, chunk.len(), classes, device);
                    let (targets, labelled) = labelled_mask(chunk, &targets, labels.len(), device);
                    let targets = crate::backend::class_indices(&targets, device);
                    let weights = match objective {
                        FinetuneObjective::Kd { weights, .. }
                        | FinetuneObjective::KdLayers { weights, .. } => weights,
                        FinetuneObjective::Labels => unreachable!("labels have no teacher"),
                    };
                    let kd = kd_loss(logits, teacher, targets, labelled, weights);
                    match objective {
                        FinetuneObjective::KdLayers { layers, .. } => {
                            let projection = trainee.projection.as_ref();
                            match layers.phase(epoch) {
                                LayerPhase::Both => {
                                    kd + layers.loss(&output, ids, mask, projection)
                                }
                                LayerPhase::LayersAlone => {
                                    layers.loss(&output, ids, mask, projection)
                                }
                                LayerPhase::KdAlone => kd,
                            }
                        }
                        _ => kd,
                    }
                }
            };
            let value = crate::backend::scalar(loss.clone()) as f64;
            if !value.is_finite() {
                return Err(TextError::Invalid(format!(
                    "finetune: the loss became {value} at epoch {}, step {}",
                    epoch + 1,
                    step + 1
                )));
            }
            let mut grads = GradientsParams::from_grads(loss.backward(), &trainee);
            if settings.max_grad_norm > 0.0 {
                clip_grad_norm(&trainee, &mut grads, settings.max_grad_norm);
            }
            let in_stage = epoch * steps_per_epoch + step - stage_start;
            let rate = linear_schedule(in_stage, warmup, stage_total, settings.lr);
            trainee = optimizer.step(rate, trainee, grads);
            step_losses.push(value);
            epoch_loss += value;
        }
        let mean_loss = epoch_loss / steps_per_epoch as f64;
        epoch_losses.push(mean_loss);
        if let Some(validation) = validation {
            validation_accuracy.push(accuracy_on(
                &trainee.model.valid(),
                config,
                validation,
                max_length,
                &device.clone().inner(),
            ));
        }
        observer.epoch(epoch + 1, mean_loss);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(FinetuneOutcome {
        model: trainee.model.valid(),
        step_losses,
        epoch_losses,
        validation_accuracy,
        learning_rate,
        steps: total,
        seconds,
    })
}

/// Refuses epoch orders that are not one permutation of `0..sequences` per epoch.
fn check_epoch_orders(
    orders: &[Vec<usize>],
    epochs: usize,
    sequences: usize,
) -> Result<(), TextError> {
    if orders.len() != epochs {
        return Err(TextError::Invalid(format!(
            "finetune: {} epoch orders for {epochs} epochs; expected one per epoch",
            orders.len()
        )));
    }
    for (epoch, order) in orders.iter().enumerate() {
        let mut seen = vec![false; sequences];
        let permutation = order.len() == sequences
            && order
                .iter()
                .all(|&i| i < sequences && !std::mem::replace(&mut seen[i], true));
        if !permutation {
            return Err(TextError::Invalid(format!(
                "finetune: the order of epoch {} is not a permutation of the {sequences} \
                 sequences",
                epoch + 1
            )));
        }
    }
    Ok(())
}

/// Mean cross-entropy of `logits` `[batch, classes]` against class indices.
pub fn cross_entropy(logits: Tensor<2>, targets: &[u32], device: &Device) -> Tensor<1> {
    let [batch, _] = logits.dims();
    let log_probs = burn::tensor::activation::log_softmax(logits, 1);
    let index = crate::backend::class_indices(targets, device).reshape([batch, 1]);
    log_probs.gather(1, index).mean().neg()
}

/// Accuracy of `model` (on the inference device `device`) on `validation`, texts cut at
/// `max_length`.
pub fn accuracy_on(
    model: &BertClassifier,
    config: &BertConfig,
    validation: FinetuneValidation<'_>,
    max_length: usize,
    device: &Device,
) -> f64 {
    let classes = model.labels();
    let logits = model.logits(
        validation.sequences,
        config.pad_token_id,
        max_length,
        64,
        device,
    );
    crate::eval::metrics::accuracy(&logits, classes, validation.labels)
}
