//! What a distillation method is.
//!
//! A method is one module under [`super::methods`] that owns its settings (a serde struct read
//! from `[distill.<key>]`), their validation, its description for `apprentice methods`, and what
//! it does. Its settings type implements [`MethodSettings`]; [`MethodSettings::build`] makes the
//! [`Method`] of one seed, once every temperature is a number. A method then trains its
//! students through [`Students`], which the experiment runner implements: a loss method trains
//! one student against the run's teacher, a scheme (born-again, teacher assistant, ...)
//! orchestrates several trainings. Registering a method is one line in [`super::registry`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::loss::{KdWeights, LogitLoss};
pub use super::method_error::MethodError;
use super::objective::{FeatureLoss, FeatureObjective, FeaturePairing};
use super::record::Row;
use super::settings::ModelConfig;
use crate::models::{ModelSpec, Network};

/// One hyper-parameter of a method: its key in a settings file, its default and its meaning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HyperParameter {
    /// The serde key of the settings struct field.
    pub key: &'static str,
    /// The default value (integers are shown as whole numbers).
    pub default: f64,
    /// What it controls, and where the default comes from.
    pub meaning: &'static str,
}

/// A method's description for listings: name, paper, expected inputs and hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MethodInfo {
    /// Short name, as used in settings files.
    pub name: &'static str,
    /// Full name.
    pub title: &'static str,
    /// The paper that introduced it.
    pub paper: &'static str,
    /// What the loss function takes.
    pub inputs: &'static str,
    /// Conventions chosen where the paper and the reference implementations differ.
    pub conventions: &'static str,
    /// Every field of the settings struct, in declaration order.
    pub hyper_parameters: &'static [HyperParameter],
}

/// The run-wide distillation settings a method may read, with the temperature resolved to a
/// number (for `"auto"`, the one chosen for the seed).
#[derive(Debug, Clone, PartialEq)]
pub struct Shared {
    /// Softening temperature T (`distill.temperature`, resolved).
    pub temperature: f64,
    /// Weight α of the hard-label cross-entropy in KD (`distill.alpha`).
    pub alpha: f64,
    /// The features feature methods compare (`[distill.features]`).
    pub features: FeaturePairing,
}

impl Shared {
    /// Hinton's KD with these settings.
    pub fn kd(&self) -> KdWeights {
        KdWeights {
            temperature: self.temperature,
            alpha: self.alpha,
        }
    }
}

/// What a method's settings are checked against: the rest of the experiment file.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext<'a> {
    /// The key that selected the method (`distill.method` or `distill.methods`), for messages.
    pub key: &'a str,
    /// Some label fraction is below 1 and the teacher teaches on every input
    /// (`distill.transfer` holds `"all"`): some inputs the method distils on have no label.
    pub unlabelled_inputs: bool,
    /// The student's architecture.
    pub student: &'a ModelSpec,
    /// The teacher is loaded (`teacher.checkpoint` or `teacher.onnx`) rather than trained in
    /// the run.
    pub teacher_loaded: bool,
    /// The teacher is an ONNX model from another framework: only its outputs exist, not its
    /// weights, architecture or training.
    pub teacher_onnx: bool,
    /// With an ONNX teacher: `teacher.feature` names a graph value to use as its feature.
    pub teacher_onnx_feature: bool,
    /// `teacher.checkpoints` names the loaded teacher's checkpoints along its training.
    pub teacher_checkpoints: bool,
    /// Training batches are augmented, so teacher outputs cannot be computed once.
    pub augmented: bool,
}

impl ValidationContext<'_> {
    /// Refuses a feature method (`method`) when the teacher is an ONNX model that offers no
    /// feature: only a graph value named by `teacher.feature` can teach it.
    pub fn check_teacher_features(&self, method: &str) -> Result<(), String> {
        if self.teacher_onnx && !self.teacher_onnx_feature {
            return Err(format!(
                "{}: {method} learns from the teacher's features; with an ONNX teacher, name a graph value as teacher.feature",
                self.key
            ));
        }
        Ok(())
    }
}

