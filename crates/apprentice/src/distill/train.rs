//! The training loop shared by teachers, scratch students and distilled students.
//!
//! Every source of randomness (data order, augmentation, dropout) is a pure function of the run
//! seed, the epoch and the step, so two runs with the same seed see the same batches, and the
//! scratch and distilled students of an experiment see exactly the same data order.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::loss::{KdWeights, cross_entropy, kd_loss};
use crate::backend::{self, ComputeDevice};
use crate::config::TrainConfig;
use crate::data::Dataset;
use crate::data::augment::Augmentation;
use crate::data::batch::{epoch_order, gather, mix_seed};
use crate::distill::optim::OptimizerSpec;
use crate::eval::metrics::accuracy;
use crate::models::Network;

/// Where the distillation targets come from.
pub enum TeacherSignal<'a> {
    /// Teacher logits computed once, row `i` for training sample `i` (exact when the inputs
    /// are not augmented).
    Cached(&'a [f32]),
    /// The teacher itself (inference mode), run on each augmented batch so that it sees the
    /// same view as the student.
    Live(&'a Network),
}

/// What the loss compares the student's logits with.
pub enum Supervision<'a> {
    /// Cross-entropy with the labels.
    Labels,
    /// Hinton's KD loss against a teacher.
    Distill {
        /// The teacher's outputs.
        teacher: TeacherSignal<'a>,
        /// Temperature and α.
        weights: KdWeights,
    },
}

/// The samples one training run sees.
pub struct TrainingSet<'a> {
    /// Normalised training samples.
    pub data: &'a Dataset,
    /// Which samples' labels may be used (`None`: all). Unlabelled samples only receive the
    /// teacher's soft targets.
    pub labelled: Option<&'a [bool]>,
    /// Samples drawn per epoch. Equal to `data.len()` normally; larger when a small labelled
    /// subset must get as many steps as a run over the whole transfer set (it then cycles
    /// through fresh permutations).
    pub samples_per_epoch: usize,
    /// Normalised validation samples, evaluated after every epoch.
    pub validation: &'a Dataset,
}

/// Per-run settings besides the model.
pub struct TrainSettings<'a> {
    /// Epochs, batch size, early stopping.
    pub train: &'a TrainConfig,
    /// Optimiser and schedule.
    pub optimizer: &'a OptimizerSpec,
    /// Augmentation of training batches.
    pub augmentation: Augmentation,
    /// Normalised value of a blank pixel, per feature, for shifted-in pixels.
    pub fill: &'a [f32],
    /// Seed of data order, augmentation and dropout.
    pub seed: u64,
}

/// Follows training progress (the command line draws progress bars with it).
pub trait TrainObserver {
    /// A training run starts.
    fn start(&mut self, name: &str, epochs: usize);
    /// An epoch ended.
    fn epoch(&mut self, epoch: usize, train_loss: f64, validation_accuracy: f64);
    /// The run ended.
    fn finish(&mut self);
}

/// An observer that ignores everything.
pub struct Silent;

impl TrainObserver for Silent {
    fn start(&mut self, _: &str, _: usize) {}
    fn epoch(&mut self, _: usize, _: f64, _: f64) {}
    fn finish(&mut self) {}
}

/// What a finished run produced.
pub struct TrainOutcome {
    /// The trained network in inference mode (the best epoch's when early stopping is on).
    pub model: Network,
    /// Mean training loss of each epoch.
    pub train_loss: Vec<f64>,
    /// Validation accuracy after each epoch.
    pub validation_accuracy: Vec<f64>,
    /// Learning rate at the start of each epoch.
    pub learning_rate: Vec<f64>,
    /// Epochs actually run.
    pub epochs_run: usize,
    /// Validation accuracy of the returned model.
    pub final_validation_accuracy: f64,
    /// Wall-clock seconds spent training (evaluation included).
    pub wall_time_s: f64,
}

/// Why training stopped early with an error.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error(
        "{name}: the loss became {value} at epoch {epoch}, step {step}; lower the learning rate (the last good model is kept)"
    )]
    NonFiniteLoss {
        /// Run name.
        name: String,
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// The value seen.
        value: f32,
    },
    /// Inputs that cannot be trained on.
    #[error("{0}")]
    Invalid(String),
}

/// The indices drawn in `epoch`: fresh seeded permutations of the data, concatenated until
/// `samples_per_epoch` are reached.
pub fn epoch_indices(len: usize, samples_per_epoch: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let rounds = samples_per_epoch.div_ceil(len.max(1));
    let mut order = Vec::with_capacity(rounds * len);
    for round in 0..rounds {
        order.extend(epoch_order(len, seed, (epoch * rounds + round) as u64));
    }
    order.truncate(samples_per_epoch);
    order
}

