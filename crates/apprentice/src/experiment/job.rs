//! Training one model of one seed: a [`Job`] says what to train and on what, and
//! [`SeedContext::run`] trains it (or takes it from an earlier session of the same run), then
//! keeps its checkpoint and record.

use std::path::{Path, PathBuf};

use super::options::RunOptions;
use super::probe::ProbeSet;
use crate::backend::ComputeDevice;
use crate::checkpoint::{self, CHECKPOINT_FORMAT_VERSION, CheckpointMeta};
use crate::config::{ExperimentConfig, ModelConfig};
use crate::data::batch::mix_seed;
use crate::data::prepare::PreparedData;
use crate::distill::methods::FitNetRegressor;
use crate::distill::record::{ComplexityTrack, Curve, Role, StudentRecord, Transfer};
use crate::distill::state::{Checkpointing, sha256_hex};
use crate::distill::train::{
    Learner, Supervision, TrainHooks, TrainObserver, TrainOutcome, TrainSettings, TrainingSet,
    predict_logits, train_learner,
};
use crate::error::{Error, Result};
use crate::eval::metrics::evaluate;
use crate::fsutil::write_atomic;
use crate::layout::{RunLayout, SeedLayout, epoch_checkpoint};
use crate::models::{ModelSpec, Network};

/// What one seed's runs share.
pub(super) struct SeedContext<'a> {
    pub(super) config: &'a ExperimentConfig,
    pub(super) options: &'a RunOptions,
    pub(super) data: &'a PreparedData,
    pub(super) seed: u64,
    pub(super) fill: Vec<f32>,
    pub(super) files: SeedLayout,
}

/// How a model is trained.
pub(super) struct Job<'a> {
    pub(super) name: String,
    pub(super) role: Role,
    pub(super) method: String,
    pub(super) label_fraction: f64,
    pub(super) transfer: Option<Transfer>,
    pub(super) model_config: &'a ModelConfig,
    pub(super) init_seed: u64,
    pub(super) order_seed: u64,
    pub(super) set: TrainingSet<'a>,
    pub(super) supervision: Supervision<'a>,
    /// What the targets depend on beyond the settings (the teacher's weights), for the
    /// checkpoint fingerprint.
    pub(super) teacher_digest: Option<String>,
    /// The teacher's test logits, for agreement and KL (none for the teacher itself).
    pub(super) teacher_test_logits: Option<&'a [f32]>,
    /// Networks trained together (2 or more for deep mutual learning).
    pub(super) cohort: usize,
    /// (input, output) widths of the FitNets regressors trained with the student.
    pub(super) regressors: Vec<(usize, usize)>,
    /// Supervision complexity tracked during training, and the name of the job's own targets.
    pub(super) probe: Option<(&'a ProbeSet, String)>,
    /// Keep a checkpoint every this many epochs (and the last) in this folder, for online
    /// distillation.
    pub(super) keep_epochs: Option<(PathBuf, usize)>,
}

impl<'a> SeedContext<'a> {
    /// The context of `seed`, with its checkpoint folder created when checkpoints are kept.
    pub(super) fn new(
        config: &'a ExperimentConfig,
        options: &'a RunOptions,
        data: &'a PreparedData,
        seed: u64,
    ) -> Result<Self> {
        let files = RunLayout::new(&options.run_dir).seed(seed);
        if options.save_checkpoints {
            std::fs::create_dir_all(files.dir()).map_err(|source| Error::Io {
                path: files.dir().to_path_buf(),
                source,
            })?;
        }
        Ok(Self {
            config,
            options,
            data,
            seed,
            fill: data.normalizer.normalized_zero(),
            files,
        })
    }
}

