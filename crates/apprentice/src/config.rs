//! The experiment file: a TOML description of data, teacher, student and distillation.
//!
//! Unknown keys are rejected and every error names the file, line and key path, e.g.
//! `configs/x.toml:12:1: student.train.epochs: invalid type: string "ten", expected usize`.
//! See the README's configuration reference for every key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::DeviceKind;
use crate::data::augment::Augmentation;
pub use crate::data::config::{DataConfig, DataSource};
use crate::distill::loss::{KdWeights, LogitObjective};
use crate::distill::methods::{
    AttentionSettings, DistSettings, DkdSettings, FitNetSettings, PktSettings, RkdSettings,
    SpSettings,
};
use crate::distill::objective::{FeatureMethod, FeatureObjective};
use crate::distill::optim::OptimizerSpec;
pub use crate::distill::settings::{ModelConfig, TrainConfig};
use crate::distill::train::OnNan;
use crate::models::ModelSpec;

/// An experiment file as written by the user, after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name of the experiment; the run folder is `<out>/<name>-<timestamp>`.
    pub name: String,
    /// One full experiment per seed (split, initialisation, data order, dropout); results
    /// report mean ± std over them.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Where tensors run: `cpu`, `cuda` or `wgpu` (the last two need the matching cargo feature).
    #[serde(default)]
    pub device: DeviceKind,
    /// The data set and how it is split.
    pub data: DataConfig,
    /// Data augmentation applied to training batches (the same view goes to teacher and student).
    #[serde(default)]
    pub augment: Augmentation,
    /// The teacher: trained in the run, or loaded from a checkpoint.
    pub teacher: TeacherConfig,
    /// The student, trained from scratch and by distillation with identical settings.
    pub student: ModelConfig,
    /// The distillation method.
    #[serde(default)]
    pub distill: DistillConfig,
    /// What a NaN or infinite loss does: `stop` (default) or `skip-batch`.
    #[serde(default)]
    pub on_nan: OnNan,
    /// Mid-training checkpoints, for `apprentice run --resume`.
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// Supervision complexity tracked over the students' training.
    #[serde(default)]
    pub complexity: ComplexityTracking,
    /// A teacher cache folder written by `apprentice cache-teacher`: the teacher's logits on
    /// the training inputs are read from it instead of being computed. Each seed uses
    /// `<folder>/seed-<S>` when that exists, else the folder itself. A relative path is taken
    /// from the working directory, like `data.path` and `teacher.checkpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_cache: Option<PathBuf>,
}

/// Supervision complexity measured during training (`[complexity]`): every `every_epochs`
/// epochs, each student's empirical NTK on a fixed, stratified subset of training inputs
/// measures the complexity of one-hot labels, random labels and the teacher's predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplexityTracking {
    /// Measure every this many epochs, on the initial weights and after the last epoch too
    /// (0: off, the default).
    #[serde(default)]
    pub every_epochs: usize,
    /// Training inputs in the measured subset (the kernel is `n × n`).
    #[serde(default = "default_complexity_subset")]
    pub subset: usize,
    /// Temperatures of the teacher's predictions measured.
    #[serde(default = "default_complexity_temperatures")]
    pub temperatures: Vec<f64>,
}

fn default_complexity_subset() -> usize {
    500
}
fn default_complexity_temperatures() -> Vec<f64> {
    vec![1.0, 4.0]
}

impl Default for ComplexityTracking {
    fn default() -> Self {
        Self {
            every_epochs: 0,
            subset: default_complexity_subset(),
            temperatures: default_complexity_temperatures(),
        }
    }
}

/// How often training state is saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Save every this many optimiser steps, besides every epoch end (0: epoch ends only).
    #[serde(default)]
    pub every_steps: usize,
    /// Keep this many most recent states of the model in training.
    #[serde(default = "default_keep_last")]
    pub keep_last: usize,
}

