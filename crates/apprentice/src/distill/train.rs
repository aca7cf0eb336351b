//! The training loop shared by teachers, scratch students and distilled students.
//!
//! Every source of randomness (data order, augmentation, dropout) is a pure function of the run
//! seed, the epoch and the step, so two runs with the same seed see the same batches, and the
//! scratch and distilled students of an experiment see exactly the same data order.

use std::time::Instant;

use burn::module::Module;

use super::optim::Optimizer;
use super::settings::TrainConfig;
use super::state::{Checkpointing, ProbePoint, Progress};
use super::step::{StepBatch, StepOutcome, TrainStep};
use crate::backend::{self, ComputeDevice};
use crate::checkpoint::{load_weights, weights_to_bytes};
use crate::data::Dataset;
use crate::data::augment::Augmentation;
use crate::data::batch::{epoch_order, gather};
use crate::distill::optim::OptimizerSpec;
use crate::eval::metrics::accuracy;
use crate::models::Network;

pub use super::learner::Learner;
pub use super::supervision::{Supervision, TeacherSignal, teacher_epoch_for};

/// A function of the model measured between epochs; see [`TrainHooks::probe`].
pub type Probe<'a> = &'a dyn Fn(&Network) -> Result<Vec<f64>, String>;

/// A function called with the model after every epoch; see [`TrainHooks::snapshot`].
pub type Snapshot<'a> = &'a dyn Fn(usize, &Network) -> Result<(), String>;

/// Work done between epochs besides validation.
#[derive(Default, Clone, Copy)]
pub struct TrainHooks<'a> {
    /// Measured on the initial weights, every `.0` epochs and after the last epoch, on the
    /// first member in inference mode (e.g. the supervision complexity of the targets). The
    /// values are kept in the mid-training state, so a resumed run keeps its curve.
    pub probe: Option<(usize, Probe<'a>)>,
    /// Called with the 1-based epoch and the first member in inference mode after every
    /// epoch, before the epoch's state is saved (e.g. to keep teacher checkpoints for online
    /// distillation); it must be idempotent, since a resumed run may repeat an epoch.
    pub snapshot: Option<Snapshot<'a>>,
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

/// What to do when a training loss is NaN or infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnNan {
    /// Stop the run with an error; the last good checkpoint stays on disk.
    #[default]
    Stop,
    /// Skip that batch's update and go on (the count is reported); a whole epoch of skipped
    /// batches stops the run.
    SkipBatch,
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
    /// Non-finite loss policy.
    pub on_nan: OnNan,
    /// Mid-training checkpoints (and resuming from them); `None` keeps everything in memory.
    pub checkpointing: Option<&'a Checkpointing>,
}

/// Follows training progress (the command line draws progress bars with it).
pub trait TrainObserver {
    /// A training run starts; `done` epochs were restored from a checkpoint.
    fn start(&mut self, name: &str, epochs: usize, done: usize);
    /// An epoch ended.
    fn epoch(&mut self, epoch: usize, train_loss: f64, validation_accuracy: f64);
    /// The run ended.
    fn finish(&mut self);
    /// Something the user should know (a damaged checkpoint skipped, batches skipped).
    fn warn(&mut self, message: &str) {
        eprintln!("warning: {message}");
    }
}

/// An observer that ignores everything but warnings, which it collects.
#[derive(Default)]
pub struct Silent {
    /// Warnings received, in order.
    pub warnings: Vec<String>,
}

impl TrainObserver for Silent {
    fn start(&mut self, _: &str, _: usize, _: usize) {}
    fn epoch(&mut self, _: usize, _: f64, _: f64) {}
    fn finish(&mut self) {}
    fn warn(&mut self, message: &str) {
        self.warnings.push(message.to_string());
    }
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
    /// Batches skipped for a non-finite loss.
    pub skipped_batches: usize,
    /// Wall-clock seconds spent training (evaluation included, over all resumed sessions).
    pub wall_time_s: f64,
    /// The other members of a deep-mutual-learning cohort, in inference mode.
    pub peers: Vec<Network>,
    /// What the probe measured, if one was given.
    pub probes: Vec<ProbePoint>,
}