impl SeedContext<'_> {
    pub(super) fn meta(&self, name: &str, spec: &ModelSpec) -> CheckpointMeta {
        CheckpointMeta {
            format_version: CHECKPOINT_FORMAT_VERSION,
            spec: spec.clone(),
            input_shape: self.data.train.shape,
            num_classes: self.data.train.num_classes,
            normalizer: self.data.normalizer.clone(),
            name: name.to_string(),
            seed: self.seed,
            data: self.data.train.name.clone(),
            data_config: self.config.data.clone(),
            class_names: self.data.class_names.clone(),
        }
    }

    /// A model finished by an earlier session of this run, if its checkpoint and record are
    /// both there.
    fn finished(&self, name: &str) -> Result<Option<(Network, StudentRecord)>> {
        if !self.options.save_checkpoints {
            return Ok(None);
        }
        let record_path = self.files.record(name);
        let model_path = self.files.checkpoint(name);
        if !record_path.is_file() || !model_path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&record_path).map_err(|source| Error::Io {
            path: record_path.clone(),
            source,
        })?;
        let record: StudentRecord = serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!("{}: damaged record: {e}", record_path.display()))
        })?;
        let (network, _) = checkpoint::load(&model_path, &self.options.device)?;
        Ok(Some((network, record)))
    }

    /// Trains a job, or takes it from an earlier session; saves its checkpoint and record.
    pub(super) fn run(
        &self,
        job: Job<'_>,
        observer: &mut dyn TrainObserver,
    ) -> Result<(Network, StudentRecord)> {
        if let Some(done) = self.finished(&job.name)? {
            return Ok(done);
        }
        let data = self.data;
        let device = self.options.device.training();
        let mut members = Vec::with_capacity(job.cohort.max(1));
        for member in 0..job.cohort.max(1) {
            // The first member starts from the weights every student of the seed starts from.
            let seed = if member == 0 {
                job.init_seed
            } else {
                mix_seed(job.init_seed, 0xc0_0000 + member as u64)
            };
            members.push(
                Network::new(
                    &job.model_config.model,
                    data.train.shape,
                    data.train.num_classes,
                    seed,
                    &device,
                )
                .map_err(|message| Error::Invalid(format!("{}: {message}", job.name)))?,
            );
        }
        let regressors = job
            .regressors
            .iter()
            .enumerate()
            .map(|(index, &(inputs, outputs))| {
                FitNetRegressor::new(
                    inputs,
                    outputs,
                    mix_seed(job.init_seed, 0xf17e_0000 + index as u64),
                    &device,
                )
            })
            .collect();
        let learner = Learner::new(members, regressors);
        let identity = serde_json::json!({
            "name": job.name,
            "seed": self.seed,
            "init_seed": job.init_seed,
            "order_seed": job.order_seed,
            "model": job.model_config,
            "augment": self.config.augment,
            "distill": (!matches!(job.supervision, Supervision::Labels)).then_some(&self.config.distill),
            "method": job.method,
            "label_fraction": job.label_fraction,
            "transfer": job.transfer,
            "data": [&data.train.name, &data.train.len().to_string(), &data.validation.len().to_string()],
            "teacher": job.teacher_digest,
        });
        let checkpointing = self.options.save_checkpoints.then(|| Checkpointing {
            dir: self.files.states(&job.name),
            every_steps: self.config.checkpoint.every_steps,
            keep_last: self.config.checkpoint.keep_last,
            identity: sha256_hex(identity.to_string().as_bytes()),
        });
        let settings = TrainSettings {
            train: &job.model_config.train,
            optimizer: &job.model_config.optimizer,
            augmentation: self.config.augment,
            fill: &self.fill,
            seed: job.order_seed,
            on_nan: self.config.on_nan,
            checkpointing: checkpointing.as_ref(),
        };
        let title = format!("seed {} · {}", self.seed, job.name);
        let measure = |network: &Network| match &job.probe {
            Some((probe, _)) => probe.measure(network),
            None => Ok(Vec::new()),
        };
        let hooks = TrainHooks {
            probe: job.probe.as_ref().map(|(probe, _)| {
                (
                    probe.every,
                    &measure as &dyn Fn(&Network) -> std::result::Result<Vec<f64>, String>,
                )
            }),
            snapshot: None,
        };
        let keep = |epoch: usize, network: &Network| -> std::result::Result<(), String> {
            let Some((dir, every)) = &job.keep_epochs else {
                return Ok(());
            };
            if !epoch.is_multiple_of(*every) && epoch != job.model_config.train.epochs {
                return Ok(());
            }
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let name = format!("{}@epoch-{epoch}", job.name);
            checkpoint::save(
                &epoch_checkpoint(dir, epoch),
                network,
                &self.meta(&name, &job.model_config.model),
            )
            .map_err(|e| e.to_string())
        };
        let hooks = TrainHooks {
            snapshot: job
                .keep_epochs
                .as_ref()
                .map(|_| &keep as &dyn Fn(usize, &Network) -> std::result::Result<(), String>),
            ..hooks
        };
        let outcome = train_learner(
            &title,
            learner,
            &job.set,
            &job.supervision,
            &settings,
            hooks,
            &self.options.device,
            observer,
        )?;
        let mut record = record_for(&job, &outcome, data, &self.options.device, self.seed);
        if let Some((probe, own)) = &job.probe {
            record.complexity = Some(ComplexityTrack {
                epochs: outcome.probes.iter().map(|p| p.epoch).collect(),
                targets: probe.targets.iter().map(|t| t.name.clone()).collect(),
                own: own.clone(),
                values: outcome.probes.iter().map(|p| p.values.clone()).collect(),
            });
        }
        if self.options.save_checkpoints {
            checkpoint::save(
                &self.files.checkpoint(&job.name),
                &outcome.model,
                &self.meta(&job.name, &job.model_config.model),
            )?;
            let record_path = self.files.record(&job.name);
            let json =
                serde_json::to_vec_pretty(&record).map_err(|e| Error::Invalid(e.to_string()))?;
            write_atomic(&record_path, &json).map_err(|source| Error::Io {
                path: record_path,
                source,
            })?;
            if let Some(checkpointing) = &checkpointing {
                // The finished model supersedes its mid-training states.
                let _ = std::fs::remove_dir_all(&checkpointing.dir);
            }
        }
        Ok((outcome.model, record))
    }
}

