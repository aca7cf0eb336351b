//! The teacher of each seed: loaded from a checkpoint or trained on every label, with its
//! checkpoints along training when a method learns from them, and the extra teachers of
//! multi-teacher distillation.

use std::path::{Path, PathBuf};

use super::frozen_teacher::FrozenTeacher;
use super::job::{Job, SeedContext, check_compatible, weights_digest};
use super::options::RunOptions;
use super::seeds::{teacher_init_seed, teacher_order_seed};
use crate::checkpoint;
use crate::config::{ExperimentConfig, ModelConfig};
use crate::data::Dataset;
use crate::data::batch::mix_seed;
use crate::data::prepare::PreparedData;
use crate::distill::record::{Curve, Role, Row, StudentRecord};
use crate::distill::train::{Supervision, TrainObserver, TrainingSet, predict_logits};
use crate::error::{Error, Result};
use crate::eval::metrics::{accuracy, evaluate};
use crate::layout::epoch_of_checkpoint;
use crate::models::Network;

/// The teacher of one seed.
pub(super) enum SeedTeacher {
    /// Trained in the run or loaded from an apprentice checkpoint.
    Network(Network),
    /// A model from another framework (ONNX), frozen: only its outputs exist.
    #[cfg_attr(not(feature = "onnx"), allow(dead_code))]
    Frozen(FrozenTeacher),
}

impl SeedTeacher {
    /// The network, when the teacher is one of apprentice's.
    pub(super) fn network(&self) -> Option<&Network> {
        match self {
            Self::Network(network) => Some(network),
            Self::Frozen(_) => None,
        }
    }

    /// What identifies the teacher in checkpoint fingerprints and teacher caches.
    pub(super) fn digest(&self) -> Result<String> {
        match self {
            Self::Network(network) => weights_digest(network),
            Self::Frozen(frozen) => Ok(frozen.digest.clone()),
        }
    }

    /// Its logits on `split`, which must be the seed's `train`, `validation` or `test` split
    /// (a frozen teacher's outputs exist only for those).
    pub(super) fn logits(
        &self,
        data: &PreparedData,
        split: Split,
        options: &RunOptions,
    ) -> Vec<f32> {
        match self {
            Self::Network(network) => predict_logits(network, split.of(data), &options.device),
            Self::Frozen(frozen) => match split {
                Split::Train => frozen.train.clone(),
                Split::Validation => frozen.validation.clone(),
                Split::Test => frozen.test.clone(),
            },
        }
    }
}

/// One of a seed's splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Split {
    /// The training split.
    Train,
    /// The validation split.
    Validation,
    /// The test split.
    Test,
}

impl Split {
    /// The split itself.
    pub(super) fn of(self, data: &PreparedData) -> &Dataset {
        match self {
            Self::Train => &data.train,
            Self::Validation => &data.validation,
            Self::Test => &data.test,
        }
    }
}

/// The teacher's architecture, schedule and optimiser from `[teacher]` (validated present when
/// no checkpoint is loaded).
pub(super) fn teacher_model_config(config: &ExperimentConfig) -> ModelConfig {
    ModelConfig {
        model: config
            .teacher
            .model
            .clone()
            .expect("validated: teacher.model present"),
        train: config
            .teacher
            .train
            .clone()
            .expect("validated: teacher.train present"),
        optimizer: config.teacher.optimizer.clone(),
    }
}

/// A teacher trained on every label of the training split.
pub(super) fn teacher_job<'a>(
    name: String,
    model_config: &'a ModelConfig,
    data: &'a PreparedData,
    init_seed: u64,
    order_seed: u64,
) -> Job<'a> {
    Job {
        name,
        role: Role::Teacher,
        method: "ce".into(),
        label_fraction: 1.0,
        transfer: None,
        model_config,
        init_seed,
        order_seed,
        set: TrainingSet {
            data: &data.train,
            labelled: None,
            samples_per_epoch: data.train.len(),
            validation: &data.validation,
        },
        supervision: Supervision::Labels,
        teacher_digest: None,
        teacher_test_logits: None,
        cohort: 1,
        regressors: Vec::new(),
        probe: None,
        keep_epochs: None,
    }
}

/// The extra teachers of multi-teacher distillation: trained once per seed, when first needed.
#[derive(Default)]
pub(super) struct ExtraTeachers {
    networks: Vec<(String, Network)>,
    pub(super) records: Vec<Row>,
}

impl ExtraTeachers {
    /// Makes sure `count` extra teachers exist (the run's teacher is the first of the
    /// ensemble): of the architectures in `models`, or, when it is empty, of the teacher's own
    /// from other seeds.
    pub(super) fn ensure(
        &mut self,
        context: &SeedContext<'_>,
        count: usize,
        models: &[ModelConfig],
        observer: &mut dyn TrainObserver,
    ) -> Result<&[(String, Network)]> {
        let data = context.data;
        let total = count + 1;
        let configs: Vec<ModelConfig> = if models.is_empty() {
            vec![teacher_model_config(context.config); count]
        } else {
            models.to_vec()
        };
        while self.networks.len() + 1 < total {
            let index = self.networks.len() + 2;
            let name = format!("teacher-{index}");
            let job = teacher_job(
                name.clone(),
                &configs[index - 2],
                data,
                mix_seed(teacher_init_seed(context.seed), index as u64),
                mix_seed(teacher_order_seed(context.seed), index as u64),
            );
            let (network, record) = context.run(job, observer)?;
            self.networks.push((name.clone(), network));
            self.records.push((name, record));
        }
        Ok(&self.networks[..total - 1])
    }
}

