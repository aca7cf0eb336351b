//! What a model trains with: its architecture, schedule and optimiser, as experiment files
//! give them.

use serde::{Deserialize, Serialize};

use super::optim::OptimizerSpec;
use crate::models::ModelSpec;

/// How long and in what batches a model trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per step.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Stop when validation accuracy has not improved for this many epochs and keep the best
    /// epoch's weights; absent = train every epoch and keep the last.
    #[serde(default)]
    pub early_stopping_patience: Option<usize>,
}

fn default_batch_size() -> usize {
    64
}

/// A model to train: architecture, schedule and optimiser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture.
    pub model: ModelSpec,
    /// Epochs, batch size, early stopping.
    pub train: TrainConfig,
    /// Optimiser and learning-rate schedule.
    #[serde(default)]
    pub optimizer: OptimizerSpec,
}

impl TrainConfig {
    /// Checks the schedule; `key` is where it sits in the experiment file.
    pub fn validate(&self, key: &str) -> Result<(), String> {
        if self.epochs == 0 {
            return Err(format!("{key}.epochs: expected at least 1"));
        }
        if self.batch_size == 0 {
            return Err(format!("{key}.batch_size: expected at least 1"));
        }
        if self.early_stopping_patience == Some(0) {
            return Err(format!(
                "{key}.early_stopping_patience: expected at least 1 (or leave it out)"
            ));
        }
        Ok(())
    }
}

impl ModelConfig {
    /// Checks the architecture, the schedule and the optimiser under `key`.
    pub fn validate(&self, key: &str) -> Result<(), String> {
        self.model.validate(&format!("{key}.model"))?;
        self.train.validate(&format!("{key}.train"))?;
        self.optimizer.validate(&format!("{key}.optimizer"))
    }
}