/// A digest of a network's weights, identifying a teacher in checkpoint fingerprints.
///
/// The values are hashed in the module's visiting order, which depends only on the architecture:
/// serialised safetensors bytes would not do, since their header order may differ between
/// processes, and a resumed run must recognise the same teacher.
pub(super) fn weights_digest(network: &Network) -> Result<String> {
    use burn::module::{Module, ModuleVisitor, Param};
    struct Collect(Vec<u8>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<burn::tensor::Tensor<D>>) {
            for value in crate::backend::to_host(param.val().flatten::<1>(0, D - 1)) {
                self.0.extend_from_slice(&value.to_le_bytes());
            }
        }
    }
    let mut collect = Collect(Vec::new());
    network.visit(&mut collect);
    Ok(sha256_hex(&collect.0))
}

/// Refuses a checkpoint whose inputs or classes do not fit the data.
pub(super) fn check_compatible(
    path: &Path,
    meta: &CheckpointMeta,
    data: &PreparedData,
) -> Result<()> {
    if meta.input_shape.len() != data.train.shape.len()
        || meta.num_classes != data.train.num_classes
    {
        return Err(Error::Invalid(format!(
            "teacher.checkpoint {}: the model takes {} features and predicts {} classes, but the data has {} features and {} classes",
            path.display(),
            meta.input_shape.len(),
            meta.num_classes,
            data.train.shape.len(),
            data.train.num_classes
        )));
    }
    Ok(())
}

/// The record of a finished training run, with its test metrics.
fn record_for(
    job: &Job<'_>,
    outcome: &TrainOutcome,
    data: &PreparedData,
    device: &ComputeDevice,
    seed: u64,
) -> StudentRecord {
    let classes = data.train.num_classes;
    let logits = predict_logits(&outcome.model, &data.test, device);
    StudentRecord {
        role: job.role,
        method: job.method.clone(),
        label_fraction: job.label_fraction,
        transfer: job.transfer,
        architecture: job
            .model_config
            .model
            .describe(data.train.shape.len(), classes),
        params: outcome.model.parameter_count(),
        metrics: evaluate(&logits, classes, &data.test.labels, job.teacher_test_logits),
        validation_accuracy: outcome.final_validation_accuracy,
        wall_time_s: outcome.wall_time_s,
        epochs_run: outcome.epochs_run,
        skipped_batches: outcome.skipped_batches,
        curve: Curve {
            seed,
            train_loss: outcome.train_loss.clone(),
            validation_accuracy: outcome.validation_accuracy.clone(),
            learning_rate: outcome.learning_rate.clone(),
        },
        complexity: None,
    }
}