fn default_keep_last() -> usize {
    2
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            every_steps: 0,
            keep_last: default_keep_last(),
        }
    }
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// The teacher section: a model config, or a checkpoint to load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherConfig {
    /// A checkpoint written by apprentice (`.safetensors`); when set the teacher is loaded, not
    /// trained, and `model`/`train` may be omitted.
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
    /// Architecture (required unless `checkpoint` is set).
    #[serde(default)]
    pub model: Option<ModelSpec>,
    /// Training schedule (required unless `checkpoint` is set).
    #[serde(default)]
    pub train: Option<TrainConfig>,
    /// Optimiser.
    #[serde(default)]
    pub optimizer: OptimizerSpec,
    /// With `checkpoint`: the folder of the teacher's checkpoints along its training
    /// (`epoch-0001.safetensors`, ...), for online distillation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<PathBuf>,
}

/// Which inputs the teacher teaches on when only some labels are available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transfer {
    /// Every training input: the teacher's soft targets on inputs whose labels the student
    /// never sees (Hinton et al.'s transfer set).
    All,
    /// Only the labelled subset the scratch student also has.
    Labelled,
}

impl Transfer {
    /// The name used in results and tables.
    pub fn as_str(&self) -> &'static str {
        match self {
            Transfer::All => "all",
            Transfer::Labelled => "labelled",
        }
    }
}

/// The distillation method(s) and their settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillConfig {
    /// Method name (see [`METHOD_NAMES`]); `methods` overrides it.
    #[serde(default = "default_method")]
    pub method: String,
    /// Several methods compared in one run, on the same data, seeds and student initialisation;
    /// one table row per method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Softening temperature T of `kd` (and of the schemes built on it): a number, or `"auto"`
    /// to choose it per seed from the student's supervision complexity of the teacher's
    /// targets (see [`crate::experiment::tune`]).
    #[serde(default = "default_temperature")]
    pub temperature: TemperatureSetting,
    /// The temperatures `"auto"` chooses from.
    #[serde(default = "default_auto_grid")]
    pub auto_temperatures: Vec<f64>,
    /// Weight α of `kd`'s hard-label cross-entropy (the soft term gets 1 − α).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Transfer sets to run when a label fraction is below 1 (with all labels they coincide).
    #[serde(default = "default_transfer")]
    pub transfer: Vec<Transfer>,
    /// Settings of `dkd` (`[distill.dkd]`; defaults from the paper).
    #[serde(default)]
    pub dkd: DkdSettings,
    /// Settings of `dist` (`[distill.dist]`; defaults from the paper).
    #[serde(default)]
    pub dist: DistSettings,
    /// Settings of `fitnet`.
    #[serde(default)]
    pub fitnet: FitNetSettings,
    /// Settings of `at` (attention transfer).
    #[serde(default)]
    pub at: AttentionSettings,
    /// Settings of `rkd`.
    #[serde(default)]
    pub rkd: RkdSettings,
    /// Settings of `pkt`.
    #[serde(default)]
    pub pkt: PktSettings,
    /// Settings of `sp`.
    #[serde(default)]
    pub sp: SpSettings,
    /// Which features the feature methods compare.
    #[serde(default)]
    pub features: FeaturePairing,
    /// Settings of `born-again`.
    #[serde(default)]
    pub born_again: BornAgainConfig,
    /// Settings of `dml`.
    #[serde(default)]
    pub dml: DmlConfig,
    /// Settings of `multi-teacher`.
    #[serde(default)]
    pub multi_teacher: MultiTeacherConfig,
    /// Settings of `online`.
    #[serde(default)]
    pub online: OnlineConfig,
    /// Settings of `ta` (required when `ta` runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant: Option<AssistantConfig>,
}

/// A temperature, or `"auto"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TemperatureSetting {
    /// This value.
    Fixed(f64),
    /// Chosen by the run (see [`crate::experiment::tune`]).
    Auto,
}

