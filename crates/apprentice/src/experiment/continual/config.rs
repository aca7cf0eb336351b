//! The continual-learning experiment file: data, the stages it arrives in, the student and the
//! LwF settings.
//!
//! Unknown keys are rejected and parse errors are one line naming the file, line, column and key
//! path, as for the distillation experiment file (see [`crate::config`]).

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::DeviceKind;
use crate::config::{
    ConfigError, DataConfig, ModelConfig, TrainConfig, parse_toml, validate_name,
    validate_split_fractions,
};
use crate::distill::train::OnNan;

/// A continual-learning experiment as written by the user, after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinualConfig {
    /// Name of the experiment; the run folder is `<out>/<name>-<timestamp>`.
    pub name: String,
    /// One full sequence of stages per seed (split, initialisation, data order, replay buffer).
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Where tensors run.
    #[serde(default)]
    pub device: DeviceKind,
    /// The data set and how it is split; every stage draws from the same splits.
    pub data: DataConfig,
    /// The stages, in the order the data arrives (at least two).
    pub stages: Vec<StageConfig>,
    /// The student: architecture, and the schedule each stage trains with.
    pub student: ModelConfig,
    /// Learning without Forgetting and the replay variants.
    #[serde(default)]
    pub lwf: LwfConfig,
    /// Also train the `joint` reference: every stage on all the training data seen so far.
    #[serde(default = "default_true")]
    pub joint: bool,
    /// What a NaN or infinite loss does: `stop` (default) or `skip-batch`.
    #[serde(default)]
    pub on_nan: OnNan,
}

/// One stage: the part of the data that arrives together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// The classes whose samples arrive in this stage.
    pub classes: Vec<usize>,
    /// A distribution shift: the stage's inputs are the normalised features reordered by the
    /// fixed permutation drawn from this seed (the same for every run seed), as in permuted
    /// MNIST. Absent: the inputs are unchanged.
    #[serde(default)]
    pub permute_features: Option<u64>,
}

/// The settings of the distillation term and of the replay buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LwfConfig {
    /// Softening temperature T of the old-class outputs (Li & Hoiem use 2).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Weight λ of the distillation term.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Samples kept per class of each earlier stage in a replay buffer; each value is one pair
    /// of variants (`finetune` and `lwf` with that buffer), and 0 means no buffer.
    #[serde(default = "default_replay")]
    pub replay: Vec<usize>,
}

impl Default for LwfConfig {
    fn default() -> Self {
        Self {
            temperature: default_temperature(),
            weight: default_weight(),
            replay: default_replay(),
        }
    }
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_true() -> bool {
    true
}
fn default_temperature() -> f64 {
    2.0
}
fn default_weight() -> f64 {
    1.0
}
fn default_replay() -> Vec<usize> {
    vec![0]
}

impl ContinualConfig {
    /// Reads and validates a continual experiment file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates experiment text; `source_name` is used in error messages.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let config: ContinualConfig = parse_toml(text, source_name)?;
        config.validate().map_err(|message| ConfigError::Invalid {
            source_name: source_name.to_string(),
            message,
        })?;
        Ok(config)
    }

    /// Cross-field checks that serde cannot express. Class indices are checked against the
    /// data when it is loaded.
    pub fn validate(&self) -> Result<(), String> {
        validate_name(&self.name)?;
        if self.seeds.is_empty() {
            return Err("seeds: expected at least one seed".into());
        }
        let data = &self.data;
        validate_split_fractions(data)?;
        if data.label_fractions != [1.0] {
            return Err(format!(
                "data.label_fractions: a continual run trains on every label of each stage; remove the key (found {:?})",
                data.label_fractions
            ));
        }
        self.validate_stages()?;
        self.student.model.validate("student.model")?;
        validate_train(&self.student.train, "student.train")?;
        self.student.optimizer.validate("student.optimizer")?;
        let lwf = &self.lwf;
        if !(lwf.temperature.is_finite() && lwf.temperature > 0.0) {
            return Err(format!(
                "lwf.temperature: expected a positive number, found {}",
                lwf.temperature
            ));
        }
        if !(lwf.weight.is_finite() && lwf.weight >= 0.0) {
            return Err(format!(
                "lwf.weight: expected a number ≥ 0, found {}",
                lwf.weight
            ));
        }
        let distinct: BTreeSet<usize> = lwf.replay.iter().copied().collect();
        if lwf.replay.is_empty() || distinct.len() != lwf.replay.len() {
            return Err(format!(
                "lwf.replay: expected distinct sample counts per old class (0 = no replay), found {:?}",
                lwf.replay
            ));
        }
        Ok(())
    }

    fn validate_stages(&self) -> Result<(), String> {
        if self.stages.len() < 2 {
            return Err(format!(
                "stages: expected at least two [[stages]], found {}",
                self.stages.len()
            ));
        }
        for (index, stage) in self.stages.iter().enumerate() {
            let distinct: BTreeSet<usize> = stage.classes.iter().copied().collect();
            if stage.classes.is_empty() || distinct.len() != stage.classes.len() {
                return Err(format!(
                    "stages[{index}].classes: expected distinct class indices, found {:?}",
                    stage.classes
                ));
            }
            // The same samples twice would teach nothing new and blur old versus new.
            for (earlier_index, earlier) in self.stages[..index].iter().enumerate() {
                let shared = stage.classes.iter().find(|c| earlier.classes.contains(c));
                if let Some(class) = shared
                    && stage.permute_features == earlier.permute_features
                {
                    return Err(format!(
                        "stages[{index}].classes: class {class} already arrives in stages[{earlier_index}] with the same inputs; give one of them a different permute_features"
                    ));
                }
            }
        }
        Ok(())
    }
}

fn validate_train(train: &TrainConfig, key: &str) -> Result<(), String> {
    if train.epochs == 0 {
        return Err(format!("{key}.epochs: expected at least 1"));
    }
    if train.batch_size == 0 {
        return Err(format!("{key}.batch_size: expected at least 1"));
    }
    if train.early_stopping_patience == Some(0) {
        return Err(format!(
            "{key}.early_stopping_patience: expected at least 1 (or leave it out)"
        ));
    }
    Ok(())
}
