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
use crate::distill::method::ValidationContext;
pub use crate::distill::objective::FeaturePairing;
use crate::distill::optim::OptimizerSpec;
pub use crate::distill::record::Transfer;
pub use crate::distill::registry::{DistillConfig, METHOD_NAMES, MethodName};
pub use crate::distill::settings::{ModelConfig, TrainConfig};
pub use crate::distill::temperature::TemperatureSetting;
use crate::distill::train::OnNan;
use crate::models::ModelSpec;
use crate::onnx::{OnnxInput, OnnxTeacherConfig};

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

/// The teacher section: a model config, a checkpoint to load, or an ONNX model from another
/// framework.
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
    /// A model trained outside apprentice and exported to ONNX (`.onnx`), used as a frozen
    /// teacher; `teacher.input` says how samples become its input. Excludes `checkpoint`,
    /// `model` and `train`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnx: Option<PathBuf>,
    /// With `onnx`: the graph's input and the preprocessing it expects, applied to the raw
    /// samples (pixels / 255), not to the students' normalised ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<OnnxInput>,
    /// With `onnx`: the graph value holding the logits `[N, classes]` (default: its first
    /// output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// With `onnx`: a graph value (an output or any intermediate value) that feature methods
    /// (FitNets, AT, RKD, PKT, SP) use as the teacher's feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
}

impl TeacherConfig {
    /// The ONNX teacher's settings, when `onnx` is set (validated: `input` is then present).
    pub fn onnx_config(&self) -> Option<OnnxTeacherConfig> {
        let path = self.onnx.clone()?;
        let mut settings = OnnxTeacherConfig::new(path, self.input.clone()?);
        settings.output = self.output.clone();
        settings.feature = self.feature.clone();
        Some(settings)
    }

    /// Checks that exactly one source of the teacher is given and that the ONNX keys appear
    /// only with `onnx`.
    fn validate_source(&self) -> Result<(), String> {
        if let Some(onnx) = &self.onnx {
            let clash = [
                ("checkpoint", self.checkpoint.is_some()),
                ("model", self.model.is_some()),
                ("train", self.train.is_some()),
                ("checkpoints", self.checkpoints.is_some()),
            ]
            .into_iter()
            .find(|(_, set)| *set);
            if let Some((key, _)) = clash {
                return Err(format!(
                    "teacher.{key}: not with teacher.onnx ({}): an ONNX teacher is loaded as it is, not trained or read from an apprentice checkpoint",
                    onnx.display()
                ));
            }
            let Some(input) = &self.input else {
                return Err(format!(
                    "teacher.input: expected a [teacher.input] table with the input name, shape and preprocessing that {} expects",
                    onnx.display()
                ));
            };
            return validate_onnx_input(input);
        }
        for (key, set) in [
            ("input", self.input.is_some()),
            ("output", self.output.is_some()),
            ("feature", self.feature.is_some()),
        ] {
            if set {
                return Err(format!(
                    "teacher.{key}: only with teacher.onnx (the settings of an ONNX teacher)"
                ));
            }
        }
        match (&self.checkpoint, &self.model, &self.train) {
            (None, None, _) => Err(
                "teacher.model: expected a model (or teacher.checkpoint, or teacher.onnx)".into(),
            ),
            (None, _, None) => Err(
                "teacher.train: expected a [teacher.train] table (or teacher.checkpoint)".into(),
            ),
            _ => Ok(()),
        }
    }
}

/// Checks `[teacher.input]`: a sample shape, and one mean and deviation per channel or one for
/// all.
fn validate_onnx_input(input: &OnnxInput) -> Result<(), String> {
    if !(input.shape.len() == 1 || input.shape.len() == 3) || input.shape.contains(&0) {
        return Err(format!(
            "teacher.input.shape: expected [channels, height, width] or [features] without the batch axis, found {:?}",
            input.shape
        ));
    }
    let channels = input.channels();
    for (key, values) in [("mean", &input.mean), ("std", &input.std)] {
        if values.len() != 1 && values.len() != channels {
            return Err(format!(
                "teacher.input.{key}: expected one value or one per channel ({channels}), found {}",
                values.len()
            ));
        }
    }
    if input.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(format!(
            "teacher.input.std: expected positive numbers, found {:?}",
            input.std
        ));
    }
    if !(input.scale.is_finite() && input.scale != 0.0) || input.mean.iter().any(|m| !m.is_finite())
    {
        return Err("teacher.input: expected a finite non-zero scale and finite means".into());
    }
    Ok(())
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
        match (data.source, &data.image_folder) {
            (DataSource::ImageFolder, None) => {
                return Err("data.image_folder: the image-folder source needs a [data.image_folder] table with at least size = [height, width]".into());
            }
            (DataSource::ImageFolder, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err("data.image_folder: only with data.source = \"image-folder\"".into());
            }
        }
        self.teacher.validate_source()?;
        if let Some(onnx) = &self.teacher.onnx {
            if !cfg!(feature = "onnx") {
                return Err(format!(
                    "teacher.onnx: {}: this build of apprentice has no ONNX runtime; build it with the `onnx` feature (on by default)",
                    onnx.display()
                ));
            }
            if !self.augment.is_identity() {
                return Err(format!(
                    "teacher.onnx: {}: an ONNX teacher's outputs are computed once on the un-augmented inputs, so augmentation must be off",
                    onnx.display()
                ));
            }
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
        let context = ValidationContext {
            key,
            unlabelled_inputs: self.data.label_fractions.iter().any(|&f| f < 1.0)
                && distill.transfer.contains(&Transfer::All),
            student: &self.student.model,
            teacher_loaded: self.teacher.checkpoint.is_some() || self.teacher.onnx.is_some(),
            teacher_onnx: self.teacher.onnx.is_some(),
            teacher_onnx_feature: self.teacher.feature.is_some(),
            teacher_checkpoints: self.teacher.checkpoints.is_some(),
            augmented: !self.augment.is_identity(),
        };
        for (index, &method) in methods.iter().enumerate() {
            if methods[..index].contains(&method) {
                return Err(format!("{key}: \"{method}\" is listed twice"));
            }
            distill.validate_method(method, &context)?;
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