impl TemperatureSetting {
    /// The fixed value; `"auto"` reads as the default 4 until a run has chosen (runs replace it
    /// with their choice before training).
    pub fn value(&self) -> f64 {
        match self {
            TemperatureSetting::Fixed(value) => *value,
            TemperatureSetting::Auto => 4.0,
        }
    }
}

impl Serialize for TemperatureSetting {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TemperatureSetting::Fixed(value) => serializer.serialize_f64(*value),
            TemperatureSetting::Auto => serializer.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for TemperatureSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TemperatureSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a positive number or \"auto\"")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(TemperatureSetting::Fixed(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(TemperatureSetting::Fixed(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(TemperatureSetting::Fixed(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "auto" {
                    Ok(TemperatureSetting::Auto)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn default_auto_grid() -> Vec<f64> {
    vec![1.0, 2.0, 4.0, 8.0, 16.0]
}

/// Every method `distill.method` and `distill.methods` accept.
pub const METHOD_NAMES: [&str; 13] = [
    "kd",
    "dkd",
    "dist",
    "fitnet",
    "at",
    "rkd",
    "pkt",
    "sp",
    "born-again",
    "dml",
    "multi-teacher",
    "ta",
    "online",
];

/// Online distillation (Harutyunyan et al., 2023): the student learns, epoch by epoch, from the
/// teacher's checkpoints along the teacher's own training, at the same fraction of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineConfig {
    /// Temperature of the teacher's probabilities (1 in the paper).
    #[serde(default = "default_online_temperature")]
    pub temperature: f64,
    /// Weight of the hard-label cross-entropy (0: the teacher's probabilities only).
    #[serde(default)]
    pub alpha: f64,
    /// The teacher keeps a checkpoint every this many epochs (and its last).
    #[serde(default = "default_online_every")]
    pub every_epochs: usize,
}

fn default_online_temperature() -> f64 {
    1.0
}
fn default_online_every() -> usize {
    1
}

impl Default for OnlineConfig {
    fn default() -> Self {
        Self {
            temperature: default_online_temperature(),
            alpha: 0.0,
            every_epochs: default_online_every(),
        }
    }
}

/// The features a feature method compares (`[distill.features]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturePairing {
    /// A student feature name (`hidden1`, `block2`, ...); default: its last feature.
    #[serde(default)]
    pub student: Option<String>,
    /// A teacher feature name; default: its last feature. Attention transfer uses the names
    /// only when both are given; otherwise it pairs every student convolution stage with the
    /// last teacher stage of the same resolution.
    #[serde(default)]
    pub teacher: Option<String>,
}

/// Born-again networks (Furlanello et al., 2018): the teacher of generation k is generation
/// k − 1 of the student's own architecture, generation 0 being the scratch student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BornAgainConfig {
    /// Generations distilled after the scratch student.
    #[serde(default = "default_generations")]
    pub generations: usize,
}

fn default_generations() -> usize {
    3
}

impl Default for BornAgainConfig {
    fn default() -> Self {
        Self {
            generations: default_generations(),
        }
    }
}

/// Deep mutual learning (Zhang et al., 2018): a cohort of students teach each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmlConfig {
    /// Students in the cohort (the first is reported).
    #[serde(default = "default_cohort")]
    pub students: usize,
    /// Temperature of the mutual KL terms.
    #[serde(default = "default_dml_temperature")]
    pub temperature: f64,
}

fn default_cohort() -> usize {
    2
}
fn default_dml_temperature() -> f64 {
    1.0
}

impl Default for DmlConfig {
    fn default() -> Self {
        Self {
            students: default_cohort(),
            temperature: default_dml_temperature(),
        }
    }
}

/// Several teachers: the student learns the weighted mean of their softened predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiTeacherConfig {
    /// Teachers: the run's teacher, plus this many minus one more of the same architecture
    /// and schedule from other seeds. Ignored when `extra` is given.
    #[serde(default = "default_teachers")]
    pub teachers: usize,
    /// Extra teachers of their own architectures and schedules (`[[distill.multi_teacher.extra]]`),
    /// trained on every label beside the run's teacher: an ensemble of different models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<ModelConfig>,
    /// Weight of each teacher's probabilities (normalised to sum to 1); default equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
}

fn default_teachers() -> usize {
    3
}

impl MultiTeacherConfig {
    /// Teachers in the ensemble, the run's own included.
    pub fn count(&self) -> usize {
        if self.extra.is_empty() {
            self.teachers
        } else {
            1 + self.extra.len()
        }
    }
}

impl Default for MultiTeacherConfig {
    fn default() -> Self {
        Self {
            teachers: default_teachers(),
            extra: Vec::new(),
            weights: None,
        }
    }
}

/// Teacher-assistant KD (Mirzadeh et al., 2020): teacher → assistant → student, each by KD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssistantConfig {
    /// The assistant's architecture, between the teacher's and the student's in size.
    pub model: ModelSpec,
    /// Its schedule (default: the student's).
    #[serde(default)]
    pub train: Option<TrainConfig>,
    /// Its optimiser (default: the student's).
    #[serde(default)]
    pub optimizer: Option<OptimizerSpec>,
}

impl DistillConfig {
    /// The methods this run compares, in order.
    pub fn method_list(&self) -> Vec<String> {
        match &self.methods {
            Some(methods) => methods.clone(),
            None => vec![self.method.clone()],
        }
    }

    /// Hinton's KD with this file's temperature and α.
    pub fn kd_weights(&self) -> KdWeights {
        KdWeights {
            temperature: self.temperature.value(),
            alpha: self.alpha,
        }
    }

    /// The logit objective of a logit method (`kd`, `dkd`, `dist`); KD for the schemes built
    /// on it; `None` for feature methods.
    pub fn logit_objective(&self, method: &str) -> Option<LogitObjective> {
        match method {
            "dkd" => Some(LogitObjective::Dkd(self.dkd)),
            "dist" => Some(LogitObjective::Dist(self.dist)),
            "kd" | "born-again" | "multi-teacher" | "ta" => {
                Some(LogitObjective::Kd(self.kd_weights()))
            }
            "online" => Some(LogitObjective::Kd(KdWeights {
                temperature: self.online.temperature,
                alpha: self.online.alpha,
            })),
            _ => None,
        }
    }

    /// The objective of the single configured method (`distill.method`).
    pub fn objective(&self) -> LogitObjective {
        self.logit_objective(&self.method)
            .unwrap_or(LogitObjective::Kd(self.kd_weights()))
    }

    /// The feature objective of a feature method (`fitnet`, `at`, `rkd`, `pkt`, `sp`).
    pub fn feature_objective(&self, method: &str) -> Option<FeatureObjective> {
        let method = match method {
            "fitnet" => FeatureMethod::FitNet(self.fitnet),
            "at" => FeatureMethod::Attention(self.at),
            "rkd" => FeatureMethod::Rkd(self.rkd),
            "pkt" => FeatureMethod::Pkt(self.pkt),
            "sp" => FeatureMethod::Sp(self.sp),
            _ => return None,
        };
        Some(FeatureObjective {
            method,
            student_feature: self.features.student.clone(),
            teacher_feature: self.features.teacher.clone(),
        })
    }
}

fn default_method() -> String {
    "kd".to_string()
}
fn default_temperature() -> TemperatureSetting {
    TemperatureSetting::Fixed(4.0)
}
fn default_alpha() -> f64 {
    0.5
}
fn default_transfer() -> Vec<Transfer> {
    vec![Transfer::All]
}

impl Default for DistillConfig {
    fn default() -> Self {
        Self {
            method: default_method(),
            methods: None,
            temperature: default_temperature(),
            auto_temperatures: default_auto_grid(),
            alpha: default_alpha(),
            transfer: default_transfer(),
            dkd: DkdSettings::default(),
            dist: DistSettings::default(),
            fitnet: FitNetSettings::default(),
            at: AttentionSettings::default(),
            rkd: RkdSettings::default(),
            pkt: PktSettings::default(),
            sp: SpSettings::default(),
            features: FeaturePairing::default(),
            born_again: BornAgainConfig::default(),
            dml: DmlConfig::default(),
            multi_teacher: MultiTeacherConfig::default(),
            online: OnlineConfig::default(),
            assistant: None,
        }
    }
}

/// A configuration that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or a key of the wrong type or name.
    #[error("{location}: {message}")]
    Parse {
        /// `file:line:column`.
        location: String,
        /// The key path and what was expected.
        message: String,
    },
    /// Values that parse but make no sense together.
    #[error("{source_name}: {message}")]
    Invalid {
        /// The file.
        source_name: String,
        /// The key path and what was expected.
        message: String,
    },
}

