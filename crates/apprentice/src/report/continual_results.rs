//! `continual.json`, the results file of a continual run: its schema, which the continual
//! runner writes and the report reads.
//!
//! Accuracies are fractions in [0, 1] on the test split. A stage's *class group* is its test
//! samples (its classes, shifted as the stage is). After stage k:
//! - `new` is the accuracy on stage k's group, `old` on the groups of stages 1 to k−1 together,
//!   `all` on every group so far; the prediction is the argmax over every class seen so far
//!   (class-incremental: the model is not told which stage a sample comes from);
//! - `old_task_aware` is the accuracy on the old groups when each sample's prediction is the
//!   argmax over its own stage's classes only (the model is told the stage);
//! - `forgetting` is the mean, over the old groups, of the best accuracy the group had after any
//!   earlier stage minus its accuracy now (Chaudhry et al., 2018), class-incremental;
//!   `forgetting_task_aware` is the same drop of the task-aware accuracies.

use serde::{Deserialize, Serialize};

use super::results::{DataSummary, Summary};

/// Version of the `continual.json` layout.
pub const CONTINUAL_SCHEMA_VERSION: u32 = 1;

/// The whole `continual.json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContinualResults {
    /// See [`CONTINUAL_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Name of the experiment.
    pub experiment: String,
    /// When the file was written, in whole seconds since the Unix epoch (UTC).
    pub created_unix_s: u64,
    /// Version of apprentice that ran it.
    pub apprentice_version: String,
    /// Seeds; every per-seed list follows this order.
    pub seeds: Vec<u64>,
    /// The data set and its split sizes (of the first seed).
    pub data: DataSummary,
    /// The student's architecture, e.g. `mlp 784-128-10`.
    pub architecture: String,
    /// Its parameter count.
    pub params: usize,
    /// The stages, in order.
    pub stages: Vec<StageSummary>,
    /// Every variant, each with its numbers after every stage.
    pub variants: Vec<VariantResult>,
    /// The experiment configuration as run, with defaults filled in.
    pub config: serde_json::Value,
}

/// What arrives in one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    /// 1-based stage number.
    pub stage: usize,
    /// Its classes.
    pub classes: Vec<usize>,
    /// The seed of its feature permutation, if shifted.
    pub permute_features: Option<u64>,
    /// Its training, validation and test sample counts (first seed).
    pub train: usize,
    /// See `train`.
    pub validation: usize,
    /// See `train`.
    pub test: usize,
}

/// One way of learning the stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    /// `finetune`, `lwf`, `finetune+replay-R`, `lwf+replay-R` or `joint`.
    pub name: String,
    /// Whether the LwF distillation term on the previous model's old-class outputs is used.
    pub distillation: bool,
    /// Samples replayed per class of each earlier stage (0: none; `joint` replays everything).
    pub replay_per_class: usize,
    /// Whether every earlier stage's training data is replayed in full (the `joint` reference).
    pub joint: bool,
    /// Its numbers after each stage; stage 1 is shared by every variant.
    pub stages: Vec<StageResult>,
}

/// A variant's numbers after one stage, summarised over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageResult {
    /// 1-based stage number.
    pub stage: usize,
    /// Training samples of the stage (new data plus replayed data; first seed).
    pub train_samples: usize,
    /// Accuracy on the old groups (absent after stage 1).
    pub old: Option<Summary>,
    /// Accuracy on the stage's own group.
    pub new: Summary,
    /// Accuracy on every group seen so far.
    pub all: Summary,
    /// Accuracy on the old groups when told each sample's stage (absent after stage 1).
    pub old_task_aware: Option<Summary>,
    /// Mean drop of the old groups from their best earlier accuracy (absent after stage 1).
    pub forgetting: Option<Summary>,
    /// The same drop of the task-aware accuracies (absent after stage 1).
    pub forgetting_task_aware: Option<Summary>,
    /// Accuracy on each group seen so far, stage 1 first.
    pub groups: Vec<Summary>,
    /// Validation accuracy on the stage's own validation samples at the end of its training.
    pub validation_accuracy: Summary,
    /// Wall-clock seconds of the stage's training.
    pub train_time_s: Summary,
}

impl ContinualResults {
    /// The document as indented JSON ending in a newline (non-finite numbers as `null`).
    pub fn to_json_pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("results serialise to JSON");
        text.push('\n');
        text
    }

    /// The variant named `name`.
    pub fn variant(&self, name: &str) -> Option<&VariantResult> {
        self.variants.iter().find(|v| v.name == name)
    }
}
