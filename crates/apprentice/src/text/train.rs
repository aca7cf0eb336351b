//! The training loop of text students: cross-entropy on labels, Hinton's KD against the
//! teacher's cached logits, or cosine regression of the teacher's sentence embeddings.
//!
//! The data order of every epoch is [`epoch_indices`] of the seed, the same as the image
//! students', so the scratch and the distilled student of a seed see the same batches. The
//! weights of the best validation epoch are kept.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::embedding_loss::cosine_embedding_loss;
use super::pooling::l2_normalize;
use super::students::TextStudent;
use super::tokenizer::{TokenBatch, pad_batch};
use crate::backend::{self, ComputeDevice};
use crate::config::TrainConfig;
use crate::distill::loss::{KdWeights, cross_entropy, kd_loss, labelled_mask};
use crate::distill::optim::OptimizerSpec;
use crate::distill::train::{TrainError, TrainObserver, epoch_indices};
use crate::eval::metrics::accuracy;
use crate::models::Network;

/// What the student learns from.
pub enum StudentObjective<'a> {
    /// Cross-entropy with the labels.
    Labels,
    /// Hinton's KD: `teacher_logits` has one row per training text.
    Kd {
        /// `train × classes` teacher logits, row-major.
        teacher_logits: &'a [f32],
        /// Temperature and label weight.
        weights: KdWeights,
    },
    /// `1 − cos(student output, teacher embedding)`, no labels: `targets` has one row of the
    /// teacher's sentence embedding per training text. The student's outputs then go through
    /// `head` (the teacher's classifier) to make predictions.
    Embedding {
        /// `train × dim` teacher embeddings, row-major.
        targets: &'a [f32],
        /// The teacher's classification head, applied to the L2-normalised outputs.
        head: &'a Network,
    },
}

/// Token ids and labels of the texts a student trains or is evaluated on.
pub struct TokenSet<'a> {
    /// One id sequence per text, special tokens included.
    pub sequences: &'a [&'a [u32]],
    /// The classes of the first `labels.len()` texts: every text's, except under KD, where
    /// the texts past the labels are unlabelled and learn from the teacher's soft targets alone.
    pub labels: &'a [u32],
}

/// The texts a student trains on and the ones that pick its best epoch.
pub struct StudentSplits<'a> {
    /// Training texts.
    pub train: TokenSet<'a>,
    /// Validation texts.
    pub validation: TokenSet<'a>,
}

/// Shared settings of student training.
pub struct StudentSettings<'a> {
    /// Epochs and batch size.
    pub train: &'a TrainConfig,
    /// Optimiser and schedule.
    pub optimizer: &'a OptimizerSpec,
    /// Seed of the data order.
    pub seed: u64,
    /// Pieces read per text at most.
    pub max_tokens: usize,
    /// Id of the padding piece.
    pub pad_id: u32,
    /// Number of classes.
    pub num_classes: usize,
}

/// A trained student and its history.
pub struct StudentOutcome {
    /// The student of the best validation epoch, in inference mode.
    pub model: TextStudent,
    /// Mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation accuracy per epoch.
    pub validation_accuracy: Vec<f64>,
    /// Learning rate at the start of each epoch.
    pub learning_rate: Vec<f64>,
    /// Validation accuracy of the kept model.
    pub best_validation_accuracy: f64,
    /// Wall-clock seconds.
    pub wall_time_s: f64,
}

/// A padded batch as tensors.
fn batch_tensors(batch: &TokenBatch, device: &Device) -> (Tensor<2, Int>, Tensor<2>) {
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(batch.ids.clone(), [batch.rows, batch.len]),
        device,
    );
    let mask = backend::matrix(batch.mask.clone(), batch.rows, batch.len, device);
    (ids, mask)
}

/// The student's outputs on every sequence (`len × outputs`, in input order), batched by
/// length.
pub fn student_outputs(
    model: &TextStudent,
    sequences: &[&[u32]],
    pad_id: u32,
    max_tokens: usize,
    device: &Device,
) -> Vec<f32> {
    const BATCH: usize = 256;
    let mut order: Vec<usize> = (0..sequences.len()).collect();
    order.sort_by_key(|&i| (sequences[i].len(), i));
    let mut output: Vec<f32> = Vec::new();
    let mut width = 0;
    for chunk in order.chunks(BATCH) {
        let rows: Vec<&[u32]> = chunk.iter().map(|&i| sequences[i]).collect();
        let padded = pad_batch(&rows, pad_id, max_tokens);
        let (ids, mask) = batch_tensors(&padded, device);
        let values = backend::to_host(model.forward(ids, mask));
        if width == 0 {
            width = values.len() / chunk.len();
            output = vec![0.0; sequences.len() * width];
        }
        for (row, &index) in chunk.iter().enumerate() {
            output[index * width..(index + 1) * width]
                .copy_from_slice(&values[row * width..(row + 1) * width]);
        }
    }
    output
}