impl ExperimentConfig {
    /// Reads and validates an experiment file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates experiment text; `source_name` is used in error messages.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let config: ExperimentConfig = parse_toml(text, source_name)?;
        config.validate().map_err(|message| ConfigError::Invalid {
            source_name: source_name.to_string(),
            message,
        })?;
        Ok(config)
    }

    /// Cross-field checks that serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        validate_name(&self.name)?;
        if self.seeds.is_empty() {
            return Err("seeds: expected at least one seed".into());
        }
        let data = &self.data;
        validate_split_fractions(data)?;
        if data.label_fractions.is_empty()
            || data.label_fractions.iter().any(|&f| !(f > 0.0 && f <= 1.0))
        {
            return Err(format!(
                "data.label_fractions: expected values in (0, 1], found {:?}",
                data.label_fractions
            ));
        }
        match (
            &self.teacher.checkpoint,
            &self.teacher.model,
            &self.teacher.train,
        ) {
            (None, None, _) => {
                return Err("teacher.model: expected a model (or teacher.checkpoint)".into());
            }
            (None, _, None) => {
                return Err(
                    "teacher.train: expected a [teacher.train] table (or teacher.checkpoint)"
                        .into(),
                );
            }
            _ => {}
        }
        if let Some(model) = &self.teacher.model {
            model.validate("teacher.model")?;
        }
        if let Some(train) = &self.teacher.train {
            train.validate("teacher.train")?;
        }
        self.teacher.optimizer.validate("teacher.optimizer")?;
        self.student.model.validate("student.model")?;
        self.student.train.validate("student.train")?;
        self.student.optimizer.validate("student.optimizer")?;
        let distill = &self.distill;
        let methods = distill.method_list();
        let key = if distill.methods.is_some() {
            "distill.methods"
        } else {
            "distill.method"
        };
        if methods.is_empty() {
            return Err(format!("{key}: expected at least one method"));
        }
        for (index, method) in methods.iter().enumerate() {
            if methods[..index].contains(method) {
                return Err(format!("{key}: {method:?} is listed twice"));
            }
            self.validate_method(method, key)?;
        }
        if let TemperatureSetting::Fixed(t) = distill.temperature
            && !(t.is_finite() && t > 0.0)
        {
            return Err(format!(
                "distill.temperature: expected a positive number or \"auto\", found {t}"
            ));
        }
        if distill.temperature == TemperatureSetting::Auto {
            if distill.auto_temperatures.is_empty()
                || distill
                    .auto_temperatures
                    .iter()
                    .any(|t| !(t.is_finite() && *t > 0.0))
            {
                return Err(format!(
                    "distill.auto_temperatures: expected positive numbers, found {:?}",
                    distill.auto_temperatures
                ));
            }
            if !self.augment.is_identity() {
                return Err("distill.temperature: \"auto\" measures the teacher's cached predictions, which augmentation would make inexact; give a number".into());
            }
        }
        if !(0.0..=1.0).contains(&distill.alpha) {
            return Err(format!(
                "distill.alpha: expected a value in [0, 1], found {}",
                distill.alpha
            ));
        }
        let tracking = &self.complexity;
        if tracking.every_epochs > 0 {
            if !(2..=5000).contains(&tracking.subset) {
                return Err(format!(
                    "complexity.subset: expected between 2 and 5000 inputs, found {}",
                    tracking.subset
                ));
            }
            if tracking
                .temperatures
                .iter()
                .any(|t| !(t.is_finite() && *t > 0.0))
            {
                return Err(format!(
                    "complexity.temperatures: expected positive numbers, found {:?}",
                    tracking.temperatures
                ));
            }
        }
        if self.checkpoint.keep_last == 0 {
            return Err("checkpoint.keep_last: expected at least 1".into());
        }
        if distill.transfer.is_empty() {
            return Err("distill.transfer: expected at least one of \"all\", \"labelled\"".into());
        }
        if let Some(folder) = &self.teacher_cache
            && folder.as_os_str().is_empty()
        {
            return Err(
                "teacher_cache: expected a folder written by `apprentice cache-teacher`, found \"\""
                    .into(),
            );
        }
        Ok(())
    }
}

