//! One training step: the forward pass of every member, the teacher's outputs on the batch, the
//! loss of the supervision, the loss read back, the backward pass and the optimiser's update.
//!
//! [`train_learner`](super::train::train_learner) takes every step of every run through
//! [`TrainStep::run`], and the step benchmark (`apprentice bench-step`) times the very same
//! function, so what is measured is what a run executes.

use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::learner::Learner;
use super::loss::cross_entropy;
use super::methods::MethodError;
use super::mutual::mutual_loss;
use super::optim::Optimizer;
use super::prefetch::TeacherPrefetcher;
use super::supervision::{Supervision, TeacherSignal};
use crate::backend::{self, ComputeDevice};
use crate::data::batch::mix_seed;
use crate::models::network::{Feature, FeatureTensor};

/// Why a step could not be taken (the training loop prefixes the run's name).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The method's loss refused the batch.
    #[error(transparent)]
    Method(#[from] MethodError),
    /// The live teacher's forward pass on its own thread failed.
    #[error("{0}")]
    Teacher(String),
}

/// One batch as the step consumes it: inputs already gathered (and augmented) on the host.
pub struct StepBatch<'b> {
    /// Inputs, row-major, one row per sample.
    pub features: &'b [f32],
    /// Class of each row.
    pub labels: &'b [u32],
    /// Index of each row in the training set: it selects the cached teacher rows and the
    /// `labelled` flags.
    pub indices: &'b [usize],
    /// 0-based epoch: the dropout masks, the per-epoch teacher and epoch-dependent losses.
    pub epoch: usize,
    /// 0-based step within the epoch: the dropout masks.
    pub step: usize,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepOutcome {
    /// The loss was finite and the parameters were updated.
    Updated {
        /// The batch's loss before the update.
        loss: f32,
    },
    /// The loss was NaN or infinite: nothing was updated (the caller's NaN policy decides).
    NonFinite {
        /// The value seen.
        loss: f32,
    },
}

/// The fixed parts of every step of one training run.
pub struct TrainStep<'a> {
    supervision: &'a Supervision<'a>,
    labelled: Option<&'a [bool]>,
    seed: u64,
    width: usize,
    classes: usize,
    device: ComputeDevice,
    /// A live teacher whose logits are all the loss needs runs one batch ahead of the
    /// student, on a second thread where one is allowed.
    prefetcher: Option<TeacherPrefetcher>,
    /// The teacher's rows of the current batch, reused from step to step.
    teacher_rows: Vec<f32>,
}

impl<'a> TrainStep<'a> {
    /// The steps of a run on inputs of `width` features and `classes` classes, with dropout
    /// masks drawn from `seed`. `labelled` marks the samples whose labels may be used (`None`:
    /// all). A live logit teacher runs on a thread of its own when
    /// [`TeacherPrefetcher::worker_allowed`] says so.
    pub fn new(
        supervision: &'a Supervision<'a>,
        labelled: Option<&'a [bool]>,
        seed: u64,
        width: usize,
        classes: usize,
        device: &ComputeDevice,
    ) -> Self {
        let worker = TeacherPrefetcher::worker_allowed(device);
        Self::with_teacher_worker(supervision, labelled, seed, width, classes, device, worker)
    }

    /// As [`TrainStep::new`], with the live logit teacher on a thread of its own exactly when
    /// `worker` is true (the benchmark measures both; the values are the same).
    pub fn with_teacher_worker(
        supervision: &'a Supervision<'a>,
        labelled: Option<&'a [bool]>,
        seed: u64,
        width: usize,
        classes: usize,
        device: &ComputeDevice,
        worker: bool,
    ) -> Self {
        let prefetcher = match supervision {
            Supervision::Distill {
                teacher: TeacherSignal::Live(network),
                ..
            } => Some(TeacherPrefetcher::with_worker(
                network, device, width, worker,
            )),
            _ => None,
        };
        Self {
            supervision,
            labelled,
            seed,
            width,
            classes,
            device: device.clone(),
            prefetcher,
            teacher_rows: Vec::new(),
        }
    }

    /// Whether the teacher runs one batch ahead: then [`TrainStep::run`] wants the next
    /// batch's inputs along with each batch (the last of an epoch excepted).
    pub fn looks_ahead(&self) -> bool {
        self.prefetcher.is_some()
    }

    /// Whether the teacher runs on a thread of its own.
    pub fn teacher_on_worker(&self) -> bool {
        self.prefetcher
            .as_ref()
            .is_some_and(TeacherPrefetcher::uses_worker)
    }

