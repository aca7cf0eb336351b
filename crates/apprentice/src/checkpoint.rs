//! Model checkpoints: safetensors weights plus the metadata needed to rebuild and use the model.
//!
//! The safetensors header carries one metadata entry, `apprentice`, holding a JSON
//! [`CheckpointMeta`]: architecture, input shape, classes and the normalisation statistics, so
//! that `apprentice eval` can score a checkpoint on raw data with nothing else at hand.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use crate::backend::ComputeDevice;
use crate::data::SampleShape;
use crate::data::config::DataConfig;
use crate::data::normalize::Normalizer;
use crate::fsutil::write_atomic;
use crate::models::{ModelSpec, Network};

/// Version of the checkpoint metadata layout.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;

const METADATA_KEY: &str = "apprentice";

/// Everything besides the weights that a checkpoint records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// [`CHECKPOINT_FORMAT_VERSION`] at writing time.
    pub format_version: u32,
    /// Architecture.
    pub spec: ModelSpec,
    /// Shape of one input sample.
    pub input_shape: SampleShape,
    /// Number of classes.
    pub num_classes: usize,
    /// Normalisation fitted on the training split; applied to raw inputs before the model.
    pub normalizer: Normalizer,
    /// Model name in its run (e.g. `teacher`, `kd-all@5%`).
    pub name: String,
    /// Seed of the run that trained it.
    pub seed: u64,
    /// Name of the data set it was trained on.
    pub data: String,
    /// The `[data]` section of its run, so that `apprentice eval` can rebuild the same test split.
    pub data_config: DataConfig,
    /// Class names in label order, when the data names its classes (image folders); empty
    /// otherwise, and in checkpoints written before they were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_names: Vec<String>,
}

/// A checkpoint that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// File system trouble.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an apprentice checkpoint, or is damaged.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Writes `network` and `meta` to `path` atomically.
pub fn save(path: &Path, network: &Network, meta: &CheckpointMeta) -> Result<(), CheckpointError> {
    let invalid = |message: String| CheckpointError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let json = serde_json::to_string(meta).map_err(|e| invalid(e.to_string()))?;
    let bytes = serialise(network, Some(json)).map_err(invalid)?;
    write_atomic(path, &bytes).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the metadata of a checkpoint without loading its weights.
pub fn read_meta(path: &Path) -> Result<(CheckpointMeta, Vec<u8>), CheckpointError> {
    let invalid = |message: String| CheckpointError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| invalid(format!("not a safetensors file: {e}")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| {
            invalid("no apprentice metadata: this checkpoint was not written by apprentice".into())
        })?;
    let meta: CheckpointMeta = serde_json::from_str(json)
        .map_err(|e| invalid(format!("damaged apprentice metadata: {e}")))?;
    if meta.format_version > CHECKPOINT_FORMAT_VERSION {
        return Err(invalid(format!(
            "checkpoint format {} is newer than this apprentice understands ({})",
            meta.format_version, CHECKPOINT_FORMAT_VERSION
        )));
    }
    Ok((meta, bytes))
}

/// Loads a checkpoint as an inference-mode network on `device`.
pub fn load(
    path: &Path,
    device: &ComputeDevice,
) -> Result<(Network, CheckpointMeta), CheckpointError> {
    let invalid = |message: String| CheckpointError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let (meta, bytes) = read_meta(path)?;
    meta.spec.validate("spec").map_err(invalid)?;
    if meta.input_shape.is_empty() || meta.num_classes == 0 {
        return Err(invalid(
            "the recorded input shape or class count is empty".into(),
        ));
    }
    if !meta.normalizer.fits_shape(meta.input_shape) {
        return Err(invalid(
            "the recorded normalisation does not fit the input shape".into(),
        ));
    }
    // The architecture must fit in the weights actually stored, so that a damaged header
    // cannot make us allocate more than the file holds.
    let stored: u128 = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| invalid(format!("not a safetensors file: {e}")))?
        .tensors()
        .iter()
        .map(|(_, view)| view.shape().iter().map(|&d| d as u128).product::<u128>())
        .sum();
    match Network::planned_parameters(&meta.spec, meta.input_shape, meta.num_classes) {
        Some(planned) if planned <= stored => {}
        _ => {
            return Err(invalid(format!(
                "the recorded architecture needs more weights than the file's {stored} values"
            )));
        }
    }
    let network = Network::new(
        &meta.spec,
        meta.input_shape,
        meta.num_classes,
        0,
        &device.inference(),
    )
    .map_err(invalid)?;
    let network = load_weights(network, bytes).map_err(invalid)?;
    Ok((network.valid(), meta))
}

/// The weights of a module (a network, or everything a training run updates) as safetensors
/// bytes without apprentice metadata: the model part of a mid-training state.
pub fn weights_to_bytes<M: Module>(module: &M) -> Result<Vec<u8>, String> {
    serialise(module, None)
}

/// Safetensors bytes of the weights, with the apprentice metadata entry when given.
fn serialise<M: Module>(network: &M, metadata: Option<String>) -> Result<Vec<u8>, String> {
    let mut store = SafetensorsStore::from_bytes(None);
    if let Some(json) = metadata {
        store = store.metadata(METADATA_KEY, json);
    }
    network
        .save_into(&mut store)
        .map_err(|e| format!("cannot serialise the weights: {e}"))?;
    store
        .get_bytes()
        .map_err(|e| format!("cannot serialise the weights: {e}"))
}

/// Loads safetensors weights into an existing module of the same architecture, keeping its
/// device and parameter ids.
pub fn load_weights<M: Module>(mut network: M, bytes: Vec<u8>) -> Result<M, String> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).validate(true);
    let result = network
        .load_from(&mut store)
        .map_err(|e| format!("cannot load the weights: {e}"))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(format!(
            "weights do not match the architecture: {} errors, missing {:?}",
            result.errors.len(),
            result.missing
        ));
    }
    Ok(network)
}