impl ExperimentConfig {
    /// Checks one method's settings and whether it fits this experiment.
    fn validate_method(&self, method: &str, key: &str) -> Result<(), String> {
        let distill = &self.distill;
        let scarce = self.data.label_fractions.iter().any(|&f| f < 1.0);
        let setting = |name: &str, result: Result<(), crate::distill::methods::MethodError>| {
            result.map_err(|e| format!("distill.{name}: {e}"))
        };
        match method {
            "kd" => {}
            "dkd" => {
                setting("dkd", distill.dkd.validate())?;
                // DKD splits the distributions at the true class, so every input needs a label.
                if scarce && distill.transfer.contains(&Transfer::All) {
                    return Err(format!(
                        "{key}: dkd needs the true label of every input it distils on, so with label_fractions below 1 use distill.transfer = [\"labelled\"]"
                    ));
                }
            }
            "dist" => setting("dist", distill.dist.validate())?,
            "fitnet" => setting("fitnet", distill.fitnet.validate())?,
            "at" => {
                setting("at", distill.at.validate())?;
                if !matches!(self.student.model, ModelSpec::Cnn(_)) {
                    return Err(format!(
                        "{key}: at (attention transfer) compares convolution feature maps, so it needs a cnn student; this student is an mlp"
                    ));
                }
            }
            "rkd" => setting("rkd", distill.rkd.validate())?,
            "pkt" => setting("pkt", distill.pkt.validate())?,
            "sp" => setting("sp", distill.sp.validate())?,
            "born-again" => {
                if distill.born_again.generations == 0 {
                    return Err("distill.born_again.generations: expected at least 1".into());
                }
            }
            "dml" => {
                if distill.dml.students < 2 {
                    return Err(format!(
                        "distill.dml.students: expected at least 2 (a cohort), found {}",
                        distill.dml.students
                    ));
                }
                if !(distill.dml.temperature.is_finite() && distill.dml.temperature > 0.0) {
                    return Err(format!(
                        "distill.dml.temperature: expected a positive number, found {}",
                        distill.dml.temperature
                    ));
                }
            }
            "multi-teacher" => {
                let multi = &distill.multi_teacher;
                for (index, extra) in multi.extra.iter().enumerate() {
                    let key = format!("distill.multi_teacher.extra[{index}]");
                    extra.model.validate(&format!("{key}.model"))?;
                    extra.train.validate(&format!("{key}.train"))?;
                    extra.optimizer.validate(&format!("{key}.optimizer"))?;
                }
                if multi.count() < 2 {
                    return Err(format!(
                        "distill.multi_teacher.teachers: expected at least 2, found {}",
                        multi.teachers
                    ));
                }
                if self.teacher.checkpoint.is_some() {
                    return Err(format!(
                        "{key}: multi-teacher trains its extra teachers from teacher.model, so it needs a trained teacher, not teacher.checkpoint"
                    ));
                }
                if !self.augment.is_identity() {
                    return Err(format!(
                        "{key}: multi-teacher averages cached teacher predictions, which augmentation would make inexact; turn augmentation off for it"
                    ));
                }
                if let Some(weights) = &multi.weights
                    && (weights.len() != multi.count()
                        || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
                        || weights.iter().sum::<f64>() <= 0.0)
                {
                    return Err(format!(
                        "distill.multi_teacher.weights: expected {} non-negative numbers (one per teacher, the run's own first), not all zero, found {weights:?}",
                        multi.count()
                    ));
                }
            }
            "online" => {
                let online = &distill.online;
                if !(online.temperature.is_finite() && online.temperature > 0.0) {
                    return Err(format!(
                        "distill.online.temperature: expected a positive number, found {}",
                        online.temperature
                    ));
                }
                if !(0.0..=1.0).contains(&online.alpha) {
                    return Err(format!(
                        "distill.online.alpha: expected a value in [0, 1], found {}",
                        online.alpha
                    ));
                }
                if online.every_epochs == 0 {
                    return Err("distill.online.every_epochs: expected at least 1".into());
                }
                if !self.augment.is_identity() {
                    return Err(format!(
                        "{key}: online distillation caches each teacher checkpoint's predictions, which augmentation would make inexact; turn augmentation off for it"
                    ));
                }
                if self.teacher.checkpoint.is_some() && self.teacher.checkpoints.is_none() {
                    return Err(format!(
                        "{key}: online distillation from a loaded teacher needs teacher.checkpoints, the folder of its checkpoints along training"
                    ));
                }
            }
            "ta" => {
                let Some(assistant) = &distill.assistant else {
                    return Err(format!(
                        "{key}: ta needs a [distill.assistant] table with the assistant's model"
                    ));
                };
                assistant.model.validate("distill.assistant.model")?;
                if let Some(train) = &assistant.train {
                    train.validate("distill.assistant.train")?;
                }
                if let Some(optimizer) = &assistant.optimizer {
                    optimizer.validate("distill.assistant.optimizer")?;
                }
            }
            other => {
                return Err(format!(
                    "{key}: unknown method {other:?}; expected one of: {}",
                    METHOD_NAMES.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// Deserialises TOML text into any experiment-file type, with one-line errors of the form
/// `source:line:col: key.path: what was expected` (`source_name` is usually the file's path).
/// Every experiment file of apprentice (runs, continual runs, text runs) is read through it.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    source_name: &str,
) -> Result<T, ConfigError> {
    let location = |span: Option<std::ops::Range<usize>>| match span {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("{source_name}:{line}:{column}")
        }
        None => source_name.to_string(),
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|error| ConfigError::Parse {
        location: location(error.span()),
        message: one_line(error.message()),
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = one_line(inner.message());
        ConfigError::Parse {
            location: location(inner.span()),
            message: if path.is_empty() || path == "." {
                message
            } else {
                format!("{path}: {message}")
            },
        }
    })
}

/// Checks an experiment name: it becomes part of a folder name.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "name: expected letters, digits, '-', '_' or '.', found {name:?}"
        ));
    }
    Ok(())
}

/// Checks the validation and test fractions of a `[data]` table.
pub fn validate_split_fractions(data: &DataConfig) -> Result<(), String> {
    if !(0.0..1.0).contains(&data.validation_fraction) {
        return Err(format!(
            "data.validation_fraction: expected a value in [0, 1), found {}",
            data.validation_fraction
        ));
    }
    if !(0.0..1.0).contains(&data.test_fraction)
        || data.validation_fraction + data.test_fraction >= 1.0
    {
        return Err(format!(
            "data.test_fraction: expected a value in [0, 1) with validation_fraction + test_fraction < 1, found {}",
            data.test_fraction
        ));
    }
    Ok(())
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
