//! The students of one seed, label fraction and transfer set: the runner's side of
//! [`Students`], through which every distillation method trains its students. Every student
//! starts from the same initial weights and sees the same data order, and every run draws as
//! many samples per epoch as one pass over all training inputs, so scratch and distilled
//! students take the same number of steps.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::frozen_teacher::FrozenTeacher;
use super::job::{Job, SeedContext, check_compatible, weights_digest};
use super::probe::{ProbeSet, rows_of};
use super::seeds::student_name;
use super::teacher::{ExtraTeachers, SeedTeacher, teacher_checkpoints};
use crate::checkpoint;
use crate::config::ModelConfig;
use crate::data::Dataset;
use crate::data::batch::mix_seed;
use crate::data::prepare::PreparedData;
use crate::distill::loss::LogitLoss;
use crate::distill::method::{DistilJob, SchemeError, Students, TeacherSource};
use crate::distill::methods::multi_teacher::mixture_logits;
use crate::distill::objective::{FeatureObjective, TeacherViews};
use crate::distill::record::{Curve, Role, Row, StudentRecord, Transfer};
use crate::distill::train::{
    Supervision, TeacherSignal, TrainObserver, TrainingSet, predict_logits,
};
use crate::error::{Error, Result};
use crate::eval::metrics::evaluate;
use crate::models::Network;
use crate::models::network::Feature;

/// What every student job of one label fraction shares.
pub(super) struct StudentCommon<'a> {
    pub(super) model_config: &'a ModelConfig,
    pub(super) label_fraction: f64,
    pub(super) init_seed: u64,
    pub(super) order_seed: u64,
    pub(super) teacher_digest: &'a str,
    pub(super) teacher_test_logits: &'a [f32],
    pub(super) probe: Option<&'a ProbeSet>,
    /// The name of the teacher's targets at the distillation temperature, in the probe.
    pub(super) teacher_target: String,
}

impl<'a> StudentCommon<'a> {
    /// A student job; its probed targets are the labels when it learns from labels alone (or
    /// from its peers), else the teacher's.
    pub(super) fn job<'b>(
        &self,
        name: String,
        role: Role,
        method: &str,
        transfer: Option<Transfer>,
        set: TrainingSet<'b>,
        supervision: Supervision<'b>,
    ) -> Job<'b>
    where
        'a: 'b,
    {
        let own = match supervision {
            Supervision::Labels | Supervision::Mutual { .. } => "labels".to_string(),
            _ => self.teacher_target.clone(),
        };
        Job {
            name,
            role,
            method: method.to_string(),
            label_fraction: self.label_fraction,
            transfer,
            model_config: self.model_config,
            init_seed: self.init_seed,
            order_seed: self.order_seed,
            set,
            supervision,
            teacher_digest: Some(self.teacher_digest.to_string()),
            teacher_test_logits: Some(self.teacher_test_logits),
            cohort: 1,
            regressors: Vec::new(),
            keep_epochs: None,
            probe: self.probe.map(|probe| (probe, own)),
        }
    }
}

/// The students of one label fraction and transfer set.
pub(super) struct FractionRun<'a> {
    pub(super) context: &'a SeedContext<'a>,
    pub(super) common: &'a StudentCommon<'a>,
    pub(super) teacher: &'a SeedTeacher,
    /// The teacher's logits on every training sample (none when augmentation makes them
    /// inexact).
    pub(super) teacher_train_logits: Option<&'a [f32]>,
    pub(super) fraction: f64,
    pub(super) transfer: Transfer,
    /// Indices of the labelled training samples.
    pub(super) subset: &'a [usize],
    /// Labelled flags over all training samples.
    pub(super) mask: &'a [bool],
    pub(super) labelled_data: &'a Dataset,
    pub(super) scratch: &'a Network,
    pub(super) extra_teachers: &'a mut ExtraTeachers,
    pub(super) observer: &'a mut dyn TrainObserver,
}

/// A runner error carried through a method.
fn scheme(error: Error) -> SchemeError {
    SchemeError::Runner(Box::new(error))
}