/// A method's settings: what an experiment file holds for it under `[distill.<key>]`.
pub trait MethodSettings:
    Default + Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned
{
    /// The method's description: its name in experiment files, paper and hyper-parameters.
    const INFO: &'static MethodInfo;

    /// Checks the settings and whether the method fits the experiment; the message names the
    /// key and what was expected.
    fn validate(&self, context: &ValidationContext<'_>) -> Result<(), String>;

    /// The method of one seed.
    fn build(&self, shared: &Shared) -> Box<dyn Method>;

    /// The teacher must keep a checkpoint every this many epochs of its training (online
    /// distillation learns from them); `None`: no checkpoints along training needed.
    fn teacher_snapshots_every(&self) -> Option<usize> {
        None
    }

    /// Whether these are the defaults (such tables are left out when a config is written).
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A distillation method ready to train the students of one seed.
pub trait Method: std::fmt::Debug {
    /// The method's description.
    fn info(&self) -> &'static MethodInfo;

    /// Trains this method's students for one label fraction and transfer set; returns their
    /// rows in table order.
    fn run(&self, students: &mut dyn Students) -> Result<Vec<Row>, SchemeError>;
}

/// Where a distilled student's targets come from.
pub enum TeacherSource<'a> {
    /// The run's teacher.
    Main,
    /// Another network (a born-again generation, an assistant): its logits on the transfer
    /// set when they can be computed once, else the network itself on every batch.
    Network(&'a Network),
    /// Fixed logits on the transfer set (an ensemble's mixture), and a digest of what they
    /// were computed from, for the checkpoint fingerprint.
    Logits {
        /// Row-major `[transfer set, classes]`.
        logits: &'a [f32],
        /// What the logits depend on.
        digest: String,
    },
    /// Logits that change with the student's epoch: entry `e` teaches epoch `e + 1`.
    PerEpoch {
        /// One row-major logit table per student epoch.
        per_epoch: &'a [&'a [f32]],
        /// What the logits depend on.
        digest: String,
    },
}

/// One student distilled with a logit loss.
pub struct DistilJob<'a> {
    /// Its model name (see [`Students::name`]).
    pub name: String,
    /// The method recorded in its results.
    pub method: &'static str,
    /// The loss.
    pub objective: Arc<dyn LogitLoss>,
    /// Its teacher.
    pub teacher: TeacherSource<'a>,
}

/// Why a method could not train its students.
#[derive(Debug, thiserror::Error)]
pub enum SchemeError {
    /// The runner could not train, load or save a model.
    #[error(transparent)]
    Runner(Box<dyn std::error::Error + Send + Sync>),
    /// The method cannot run with what the runner gives it.
    #[error("{method}: {message}")]
    Method {
        /// The method's name.
        method: &'static str,
        /// What is missing.
        message: String,
    },
}

