//! `apprentice eval` for an image (or feature) checkpoint: the data of the run that trained
//! it is read again with the data settings in its metadata, the seed's test split rebuilt
//! (or every sample taken), and the model scored on it as the run scored it.
//!
//! It lives beside the training loop because it predicts with the loop's
//! [`predict_logits`], so that its logits are the run's own.

use std::path::{Path, PathBuf};

use super::train::predict_logits;
use crate::backend::ComputeDevice;
use crate::checkpoint::{self, CheckpointError};
use crate::data::DataError;
use crate::data::prepare::{RawData, load_raw, prepare};
use crate::eval::metrics::{Metrics, evaluate};
use crate::eval::split::EvalSplit;

/// Why a checkpoint could not be scored: one line naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointEvalError {
    /// The checkpoint is missing or not an apprentice checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The data could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The data does not fit the model.
    #[error("{path}: {message}")]
    Mismatch {
        /// The checkpoint.
        path: PathBuf,
        /// What the model takes and what the data has.
        message: String,
    },
}

/// A checkpoint's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointEvaluation {
    /// The model's name in its run (`kd`).
    pub model: String,
    /// Its architecture.
    pub architecture: String,
    /// Its parameters.
    pub params: usize,
    /// The data set's name.
    pub data: String,
    /// Which samples.
    pub split: EvalSplit,
    /// How many samples were scored.
    pub samples: usize,
    /// Accuracy, NLL and ECE (no teacher agreement).
    pub metrics: Metrics,
}

/// Scores the checkpoint at `path` on `split` of the data its metadata records (read from
/// `data` instead when given: the digits are embedded, other data sets are read from the
/// path recorded at training unless told otherwise).
pub fn evaluate_checkpoint(
    path: &Path,
    data: Option<&Path>,
    split: EvalSplit,
) -> Result<CheckpointEvaluation, CheckpointEvalError> {
    let device = ComputeDevice::cpu();
    let (network, meta) = checkpoint::load(path, &device)?;
    let data_config = &meta.data_config;
    let raw = load_raw(data_config, data)?;
    let samples = match split {
        EvalSplit::Test => prepare(&raw, data_config, meta.seed)?.test,
        EvalSplit::All => {
            // The official training and test pools together, normalised as the model's
            // inputs were.
            let mut all = match raw {
                RawData::Pool(pool) => pool,
                RawData::Official { mut train, test } => {
                    train.features.extend(test.features);
                    train.labels.extend(test.labels);
                    train
                }
            };
            meta.normalizer.apply(&mut all);
            all
        }
    };
    if samples.shape.len() != meta.input_shape.len() || samples.num_classes > meta.num_classes {
        return Err(CheckpointEvalError::Mismatch {
            path: path.to_path_buf(),
            message: format!(
                "the model takes {} features and {} classes, the data has {} features and {} \
                 classes",
                meta.input_shape.len(),
                meta.num_classes,
                samples.shape.len(),
                samples.num_classes
            ),
        });
    }
    let logits = predict_logits(&network, &samples, &device);
    let metrics = evaluate(&logits, meta.num_classes, &samples.labels, None);
    Ok(CheckpointEvaluation {
        model: meta.name.clone(),
        architecture: meta.spec.describe(meta.input_shape.len(), meta.num_classes),
        params: network.parameter_count(),
        data: samples.name.clone(),
        split,
        samples: samples.len(),
        metrics,
    })
}
