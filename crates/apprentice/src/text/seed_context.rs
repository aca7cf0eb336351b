//! What every stage of one seed of a text run reads: the experiment, the encoder, the texts
//! and their word pieces, the split of the seed, where models are kept; and the record a
//! finished model leaves.

use super::config::TextExperimentConfig;
use super::data::TextData;
use super::pretrained::PretrainedEncoder;
use super::run_store::TextRunStore;
use crate::backend::ComputeDevice;
use crate::data::{Dataset, SampleShape};
use crate::distill::record::{Curve, Role, StudentRecord, Transfer};
use crate::eval::metrics::Metrics;

/// The run-wide inputs of a seed's stages.
pub struct RunContext<'a> {
    /// The experiment.
    pub config: &'a TextExperimentConfig,
    /// The pretrained encoder (tokenizer, and the base of fine-tuning and of the students).
    pub encoder: &'a PretrainedEncoder,
    /// The texts and labels.
    pub data: &'a TextData,
    /// Word pieces of every text, special tokens included.
    pub sequences: &'a [Vec<u32>],
    /// The frozen encoder's sentence embeddings of every text (`texts × dim`), when the run
    /// needs them (the head teacher, the embedding student); else empty.
    pub embeddings: &'a [f32],
    /// Where models train.
    pub device: &'a ComputeDevice,
    /// Where finished models are kept.
    pub store: &'a TextRunStore,
    /// Number of classes.
    pub classes: usize,
}

/// One seed's split, as indices into the texts.
pub struct SeedSplit {
    /// The seed.
    pub seed: u64,
    /// Training texts (cut at `data.max_train`).
    pub train: Vec<usize>,
    /// Training texts left out by `data.max_train` that distilled students learn from without
    /// their labels (`distill.unlabelled_texts`); empty without.
    pub unlabelled: Vec<usize>,
    /// Validation texts.
    pub validation: Vec<usize>,
    /// Test texts.
    pub test: Vec<usize>,
}

impl RunContext<'_> {
    /// Word pieces of the texts at `indices`.
    pub fn sequences_of(&self, indices: &[usize]) -> Vec<Vec<u32>> {
        indices.iter().map(|&i| self.sequences[i].clone()).collect()
    }

    /// Classes of the texts at `indices`.
    pub fn labels_of(&self, indices: &[usize]) -> Vec<u32> {
        indices.iter().map(|&i| self.data.labels[i]).collect()
    }

    /// Width of the encoder's sentence embeddings.
    pub fn dim(&self) -> usize {
        self.encoder.dim()
    }

    /// The sentence embeddings of the texts at `indices` as a data set for the head.
    pub fn embedding_set(&self, name: &str, indices: &[usize]) -> Dataset {
        let dim = self.dim();
        Dataset {
            name: name.to_string(),
            features: indices
                .iter()
                .flat_map(|&i| self.embeddings[i * dim..(i + 1) * dim].iter().copied())
                .collect(),
            labels: self.labels_of(indices),
            shape: SampleShape::flat(dim),
            num_classes: self.classes,
        }
    }
}

/// The record of a finished model of one seed.
pub struct RecordParts {
    /// Teacher, scratch or distilled.
    pub role: Role,
    /// The method that trained it.
    pub method: String,
    /// Its architecture.
    pub architecture: String,
    /// Its parameters.
    pub params: usize,
    /// Its test metrics.
    pub metrics: Metrics,
    /// Validation accuracy of the model kept.
    pub validation_accuracy: f64,
    /// Seconds of training.
    pub wall_time_s: f64,
    /// Its history.
    pub curve: Curve,
}

impl RecordParts {
    /// The record written beside the model.
    pub fn into_record(self) -> StudentRecord {
        StudentRecord {
            transfer: (self.role == Role::Distilled).then_some(Transfer::All),
            role: self.role,
            method: self.method,
            label_fraction: 1.0,
            architecture: self.architecture,
            params: self.params,
            metrics: self.metrics,
            validation_accuracy: self.validation_accuracy,
            wall_time_s: self.wall_time_s,
            epochs_run: self.curve.train_loss.len(),
            skipped_batches: 0,
            curve: self.curve,
            complexity: None,
        }
    }
}