/// The students of one seed, label fraction and transfer set, as the experiment runner trains
/// them: every student starts from the same initial weights and sees the same data order.
pub trait Students {
    /// The model name of a student of `stem` here: `kd`, `kd-all@5%`,
    /// `born-again-2-labelled@5%`.
    fn name(&self, stem: &str) -> String;
    /// Classes of the task.
    fn classes(&self) -> usize;
    /// Epochs the student trains.
    fn student_epochs(&self) -> usize;
    /// The student's architecture, schedule and optimiser.
    fn student_model(&self) -> ModelConfig;
    /// The student trained on labels alone for this label fraction.
    fn scratch(&self) -> Network;
    /// A network's logits on this transfer set, when they can be computed once (no
    /// augmentation).
    fn logits_of(&self, network: &Network) -> Option<Vec<f32>>;
    /// The run teacher's logits on this transfer set, when computed once.
    fn teacher_logits(&self) -> Option<Vec<f32>>;
    /// A network's logits on the test split.
    fn test_logits(&self, network: &Network) -> Vec<f32>;
    /// A digest of a network's weights, identifying a teacher in checkpoint fingerprints.
    fn digest(&self, network: &Network) -> Result<String, SchemeError>;
    /// The digest of the run's teacher.
    fn teacher_digest(&self) -> String;
    /// Trains a student with a logit loss.
    fn distil(&mut self, job: DistilJob<'_>) -> Result<(Network, Row), SchemeError>;
    /// Trains a student with a feature loss against the run's teacher.
    fn distil_features(
        &mut self,
        name: String,
        method: &'static str,
        objective: FeatureObjective,
    ) -> Result<Row, SchemeError>;
    /// Trains a cohort of `members` students that teach each other (deep mutual learning);
    /// the first member is reported.
    fn train_cohort(
        &mut self,
        name: String,
        method: &'static str,
        members: usize,
        temperature: f64,
    ) -> Result<Row, SchemeError>;
    /// Trains an intermediate model of another architecture by distillation from the run's
    /// teacher (a teacher assistant); it starts from its own initial weights.
    fn train_assistant(
        &mut self,
        name: String,
        model: &ModelConfig,
        objective: Arc<dyn LogitLoss>,
    ) -> Result<(Network, Row), SchemeError>;
    /// The row of an ensemble of trained members: the mean of their probabilities on the test
    /// split (`test_logits`, one table per member), their summed cost.
    fn ensemble_row(
        &self,
        name: String,
        method: &'static str,
        members: &[Row],
        test_logits: &[Vec<f32>],
    ) -> Row;
    /// `count` teachers beyond the run's own, trained on every label once per seed: `models`
    /// gives their architectures and schedules, or, when empty, they are the run teacher's
    /// own, trained from other seeds.
    fn extra_teachers(
        &mut self,
        count: usize,
        models: &[ModelConfig],
    ) -> Result<Vec<(String, Network)>, SchemeError>;
    /// The folder of the teacher's checkpoints along its training, and each checkpoint with
    /// its epoch, in order.
    fn teacher_checkpoints(&self) -> Result<(PathBuf, Vec<(usize, PathBuf)>), SchemeError>;
    /// Loads one of those checkpoints, checked against the task.
    fn load_teacher_checkpoint(&self, path: &Path) -> Result<Network, SchemeError>;
}

/// A method that trains one student against the run's teacher with a logit loss (KD, DKD,
/// DIST, ...): the shape of every loss method's [`Method`].
#[derive(Debug)]
pub struct LogitMethod {
    /// The method's description.
    pub info: &'static MethodInfo,
    /// Its loss.
    pub objective: Arc<dyn LogitLoss>,
}

impl Method for LogitMethod {
    fn info(&self) -> &'static MethodInfo {
        self.info
    }

    fn run(&self, students: &mut dyn Students) -> Result<Vec<Row>, SchemeError> {
        let (_, row) = students.distil(DistilJob {
            name: students.name(self.info.name),
            method: self.info.name,
            objective: self.objective.clone(),
            teacher: TeacherSource::Main,
        })?;
        Ok(vec![row])
    }
}

/// A method that trains one student against the run's teacher with a feature loss (FitNets,
/// attention transfer, RKD, PKT, SP).
#[derive(Debug)]
pub struct FeatureLossMethod {
    /// The method's description.
    pub info: &'static MethodInfo,
    /// Its loss and the features it compares.
    pub objective: FeatureObjective,
}

impl FeatureLossMethod {
    /// The method of a feature loss, comparing the features `shared` names.
    pub fn boxed(
        info: &'static MethodInfo,
        method: Arc<dyn FeatureLoss>,
        shared: &Shared,
    ) -> Box<dyn Method> {
        Box::new(Self {
            info,
            objective: FeatureObjective {
                method,
                student_feature: shared.features.student.clone(),
                teacher_feature: shared.features.teacher.clone(),
            },
        })
    }
}

impl Method for FeatureLossMethod {
    fn info(&self) -> &'static MethodInfo {
        self.info
    }

    fn run(&self, students: &mut dyn Students) -> Result<Vec<Row>, SchemeError> {
        let name = students.name(self.info.name);
        let row = students.distil_features(name, self.info.name, self.objective.clone())?;
        Ok(vec![row])
    }
}