/// The teacher of the experiment of `seed`, exactly as [`crate::experiment::run_experiment`]
/// gets it (loaded from `teacher.checkpoint`, or trained on every label), for commands that
/// study it on its own. With `options.save_checkpoints` it is kept in (and reused from)
/// `options.run_dir`, with its checkpoints along training when a configured method needs them.
pub fn seed_teacher(
    config: &ExperimentConfig,
    options: &RunOptions,
    data: &PreparedData,
    seed: u64,
    observer: &mut dyn TrainObserver,
) -> Result<Network> {
    let snapshots = config.distill.teacher_snapshots_every();
    seed_teacher_with_snapshots(config, options, data, seed, snapshots, observer)
}

/// [`seed_teacher`], keeping a checkpoint of a trained teacher every `snapshots_every` epochs
/// (and its last) in the seed's `teacher.epochs/` folder of `options.run_dir`.
pub fn seed_teacher_with_snapshots(
    config: &ExperimentConfig,
    options: &RunOptions,
    data: &PreparedData,
    seed: u64,
    snapshots_every: Option<usize>,
    observer: &mut dyn TrainObserver,
) -> Result<Network> {
    let context = SeedContext::new(config, options, data, seed)?;
    match teacher_for_seed(&context, snapshots_every, observer)?.0 {
        SeedTeacher::Network(network) => Ok(network),
        SeedTeacher::Frozen(_) => Err(Error::Invalid(format!(
            "teacher.onnx: {}: this command studies an apprentice network; an ONNX teacher has only outputs",
            config
                .teacher
                .onnx
                .as_deref()
                .unwrap_or(Path::new("?"))
                .display()
        ))),
    }
}

/// The teacher of a seed: an ONNX model run once over the splits, loaded from
/// `teacher.checkpoint`, or trained on every label.
///
/// `snapshots_every`: keep a checkpoint of a trained teacher every this many epochs (online
/// distillation learns from them).
pub(super) fn teacher_for_seed(
    context: &SeedContext<'_>,
    snapshots_every: Option<usize>,
    observer: &mut dyn TrainObserver,
) -> Result<(SeedTeacher, StudentRecord)> {
    if let Some(settings) = context.config.teacher.onnx_config() {
        return frozen_teacher(context, &settings);
    }
    let (network, record) = network_teacher_for_seed(context, snapshots_every, observer)?;
    Ok((SeedTeacher::Network(network), record))
}

#[cfg(feature = "onnx")]
fn frozen_teacher(
    context: &SeedContext<'_>,
    settings: &crate::onnx::OnnxTeacherConfig,
) -> Result<(SeedTeacher, StudentRecord)> {
    let (frozen, record) = super::onnx_teacher::frozen_teacher_for_seed(context, settings)?;
    Ok((SeedTeacher::Frozen(frozen), record))
}

#[cfg(not(feature = "onnx"))]
fn frozen_teacher(
    _context: &SeedContext<'_>,
    settings: &crate::onnx::OnnxTeacherConfig,
) -> Result<(SeedTeacher, StudentRecord)> {
    Err(Error::Invalid(format!(
        "teacher.onnx: {}: this build of apprentice has no ONNX runtime (the `onnx` feature)",
        settings.path.display()
    )))
}

/// An apprentice network as the seed's teacher: loaded from `teacher.checkpoint`, or trained
/// on every label.
fn network_teacher_for_seed(
    context: &SeedContext<'_>,
    snapshots_every: Option<usize>,
    observer: &mut dyn TrainObserver,
) -> Result<(Network, StudentRecord)> {
    let config = context.config;
    let options = context.options;
    let data = context.data;
    let device = &options.device;
    let classes = data.train.num_classes;
    let seed = context.seed;
    match &config.teacher.checkpoint {
        Some(path) => {
            let (network, meta) = checkpoint::load(path, device)?;
            check_compatible(path, &meta, data)?;
            let logits = predict_logits(&network, &data.test, device);
            let validation = predict_logits(&network, &data.validation, device);
            let record = StudentRecord {
                role: Role::Teacher,
                method: "loaded".into(),
                label_fraction: 1.0,
                transfer: None,
                architecture: meta.spec.describe(data.train.shape.len(), classes),
                params: network.parameter_count(),
                metrics: evaluate(&logits, classes, &data.test.labels, None),
                validation_accuracy: accuracy(&validation, classes, &data.validation.labels),
                wall_time_s: 0.0,
                epochs_run: 0,
                skipped_batches: 0,
                curve: Curve {
                    seed,
                    train_loss: vec![],
                    validation_accuracy: vec![],
                    learning_rate: vec![],
                },
                complexity: None,
            };
            if options.save_checkpoints {
                checkpoint::save(
                    &context.files.checkpoint("teacher"),
                    &network,
                    &context.meta("teacher", &meta.spec),
                )?;
            }
            Ok((network, record))
        }
        None => {
            let model_config = teacher_model_config(config);
            let mut job = teacher_job(
                "teacher".into(),
                &model_config,
                data,
                teacher_init_seed(seed),
                teacher_order_seed(seed),
            );
            if let Some(every) = snapshots_every {
                job.keep_epochs = Some((context.files.epochs("teacher"), every));
            }
            context.run(job, observer)
        }
    }
}

/// The teacher checkpoints along training in `dir` (`epoch-NNNN.safetensors`), by epoch.
pub(super) fn teacher_checkpoints(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::Invalid(format!(
            "online: cannot read the teacher's checkpoints along training in {}: {e}",
            dir.display()
        ))
    })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(epoch) = epoch_of_checkpoint(&path) else {
            continue;
        };
        found.push((epoch, path));
    }
    found.sort();
    if found.is_empty() {
        return Err(Error::Invalid(format!(
            "online: {} holds no teacher checkpoints (epoch-0001.safetensors, ...)",
            dir.display()
        )));
    }
    Ok(found)
}