/// Logits of a student on `sequences`: its outputs, or for an embedding student the teacher's
/// head applied to its L2-normalised outputs.
pub fn student_logits(
    model: &TextStudent,
    head: Option<&Network>,
    sequences: &[&[u32]],
    settings: &StudentSettings<'_>,
    device: &Device,
) -> Vec<f32> {
    let outputs = student_outputs(
        model,
        sequences,
        settings.pad_id,
        settings.max_tokens,
        device,
    );
    match head {
        None => outputs,
        Some(head) => {
            let dim = outputs.len() / sequences.len().max(1);
            let embeddings = backend::matrix(outputs, sequences.len(), dim, device);
            backend::to_host(head.logits(l2_normalize(embeddings)))
        }
    }
}

/// Trains `model` (built on `device.training()`).
pub fn train_student(
    name: &str,
    mut model: TextStudent,
    splits: &StudentSplits<'_>,
    objective: &StudentObjective<'_>,
    settings: &StudentSettings<'_>,
    device: &ComputeDevice,
    observer: &mut dyn TrainObserver,
) -> Result<StudentOutcome, TrainError> {
    let started = Instant::now();
    let (train, validation) = (&splits.train, &splits.validation);
    let count = train.sequences.len();
    if count == 0 {
        return Err(TrainError::Invalid(format!(
            "{name}: the training set is empty"
        )));
    }
    let unlabelled_allowed = matches!(objective, StudentObjective::Kd { .. });
    if train.labels.len() > count || (train.labels.len() < count && !unlabelled_allowed) {
        return Err(TrainError::Invalid(format!(
            "{name}: {} labels for {count} training texts; only KD takes texts without labels",
            train.labels.len()
        )));
    }
    let classes = settings.num_classes;
    let train_device = device.training();
    let inference_device = device.inference();
    let epochs = settings.train.epochs;
    let batch_size = settings.train.batch_size.max(1);
    let steps_per_epoch = count.div_ceil(batch_size);
    let total_steps = steps_per_epoch * epochs;
    let head = match objective {
        StudentObjective::Embedding { head, .. } => Some(*head),
        _ => None,
    };
    let mut optimizer = settings.optimizer.build();
    let mut outcome = StudentOutcome {
        model: model.valid(),
        train_loss: Vec::new(),
        validation_accuracy: Vec::new(),
        learning_rate: Vec::new(),
        best_validation_accuracy: f64::NEG_INFINITY,
        wall_time_s: 0.0,
    };
    observer.start(name, epochs, 0);
    for epoch in 0..epochs {
        let order = epoch_indices(count, count, settings.seed, epoch);
        outcome.learning_rate.push(settings.optimizer.learning_rate(
            epoch * steps_per_epoch,
            steps_per_epoch,
            total_steps,
        ));
        let mut loss_sum = 0.0;
        for (step, batch) in order.chunks(batch_size).enumerate() {
            let rows: Vec<&[u32]> = batch.iter().map(|&i| train.sequences[i]).collect();
            let padded = pad_batch(&rows, settings.pad_id, settings.max_tokens);
            let (ids, mask) = batch_tensors(&padded, &train_device);
            let outputs = model.forward(ids, mask);
            let labels: Vec<u32> = batch
                .iter()
                .map(|&i| train.labels.get(i).copied().unwrap_or(0))
                .collect();
            let loss = match objective {
                StudentObjective::Labels => cross_entropy(
                    outputs,
                    backend::class_indices(&labels, &train_device),
                    None,
                ),
                StudentObjective::Kd {
                    teacher_logits,
                    weights,
                } => {
                    let rows: Vec<f32> = batch
                        .iter()
                        .flat_map(|&i| {
                            teacher_logits[i * classes..(i + 1) * classes]
                                .iter()
                                .copied()
                        })
                        .collect();
                    let teacher = backend::matrix(rows, batch.len(), classes, &train_device);
                    let (labels, mask) =
                        labelled_mask(batch, &labels, train.labels.len(), &train_device);
                    kd_loss(
                        outputs,
                        teacher,
                        backend::class_indices(&labels, &train_device),
                        mask,
                        *weights,
                    )
                }
                StudentObjective::Embedding { targets, .. } => {
                    let dim = targets.len() / count;
                    let rows: Vec<f32> = batch
                        .iter()
                        .flat_map(|&i| targets[i * dim..(i + 1) * dim].iter().copied())
                        .collect();
                    let target = backend::matrix(rows, batch.len(), dim, &train_device);
                    cosine_embedding_loss(outputs, target)
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
        let train_loss = loss_sum / steps_per_epoch as f64;
        let snapshot = model.valid();
        let logits = student_logits(
            &snapshot,
            head,
            validation.sequences,
            settings,
            &inference_device,
        );
        let validation_accuracy = accuracy(&logits, classes, validation.labels);
        outcome.train_loss.push(train_loss);
        outcome.validation_accuracy.push(validation_accuracy);
        observer.epoch(epoch + 1, train_loss, validation_accuracy);
        if validation_accuracy > outcome.best_validation_accuracy {
            outcome.best_validation_accuracy = validation_accuracy;
            outcome.model = snapshot;
        }
    }
    observer.finish();
    outcome.wall_time_s = started.elapsed().as_secs_f64();
    Ok(outcome)
}