/// Rows of the frozen teacher's feature turned into views at a time.
const FROZEN_FEATURE_CHUNK: usize = 512;

impl<'a> FractionRun<'a> {
    fn data(&self) -> &'a PreparedData {
        self.context.data
    }

    /// The teacher as a network run on each batch; a frozen teacher cannot be (validation
    /// refuses augmentation with one, the only reason to run it live).
    fn live_teacher(&self) -> std::result::Result<&'a Network, SchemeError> {
        self.teacher.network().ok_or_else(|| {
            scheme(Error::Invalid(
                "an ONNX teacher's outputs exist only for the un-augmented inputs".into(),
            ))
        })
    }

    /// The training set of this transfer choice.
    fn set(&self) -> TrainingSet<'a> {
        let data = self.data();
        match self.transfer {
            Transfer::All => TrainingSet {
                data: &data.train,
                labelled: (self.fraction < 1.0).then_some(self.mask),
                samples_per_epoch: data.train.len(),
                validation: &data.validation,
            },
            Transfer::Labelled => TrainingSet {
                data: self.labelled_data,
                labelled: None,
                samples_per_epoch: data.train.len(),
                validation: &data.validation,
            },
        }
    }

    /// Rows of all training logits that belong to this transfer set.
    fn on_transfer_set(&self, all: &[f32]) -> Vec<f32> {
        match self.transfer {
            Transfer::All => all.to_vec(),
            Transfer::Labelled => rows_of(all, self.subset, self.data().train.num_classes),
        }
    }

    fn train(&mut self, job: Job<'_>) -> Result<(Network, StudentRecord)> {
        self.context.run(job, &mut *self.observer)
    }
}