    /// One step on `batch` at `learning_rate`: `learner` updated by `optimizer` when the loss
    /// is finite, unchanged otherwise. `next` is the following batch's inputs when
    /// [`TrainStep::looks_ahead`]: the teacher starts on them before the student starts on
    /// this batch.
    pub fn run(
        &mut self,
        learner: Learner,
        optimizer: &mut Optimizer,
        learning_rate: f64,
        batch: &StepBatch<'_>,
        next: Option<&[f32]>,
    ) -> Result<(Learner, StepOutcome), StepError> {
        let rows = batch.indices.len();
        if let Some(prefetcher) = self.prefetcher.as_mut() {
            // Nothing pending means this batch was not handed over as the previous step's next.
            if prefetcher.pending() == 0 {
                prefetcher.submit(batch.features, rows);
            }
            if let Some(next) = next {
                prefetcher.submit(next, next.len() / self.width.max(1));
            }
        }
        let train_device = self.device.training();
        let inputs = backend::matrix(batch.features.to_vec(), rows, self.width, &train_device);
        let mut outputs = Vec::with_capacity(learner.members.len());
        for (member, network) in learner.members.iter().enumerate() {
            let mut masks = member_dropout_rng(self.seed, member, batch.epoch, batch.step);
            outputs.push(network.forward(inputs.clone(), Some(&mut masks)));
        }
        let label_tensor = backend::class_indices(batch.labels, &train_device);
        let mask = self.labelled.map(|labelled| {
            let values = batch
                .indices
                .iter()
                .map(|&i| if labelled[i] { 1.0 } else { 0.0 })
                .collect();
            backend::vector(values, &train_device)
        });
        let loss = match self.supervision {
            Supervision::Labels => {
                let output = outputs.pop().expect("one member");
                cross_entropy(output.logits, label_tensor, mask)
            }
            Supervision::Distill { teacher, objective } => {
                let (teacher_logits, _) = self.teacher_batch(teacher, batch)?;
                let output = outputs.pop().expect("one member");
                objective.loss(
                    output.logits,
                    teacher_logits,
                    label_tensor,
                    mask,
                    batch.epoch + 1,
                )?
            }
            Supervision::Features { teacher, objective } => {
                let (_, live_features) = self.teacher_batch(teacher, batch)?;
                let views = match (teacher, live_features) {
                    (TeacherSignal::CachedWithViews { views, .. }, _) => {
                        views.batch(batch.indices, &train_device)
                    }
                    (_, Some(teacher_features)) => objective
                        .teacher_views(&teacher_features)
                        .into_iter()
                        .map(|view| move_feature(view, &train_device))
                        .collect(),
                    _ => unreachable!("checked before training: views or a live teacher"),
                };
                let output = outputs.pop().expect("one member");
                objective.loss(
                    output.logits,
                    &output.features,
                    views,
                    &learner.regressors,
                    label_tensor,
                    mask,
                )?
            }
            Supervision::Mutual { temperature } => {
                let logits: Vec<_> = outputs.iter().map(|o| o.logits.clone()).collect();
                mutual_loss(&logits, label_tensor, mask, *temperature)
            }
        };
        let value = backend::scalar(loss.clone());
        if !value.is_finite() {
            return Ok((learner, StepOutcome::NonFinite { loss: value }));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &learner);
        let learner = optimizer.step(learning_rate, learner, grads);
        Ok((learner, StepOutcome::Updated { loss: value }))
    }

    /// The teacher's logits on `batch` (on the training device), and its features when it is
    /// a live teacher run here.
    fn teacher_batch(
        &mut self,
        teacher: &TeacherSignal<'_>,
        batch: &StepBatch<'_>,
    ) -> Result<TeacherOutputs, StepError> {
        let classes = self.classes;
        let rows = batch.indices.len();
        self.teacher_rows.clear();
        let mut live_features = None;
        match teacher {
            TeacherSignal::Cached(logits) | TeacherSignal::CachedWithViews { logits, .. } => {
                for &index in batch.indices {
                    self.teacher_rows
                        .extend_from_slice(&logits[index * classes..(index + 1) * classes]);
                }
            }
            TeacherSignal::PerEpoch(list) => {
                let logits = list[batch.epoch.min(list.len() - 1)];
                for &index in batch.indices {
                    self.teacher_rows
                        .extend_from_slice(&logits[index * classes..(index + 1) * classes]);
                }
            }
            TeacherSignal::Live(_) if self.prefetcher.is_some() => {
                let prefetcher = self.prefetcher.as_mut().expect("checked by the guard");
                let logits = prefetcher.next_logits().map_err(StepError::Teacher)?;
                self.teacher_rows.extend(logits);
            }
            TeacherSignal::Live(network) => {
                let inputs = backend::matrix(
                    batch.features.to_vec(),
                    rows,
                    self.width,
                    &self.device.inference(),
                );
                let output = network.forward(inputs, None);
                self.teacher_rows.extend(backend::to_host(output.logits));
                live_features = Some(output.features);
            }
        }
        let logits = backend::matrix(
            self.teacher_rows.clone(),
            rows,
            classes,
            &self.device.training(),
        );
        Ok((logits, live_features))
    }
}

/// The teacher's logits on a batch, and its features when a live teacher ran on it here.
type TeacherOutputs = (Tensor<2>, Option<Vec<Feature>>);

/// The dropout generator of one step: a pure function of seed, epoch and step, so a resumed run
/// draws the same masks.
fn dropout_rng(seed: u64, epoch: usize, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix_seed(
        mix_seed(seed, 0xd709_0000 + epoch as u64),
        step as u64,
    ))
}

/// The dropout generator of cohort member `member` at one step; member 0 draws exactly what a
/// single network would.
fn member_dropout_rng(seed: u64, member: usize, epoch: usize, step: usize) -> ChaCha8Rng {
    let seed = if member == 0 {
        seed
    } else {
        mix_seed(seed, 0xc0_0000 + member as u64)
    };
    dropout_rng(seed, epoch, step)
}

/// A teacher feature computed on the inference device, brought to the training device as a
/// constant.
fn move_feature(feature: FeatureTensor, device: &burn::tensor::Device) -> FeatureTensor {
    match feature {
        FeatureTensor::Flat(values) => FeatureTensor::Flat(values.to_device(device).detach()),
        FeatureTensor::Map(map) => FeatureTensor::Map(map.to_device(device).detach()),
    }
}
