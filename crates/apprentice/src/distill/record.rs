//! What one trained model of one seed produced: its role, its test metrics and its training
//! history. The runner writes one beside each checkpoint (`<model>.record.json`), so that a
//! resumed run does not train a finished model again, and `results.json` summarises them over
//! seeds.

use serde::{Deserialize, Serialize};

use crate::eval::metrics::Metrics;
use crate::nullable;

/// The part a model plays in an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The large model trained on all labels whose outputs the students learn from.
    Teacher,
    /// A student architecture trained on labels alone: the baseline distillation must beat.
    Scratch,
    /// A student trained with a distillation method from the teacher's outputs.
    Distilled,
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

/// Training history of one model for one seed; entry `i` of each list is epoch `i + 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// The seed of this run, one of `Results::seeds` of `results.json`.
    pub seed: u64,
    /// Mean training loss over the epoch's batches: cross-entropy for `ce`, the full
    /// distillation objective for distillation methods.
    #[serde(deserialize_with = "nullable::numbers")]
    pub train_loss: Vec<f64>,
    /// Accuracy on the validation split after the epoch, as a fraction.
    #[serde(deserialize_with = "nullable::numbers")]
    pub validation_accuracy: Vec<f64>,
    /// Learning rate in effect during the epoch (its value at the epoch's first step when a
    /// schedule changes it within the epoch).
    #[serde(deserialize_with = "nullable::numbers")]
    pub learning_rate: Vec<f64>,
}

/// The supervision complexity of fixed targets over one student's training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplexityTrack {
    /// Epochs finished at each measurement (0: the initial weights).
    pub epochs: Vec<usize>,
    /// Names of the targets, in the order of each measurement's values.
    pub targets: Vec<String>,
    /// The targets this student is trained on: `labels`, or the teacher's at the
    /// distillation temperature.
    pub own: String,
    /// Adjusted complexity, `values[m][t]` for measurement `m` and target `t`.
    #[serde(deserialize_with = "crate::nullable::number_rows")]
    pub values: Vec<Vec<f64>>,
}

/// One trained model's numbers for one seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudentRecord {
    /// Teacher, scratch baseline or distilled student.
    pub role: Role,
    /// The method that trained it (`ce` for labels alone).
    pub method: String,
    /// The fraction of training labels it saw.
    pub label_fraction: f64,
    /// Which inputs it was taught on (distilled students with scarce labels).
    pub transfer: Option<Transfer>,
    /// Its architecture, e.g. `mlp 64-32-10`.
    pub architecture: String,
    /// Its parameter count.
    pub params: usize,
    /// Its test metrics.
    pub metrics: Metrics,
    /// Accuracy on the validation split of the model as kept.
    pub validation_accuracy: f64,
    /// Wall-clock seconds spent training.
    pub wall_time_s: f64,
    /// Epochs trained.
    pub epochs_run: usize,
    /// Batches skipped for a non-finite loss (`on_nan = "skip-batch"`).
    #[serde(default)]
    pub skipped_batches: usize,
    /// Its training history.
    pub curve: Curve,
    /// Supervision complexity measured during training (`[complexity]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complexity: Option<ComplexityTrack>,
}

/// A model's name in results and tables with its record: one row of a seed's table.
pub type Row = (String, StudentRecord);