impl Students for FractionRun<'_> {
    fn name(&self, stem: &str) -> String {
        student_name(stem, self.transfer, self.fraction)
    }

    fn classes(&self) -> usize {
        self.data().train.num_classes
    }

    fn student_epochs(&self) -> usize {
        self.context.config.student.train.epochs
    }

    fn student_model(&self) -> ModelConfig {
        self.context.config.student.clone()
    }

    fn scratch(&self) -> Network {
        self.scratch.clone()
    }

    fn logits_of(&self, network: &Network) -> Option<Vec<f32>> {
        let data = self.data();
        self.context.config.augment.is_identity().then(|| {
            let all = predict_logits(network, &data.train, &self.context.options.device);
            self.on_transfer_set(&all)
        })
    }

    fn teacher_logits(&self) -> Option<Vec<f32>> {
        self.teacher_train_logits
            .map(|all| self.on_transfer_set(all))
    }

    fn test_logits(&self, network: &Network) -> Vec<f32> {
        predict_logits(network, &self.data().test, &self.context.options.device)
    }

    fn digest(&self, network: &Network) -> std::result::Result<String, SchemeError> {
        weights_digest(network).map_err(scheme)
    }

    fn teacher_digest(&self) -> String {
        self.common.teacher_digest.to_string()
    }

    fn distil(&mut self, job: DistilJob<'_>) -> std::result::Result<(Network, Row), SchemeError> {
        let DistilJob {
            name,
            method,
            objective,
            teacher,
        } = job;
        // Logits computed here must outlive the job that borrows them.
        let computed: Option<Vec<f32>>;
        let (signal, digest) = match teacher {
            TeacherSource::Main => {
                computed = self.teacher_logits();
                let signal = match &computed {
                    Some(logits) => TeacherSignal::Cached(logits),
                    None => TeacherSignal::Live(self.live_teacher()?),
                };
                (signal, self.common.teacher_digest.to_string())
            }
            TeacherSource::Network(network) => {
                computed = self.logits_of(network);
                let signal = match &computed {
                    Some(logits) => TeacherSignal::Cached(logits),
                    None => TeacherSignal::Live(network),
                };
                (signal, weights_digest(network).map_err(scheme)?)
            }
            TeacherSource::Logits { logits, digest } => (TeacherSignal::Cached(logits), digest),
            TeacherSource::PerEpoch { per_epoch, digest } => {
                (TeacherSignal::PerEpoch(per_epoch), digest)
            }
        };
        let mut job = self.common.job(
            name.clone(),
            Role::Distilled,
            method,
            Some(self.transfer),
            self.set(),
            Supervision::Distill {
                teacher: signal,
                objective,
            },
        );
        job.teacher_digest = Some(digest);
        let (network, record) = self.train(job).map_err(scheme)?;
        Ok((network, (name, record)))
    }

    fn distil_features(
        &mut self,
        name: String,
        method: &'static str,
        objective: FeatureObjective,
    ) -> std::result::Result<Row, SchemeError> {
        let data = self.data();
        let config = self.context.config;
        let device = &self.context.options.device;
        // One example through each network tells which features exist and their sizes.
        let student = Network::new(
            &config.student.model,
            data.train.shape,
            data.train.num_classes,
            self.common.init_seed,
            &device.inference(),
        )
        .map_err(|message| scheme(Error::Invalid(message)))?;
        let example = crate::backend::matrix(
            data.train.sample(0).to_vec(),
            1,
            data.train.shape.len(),
            &device.inference(),
        );
        let student_features = student.forward(example.clone(), None).features;
        let inference = device.inference();
        let teacher_features = match self.teacher {
            SeedTeacher::Network(network) => network.forward(example, None).features,
            SeedTeacher::Frozen(frozen) => frozen_feature(config, frozen, 0..1, &inference)?,
        };
        let resolved = objective
            .resolve(&student_features, &teacher_features)
            .map_err(|e| scheme(Error::Invalid(format!("distill: {e}"))))?;
        let regressors = resolved.regressor_widths(&student_features, &teacher_features);
        let views = if config.augment.is_identity() {
            let all = match self.teacher {
                SeedTeacher::Network(network) => {
                    TeacherViews::compute(network, &data.train, &resolved, device)
                }
                SeedTeacher::Frozen(frozen) => {
                    let samples = data.train.len();
                    let chunks = (0..samples)
                        .step_by(FROZEN_FEATURE_CHUNK)
                        .map(|start| {
                            let end = (start + FROZEN_FEATURE_CHUNK).min(samples);
                            frozen_feature(config, frozen, start..end, &inference)
                        })
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    TeacherViews::from_feature_chunks(chunks, &resolved)
                }
            };
            Some(match self.transfer {
                Transfer::All => all,
                Transfer::Labelled => all.subset(self.subset),
            })
        } else {
            None
        };
        let teacher_logits = self.teacher_logits();
        let signal = match (&teacher_logits, &views) {
            (Some(logits), Some(views)) => TeacherSignal::CachedWithViews { logits, views },
            _ => TeacherSignal::Live(self.live_teacher()?),
        };
        let mut job = self.common.job(
            name.clone(),
            Role::Distilled,
            method,
            Some(self.transfer),
            self.set(),
            Supervision::Features {
                teacher: signal,
                objective: resolved,
            },
        );
        job.regressors = regressors;
        let (_, record) = self.train(job).map_err(scheme)?;
        Ok((name, record))
    }

    fn train_cohort(
        &mut self,
        name: String,
        method: &'static str,
        members: usize,
        temperature: f64,
    ) -> std::result::Result<Row, SchemeError> {
        let mut job = self.common.job(
            name.clone(),
            Role::Distilled,
            method,
            Some(self.transfer),
            self.set(),
            Supervision::Mutual { temperature },
        );
        job.cohort = members;
        job.teacher_digest = None;
        let (_, record) = self.train(job).map_err(scheme)?;
        Ok((name, record))
    }

    fn train_assistant(
        &mut self,
        name: String,
        model: &ModelConfig,
        objective: Arc<dyn LogitLoss>,
    ) -> std::result::Result<(Network, Row), SchemeError> {
        let teacher_logits = self.teacher_logits();
        let signal = match &teacher_logits {
            Some(logits) => TeacherSignal::Cached(logits),
            None => TeacherSignal::Live(self.live_teacher()?),
        };
        let mut job = self.common.job(
            name.clone(),
            Role::Teacher,
            "kd",
            Some(self.transfer),
            self.set(),
            Supervision::Distill {
                teacher: signal,
                objective,
            },
        );
        job.model_config = model;
        // The assistant has an architecture of its own, so initial weights of its own.
        job.init_seed = mix_seed(self.common.init_seed, 0x7a00_0001);
        job.probe = None;
        let (network, record) = self.train(job).map_err(scheme)?;
        Ok((network, (name, record)))
    }

    fn ensemble_row(
        &self,
        name: String,
        method: &'static str,
        members: &[Row],
        test_logits: &[Vec<f32>],
    ) -> Row {
        let data = self.data();
        let classes = data.train.num_classes;
        let count = test_logits.len();
        let logits: Vec<&[f32]> = test_logits.iter().map(Vec::as_slice).collect();
        let ensemble = mixture_logits(&logits, &vec![1.0; count], classes, 1.0);
        let first = &members[0].1;
        let params = members.last().map_or(0, |(_, r)| r.params);
        let record = StudentRecord {
            role: Role::Distilled,
            method: method.to_string(),
            label_fraction: self.fraction,
            transfer: Some(self.transfer),
            architecture: format!("ensemble of {count} × {}", first.architecture),
            params: params * count,
            metrics: evaluate(
                &ensemble,
                classes,
                &data.test.labels,
                Some(self.common.teacher_test_logits),
            ),
            validation_accuracy: f64::NAN,
            wall_time_s: members.iter().map(|(_, r)| r.wall_time_s).sum(),
            epochs_run: members.iter().map(|(_, r)| r.epochs_run).sum(),
            skipped_batches: 0,
            curve: Curve {
                seed: self.context.seed,
                train_loss: vec![],
                validation_accuracy: vec![],
                learning_rate: vec![],
            },
            complexity: None,
        };
        (name, record)
    }

    fn extra_teachers(
        &mut self,
        count: usize,
        models: &[ModelConfig],
    ) -> std::result::Result<Vec<(String, Network)>, SchemeError> {
        let teachers = self
            .extra_teachers
            .ensure(self.context, count, models, &mut *self.observer)
            .map_err(scheme)?;
        Ok(teachers.to_vec())
    }

    fn teacher_checkpoints(
        &self,
    ) -> std::result::Result<(PathBuf, Vec<(usize, PathBuf)>), SchemeError> {
        let config = self.context.config;
        let dir = match (&config.teacher.checkpoint, &config.teacher.checkpoints) {
            (Some(_), Some(dir)) => dir.clone(),
            (Some(_), None) => {
                return Err(SchemeError::Method {
                    method: "online",
                    message: "a loaded teacher needs teacher.checkpoints".into(),
                });
            }
            (None, _) => self.context.files.epochs("teacher"),
        };
        let saved = teacher_checkpoints(&dir).map_err(scheme)?;
        Ok((dir, saved))
    }

    fn load_teacher_checkpoint(&self, path: &Path) -> std::result::Result<Network, SchemeError> {
        let (network, meta) =
            checkpoint::load(path, &self.context.options.device).map_err(|e| scheme(e.into()))?;
        check_compatible(path, &meta, self.data()).map_err(scheme)?;
        Ok(network)
    }
}

/// Rows `rows` of a frozen teacher's `teacher.feature`, as the one feature it offers.
fn frozen_feature(
    config: &crate::config::ExperimentConfig,
    frozen: &FrozenTeacher,
    rows: std::ops::Range<usize>,
    device: &burn::tensor::Device,
) -> std::result::Result<Vec<Feature>, SchemeError> {
    let name = config.teacher.feature.as_deref().unwrap_or_default();
    let feature = frozen.feature_rows(name, rows, device).ok_or_else(|| {
        scheme(Error::Invalid(
            "teacher.feature: feature methods with an ONNX teacher need teacher.feature, a graph value to learn from".into(),
        ))
    })?;
    Ok(vec![feature])
}