/// Trains `model` (created on `device.training()`) and returns it in inference mode.
pub fn train(
    name: &str,
    mut model: Network,
    set: &TrainingSet<'_>,
    supervision: &Supervision<'_>,
    settings: &TrainSettings<'_>,
    device: &ComputeDevice,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome, TrainError> {
    let started = Instant::now();
    let data = set.data;
    if data.is_empty() {
        return Err(TrainError::Invalid(format!(
            "{name}: the training set is empty"
        )));
    }
    if let Supervision::Distill {
        teacher: TeacherSignal::Cached(logits),
        ..
    } = supervision
        && logits.len() != data.len() * data.num_classes
    {
        return Err(TrainError::Invalid(format!(
            "{name}: cached teacher logits cover {} values, expected {}",
            logits.len(),
            data.len() * data.num_classes
        )));
    }
    let train_device = device.training();
    let inference_device = device.inference();
    let width = data.shape.len();
    let classes = data.num_classes;
    let batch_size = settings.train.batch_size;
    let samples_per_epoch = set.samples_per_epoch.max(1);
    let steps_per_epoch = samples_per_epoch.div_ceil(batch_size);
    let total_steps = steps_per_epoch * settings.train.epochs;
    let mut optimizer = settings.optimizer.build();

    let mut outcome = TrainOutcome {
        model: model.valid(),
        train_loss: Vec::new(),
        validation_accuracy: Vec::new(),
        learning_rate: Vec::new(),
        epochs_run: 0,
        final_validation_accuracy: f64::NAN,
        wall_time_s: 0.0,
    };
    let mut best_accuracy = f64::NEG_INFINITY;
    let mut epochs_without_improvement = 0;

    let mut features = Vec::with_capacity(batch_size * width);
    let mut labels = Vec::with_capacity(batch_size);
    let mut teacher_rows = Vec::with_capacity(batch_size * classes);
    observer.start(name, settings.train.epochs);
    for epoch in 0..settings.train.epochs {
        let order = epoch_indices(data.len(), samples_per_epoch, settings.seed, epoch);
        let mut dropout_rng =
            ChaCha8Rng::seed_from_u64(mix_seed(settings.seed, 0xd709_0000 + epoch as u64));
        let mut loss_sum = 0.0;
        outcome.learning_rate.push(settings.optimizer.learning_rate(
            epoch * steps_per_epoch,
            steps_per_epoch,
            total_steps,
        ));
        for (step, batch) in order.chunks(batch_size).enumerate() {
            gather(data, batch, &mut features, &mut labels);
            if !settings.augmentation.is_identity() {
                settings.augmentation.apply(
                    &mut features,
                    data.shape,
                    settings.fill,
                    settings.seed,
                    epoch as u64,
                    step as u64,
                );
            }
            let rows = batch.len();
            let inputs = backend::matrix(features.clone(), rows, width, &train_device);
            let output = model.forward(inputs, Some(&mut dropout_rng));
            let label_tensor = backend::class_indices(&labels, &train_device);
            let mask = set.labelled.map(|labelled| {
                let values = batch
                    .iter()
                    .map(|&i| if labelled[i] { 1.0 } else { 0.0 })
                    .collect();
                backend::vector(values, &train_device)
            });
            let loss = match supervision {
                Supervision::Labels => cross_entropy(output.logits, label_tensor, mask),
                Supervision::Distill { teacher, weights } => {
                    teacher_rows.clear();
                    match teacher {
                        TeacherSignal::Cached(logits) => {
                            for &index in batch {
                                teacher_rows.extend_from_slice(
                                    &logits[index * classes..(index + 1) * classes],
                                );
                            }
                        }
                        TeacherSignal::Live(network) => {
                            let inputs =
                                backend::matrix(features.clone(), rows, width, &inference_device);
                            teacher_rows.extend(backend::to_host(network.logits(inputs)));
                        }
                    }
                    let teacher_logits =
                        backend::matrix(teacher_rows.clone(), rows, classes, &train_device);
                    kd_loss(output.logits, teacher_logits, label_tensor, mask, *weights)
                }
            };
            let value = backend::scalar(loss.clone());
            if !value.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    name: name.to_string(),
                    epoch: epoch + 1,
                    step: step + 1,
                    value,
                });
            }
            loss_sum += value as f64;
            let learning_rate = settings.optimizer.learning_rate(
                epoch * steps_per_epoch + step,
                steps_per_epoch,
                total_steps,
            );
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(learning_rate, model, grads);
        }
        let snapshot = model.valid();
        let validation_accuracy = if set.validation.is_empty() {
            f64::NAN
        } else {
            let logits = predict_logits(&snapshot, set.validation, device);
            accuracy(&logits, classes, &set.validation.labels)
        };
        let train_loss = loss_sum / steps_per_epoch as f64;
        outcome.train_loss.push(train_loss);
        outcome.validation_accuracy.push(validation_accuracy);
        outcome.epochs_run = epoch + 1;
        observer.epoch(epoch + 1, train_loss, validation_accuracy);

        match settings.train.early_stopping_patience {
            Some(patience) if !set.validation.is_empty() => {
                if validation_accuracy > best_accuracy {
                    best_accuracy = validation_accuracy;
                    epochs_without_improvement = 0;
                    outcome.model = snapshot;
                    outcome.final_validation_accuracy = validation_accuracy;
                } else {
                    epochs_without_improvement += 1;
                    if epochs_without_improvement >= patience {
                        break;
                    }
                }
            }
            _ => {
                outcome.model = snapshot;
                outcome.final_validation_accuracy = validation_accuracy;
            }
        }
    }
    observer.finish();
    outcome.wall_time_s = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// Logits of an inference-mode network on every sample of `data`, row-major.
pub fn predict_logits(model: &Network, data: &Dataset, device: &ComputeDevice) -> Vec<f32> {
    const CHUNK: usize = 1024;
    let width = data.shape.len();
    let inference_device = device.inference();
    let mut logits = Vec::with_capacity(data.len() * data.num_classes);
    for start in (0..data.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(data.len());
        let values = data.features[start * width..end * width].to_vec();
        let inputs = backend::matrix(values, end - start, width, &inference_device);
        logits.extend(backend::to_host(model.logits(inputs)));
    }
    logits
}