/// Why training stopped early with an error.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error(
        "{name}: the loss became {value} at epoch {epoch}, step {step}; lower the learning rate (the last good checkpoint is kept)"
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
    /// A gradient step produced NaN or infinite parameters.
    #[error(
        "{name}: the parameters became non-finite during epoch {epoch} (an infinite or NaN gradient); lower the learning rate (the last good checkpoint is kept)"
    )]
    NonFiniteParameters {
        /// Run name.
        name: String,
        /// 1-based epoch.
        epoch: usize,
    },
    /// A checkpoint could not be written.
    #[error("{name}: cannot write a checkpoint: {message}")]
    Checkpoint {
        /// Run name.
        name: String,
        /// Why.
        message: String,
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
///
/// With checkpointing, the newest verified state in its folder is resumed from, and states
/// are written every `every_steps` steps and at every epoch end.
pub fn train(
    name: &str,
    model: Network,
    set: &TrainingSet<'_>,
    supervision: &Supervision<'_>,
    settings: &TrainSettings<'_>,
    device: &ComputeDevice,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome, TrainError> {
    train_learner(
        name,
        Learner::single(model),
        set,
        supervision,
        settings,
        TrainHooks::default(),
        device,
        observer,
    )
}

/// Trains everything in `learner` (created on `device.training()`), with hooks between
/// epochs; [`train`] is this for one network and no hooks.
#[allow(clippy::too_many_arguments)]
pub fn train_learner(
    name: &str,
    mut model: Learner,
    set: &TrainingSet<'_>,
    supervision: &Supervision<'_>,
    settings: &TrainSettings<'_>,
    hooks: TrainHooks<'_>,
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
    if model.members.is_empty() {
        return Err(TrainError::Invalid(format!("{name}: nothing to train")));
    }
    let mutual = matches!(supervision, Supervision::Mutual { .. });
    if mutual != (model.members.len() > 1) {
        return Err(TrainError::Invalid(format!(
            "{name}: deep mutual learning needs a cohort of at least two networks, and only it trains more than one (got {})",
            model.members.len()
        )));
    }
    let cached_logits = match supervision {
        Supervision::Distill {
            teacher: TeacherSignal::Cached(logits),
            ..
        }
        | Supervision::Features {
            teacher: TeacherSignal::Cached(logits),
            ..
        }
        | Supervision::Distill {
            teacher: TeacherSignal::CachedWithViews { logits, .. },
            ..
        }
        | Supervision::Features {
            teacher: TeacherSignal::CachedWithViews { logits, .. },
            ..
        } => vec![*logits],
        Supervision::Distill {
            teacher: TeacherSignal::PerEpoch(list),
            ..
        }
        | Supervision::Features {
            teacher: TeacherSignal::PerEpoch(list),
            ..
        } => list.to_vec(),
        _ => Vec::new(),
    };
    for logits in cached_logits {
        if logits.len() != data.len() * data.num_classes {
            return Err(TrainError::Invalid(format!(
                "{name}: cached teacher logits cover {} values, expected {}",
                logits.len(),
                data.len() * data.num_classes
            )));
        }
    }
    if let Supervision::Distill {
        teacher: TeacherSignal::PerEpoch(list),
        ..
    } = supervision
        && list.len() < settings.train.epochs
    {
        return Err(TrainError::Invalid(format!(
            "{name}: {} epochs of teacher logits for {} epochs of training",
            list.len(),
            settings.train.epochs
        )));
    }
    if let Supervision::Features { teacher, .. } = supervision {
        match teacher {
            TeacherSignal::Cached(_) | TeacherSignal::PerEpoch(_) => {
                return Err(TrainError::Invalid(format!(
                    "{name}: a feature method needs the teacher's feature views or the live teacher, not logits alone"
                )));
            }
            TeacherSignal::CachedWithViews { views, .. } if views.len() != data.len() => {
                return Err(TrainError::Invalid(format!(
                    "{name}: cached teacher views cover {} samples, expected {}",
                    views.len(),
                    data.len()
                )));
            }
            _ => {}
        }
    }
    let width = data.shape.len();
    let classes = data.num_classes;
    let batch_size = settings.train.batch_size;
    let epochs = settings.train.epochs;
    let samples_per_epoch = set.samples_per_epoch.max(1);
    let steps_per_epoch = samples_per_epoch.div_ceil(batch_size);
    let total_steps = steps_per_epoch * epochs;
    let early_stopping = settings
        .train
        .early_stopping_patience
        .filter(|_| !set.validation.is_empty());
    let mut optimizer = settings.optimizer.build();

    let mut progress = Progress {
        epoch: 0,
        step: 0,
        global_step: 0,
        loss_sum: 0.0,
        loss_count: 0,
        skipped_batches: 0,
        train_loss: Vec::new(),
        validation_accuracy: Vec::new(),
        learning_rate: Vec::new(),
        best_accuracy: -1.0,
        epochs_without_improvement: 0,
        kept_validation_accuracy: f64::NAN,
        stopped_early: false,
        elapsed_s: 0.0,
        probes: Vec::new(),
    };
    let mut kept_model: Option<Learner> = None;
    let fail = |message: String| TrainError::Checkpoint {
        name: name.to_string(),
        message,
    };
    let mut restored_any = false;
    if let Some(checkpointing) = settings.checkpointing {
        let (restored, warnings) = checkpointing.load_latest();
        for warning in warnings {
            observer.warn(&warning);
        }
        if let Some(restored) = restored {
            model = load_weights(model, restored.model).map_err(fail)?;
            optimizer = optimizer.restore(restored.optimizer).map_err(fail)?;
            if let Some(best) = restored.best {
                kept_model = Some(load_weights(model.valid(), best).map_err(fail)?);
            }
            progress = restored.manifest.progress;
            restored_any = true;
        }
    }
    let probe =
        |progress: &mut Progress, model: &Network, epoch: usize| -> Result<(), TrainError> {
            if let Some((_, measure)) = hooks.probe
                && progress.probes.last().is_none_or(|p| p.epoch < epoch)
            {
                let values = measure(model)
                    .map_err(|e| TrainError::Invalid(format!("{name}: epoch {epoch}: {e}")))?;
                progress.probes.push(ProbePoint { epoch, values });
            }
            Ok(())
        };
    if !restored_any {
        probe(&mut progress, &model.members[0].valid(), 0)?;
    }
    let base_elapsed = progress.elapsed_s;
    let save_state = |progress: &mut Progress,
                      model: &Learner,
                      optimizer: &Optimizer,
                      kept: Option<&Learner>|
     -> Result<(), TrainError> {
        let Some(checkpointing) = settings.checkpointing else {
            return Ok(());
        };
        progress.elapsed_s = base_elapsed + started.elapsed().as_secs_f64();
        let weights = weights_to_bytes(model).map_err(fail)?;
        let state = optimizer.state_bytes().map_err(fail)?;
        let best = kept.map(weights_to_bytes).transpose().map_err(fail)?;
        checkpointing
            .save(progress, &weights, &state, best.as_deref())
            .map_err(|e| fail(format!("{}: {e}", checkpointing.dir.display())))
    };

    let mut features = Vec::with_capacity(batch_size * width);
    let mut labels = Vec::with_capacity(batch_size);
    let mut runner = TrainStep::new(
        supervision,
        set.labelled,
        settings.seed,
        width,
        classes,
        device,
    );
    let mut next_features = Vec::with_capacity(batch_size * width);
    let mut next_labels = Vec::with_capacity(batch_size);
    observer.start(name, epochs, progress.train_loss.len());
    let first_epoch = if progress.stopped_early {
        epochs
    } else {
        progress.epoch
    };
    for epoch in first_epoch..epochs {
        let order = epoch_indices(data.len(), samples_per_epoch, settings.seed, epoch);
        if progress.step == 0 {
            progress.loss_sum = 0.0;
            progress.loss_count = 0;
            progress
                .learning_rate
                .push(settings.optimizer.learning_rate(
                    epoch * steps_per_epoch,
                    steps_per_epoch,
                    total_steps,
                ));
        }
        let make_batch =
            |step: usize, batch: &[usize], features: &mut Vec<f32>, labels: &mut Vec<u32>| {
                gather(data, batch, features, labels);
                if !settings.augmentation.is_identity() {
                    settings.augmentation.apply(
                        features,
                        data.shape,
                        settings.fill,
                        settings.seed,
                        epoch as u64,
                        step as u64,
                    );
                }
            };
        let batches: Vec<&[usize]> = order.chunks(batch_size).collect();
        // The step whose batch is in `next_features` and already with the teacher.
        let mut prefetched = None;
        for (step, &batch) in batches.iter().enumerate().skip(progress.step) {
            if prefetched == Some(step) {
                std::mem::swap(&mut features, &mut next_features);
                std::mem::swap(&mut labels, &mut next_labels);
            } else {
                make_batch(step, batch, &mut features, &mut labels);
            }
            prefetched = None;
            if runner.looks_ahead()
                && let Some(&next) = batches.get(step + 1)
            {
                make_batch(step + 1, next, &mut next_features, &mut next_labels);
                prefetched = Some(step + 1);
            }
            let learning_rate = settings.optimizer.learning_rate(
                epoch * steps_per_epoch + step,
                steps_per_epoch,
                total_steps,
            );
            let inputs = StepBatch {
                features: &features,
                labels: &labels,
                indices: batch,
                epoch,
                step,
            };
            let next = prefetched.map(|_| next_features.as_slice());
            let (updated, outcome) = runner
                .run(model, &mut optimizer, learning_rate, &inputs, next)
                .map_err(|e| TrainError::Invalid(format!("{name}: {e}")))?;
            model = updated;
            progress.step = step + 1;
            progress.global_step += 1;
            match outcome {
                StepOutcome::Updated { loss } => {
                    progress.loss_sum += loss as f64;
                    progress.loss_count += 1;
                }
                StepOutcome::NonFinite { loss: value } => match settings.on_nan {
                    OnNan::Stop => {
                        return Err(TrainError::NonFiniteLoss {
                            name: name.to_string(),
                            epoch: epoch + 1,
                            step: step + 1,
                            value,
                        });
                    }
                    OnNan::SkipBatch => {
                        progress.skipped_batches += 1;
                        observer.warn(&format!(
                            "{name}: skipped the batch at epoch {}, step {}: the loss was {value}",
                            epoch + 1,
                            step + 1
                        ));
                        continue;
                    }
                },
            }
            let every = settings.checkpointing.map_or(0, |c| c.every_steps);
            if every > 0 && progress.global_step.is_multiple_of(every) && step + 1 < steps_per_epoch
            {
                if !model.parameters_are_finite() {
                    return Err(TrainError::NonFiniteParameters {
                        name: name.to_string(),
                        epoch: epoch + 1,
                    });
                }
                save_state(&mut progress, &model, &optimizer, kept_model.as_ref())?;
            }
        }
        if progress.loss_count == 0 {
            return Err(TrainError::NonFiniteLoss {
                name: name.to_string(),
                epoch: epoch + 1,
                step: steps_per_epoch,
                value: f32::NAN,
            });
        }
        if !model.parameters_are_finite() {
            return Err(TrainError::NonFiniteParameters {
                name: name.to_string(),
                epoch: epoch + 1,
            });
        }
        let snapshot = model.valid();
        let validation_accuracy = if set.validation.is_empty() {
            f64::NAN
        } else {
            let logits = predict_logits(&snapshot.members[0], set.validation, device);
            accuracy(&logits, classes, &set.validation.labels)
        };
        let train_loss = progress.loss_sum / progress.loss_count as f64;
        progress.train_loss.push(train_loss);
        progress.validation_accuracy.push(validation_accuracy);
        observer.epoch(epoch + 1, train_loss, validation_accuracy);
        if let Some(keep) = hooks.snapshot {
            keep(epoch + 1, &snapshot.members[0])
                .map_err(|e| fail(format!("epoch {}: {e}", epoch + 1)))?;
        }
        if let Some((every, _)) = hooks.probe
            && ((epoch + 1).is_multiple_of(every.max(1)) || epoch + 1 == epochs)
        {
            probe(&mut progress, &snapshot.members[0], epoch + 1)?;
        }

        match early_stopping {
            Some(patience) => {
                if validation_accuracy > progress.best_accuracy {
                    progress.best_accuracy = validation_accuracy;
                    progress.epochs_without_improvement = 0;
                    progress.kept_validation_accuracy = validation_accuracy;
                    kept_model = Some(snapshot);
                } else {
                    progress.epochs_without_improvement += 1;
                    progress.stopped_early = progress.epochs_without_improvement >= patience;
                }
            }
            None => {
                progress.kept_validation_accuracy = validation_accuracy;
            }
        }
        progress.epoch = epoch + 1;
        progress.step = 0;
        let kept = if early_stopping.is_some() {
            kept_model.as_ref()
        } else {
            None
        };
        save_state(&mut progress, &model, &optimizer, kept)?;
        if progress.stopped_early {
            break;
        }
    }
    observer.finish();
    let final_model = match (early_stopping, kept_model) {
        (Some(_), Some(kept)) => kept,
        _ => model.valid(),
    };
    let mut members = final_model.members.into_iter();
    let first = members.next().expect("at least one member");
    Ok(TrainOutcome {
        model: first,
        peers: members.collect(),
        epochs_run: progress.train_loss.len(),
        train_loss: progress.train_loss,
        validation_accuracy: progress.validation_accuracy,
        learning_rate: progress.learning_rate,
        final_validation_accuracy: progress.kept_validation_accuracy,
        skipped_batches: progress.skipped_batches,
        wall_time_s: base_elapsed + started.elapsed().as_secs_f64(),
        probes: progress.probes,
    })
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
