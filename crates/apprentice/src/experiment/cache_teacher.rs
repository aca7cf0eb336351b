//! Writing a teacher cache: a trained teacher (a checkpoint, or the experiment's ONNX teacher)
//! run once over one seed's training inputs, its logits written as one shard of a cache that
//! later runs read instead of running the teacher (see [`crate::distill::cache`]).

use std::path::{Path, PathBuf};

use super::frozen_teacher::onnx_teacher_digest;
use crate::backend::ComputeDevice;
use crate::config::ExperimentConfig;
use crate::data::prepare::{load_raw, prepare};
use crate::distill::cache::{
    CacheError, CacheStorage, ShardRange, data_hash, teacher_hash, write_shard,
};
use crate::distill::train::predict_logits;

/// What to cache and where.
#[derive(Debug, Clone)]
pub struct CacheRequest {
    /// The experiment file, for messages.
    pub config_path: PathBuf,
    /// The teacher's checkpoint; `None`: the config's `teacher.checkpoint`, else its ONNX
    /// teacher.
    pub teacher: Option<PathBuf>,
    /// Data folder or file, overriding `data.path`.
    pub data: Option<PathBuf>,
    /// The seed whose split to cache; `None`: the checkpoint's seed (or the config's only one).
    pub seed: Option<u64>,
    /// Shard `i` of `N` (0-based); `None`: every sample in one shard.
    pub shard: Option<(usize, usize)>,
    /// Keep only the K most probable classes of each sample; `None`: every logit.
    pub top_k: Option<usize>,
    /// The cache folder, created if absent.
    pub out: PathBuf,
}

/// The shard written.
#[derive(Debug, Clone)]
pub struct CacheWritten {
    /// The shard's file.
    pub path: PathBuf,
    /// The samples it holds.
    pub range: ShardRange,
    /// Training samples of the seed's split.
    pub train_len: usize,
    /// The seed whose split was cached.
    pub seed: u64,
    /// The teacher's fingerprint.
    pub teacher_sha256: String,
    /// The training inputs' fingerprint.
    pub data_sha256: String,
}

/// Why no shard was written; each names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum CacheTeacherError {
    /// Neither a checkpoint given nor a teacher configured.
    #[error(
        "which teacher? pass its checkpoint (e.g. runs/<run>/seed-0/teacher.safetensors); {} sets neither teacher.checkpoint nor teacher.onnx",
        config.display()
    )]
    NoTeacher {
        /// The experiment file.
        config: PathBuf,
    },
    /// The teacher does not fit the experiment's data.
    #[error(
        "{}: the teacher takes {teacher_features} features and {teacher_classes} classes, the training split of {} has {features} features and {classes} classes",
        teacher.display(),
        config.display()
    )]
    Mismatch {
        /// The teacher's checkpoint.
        teacher: PathBuf,
        /// The experiment file.
        config: PathBuf,
        /// Inputs the teacher takes.
        teacher_features: usize,
        /// Classes the teacher predicts.
        teacher_classes: usize,
        /// Inputs of the data.
        features: usize,
        /// Classes of the data.
        classes: usize,
    },
    /// An ONNX teacher of a several-seed experiment, without a seed.
    #[error("{} has several seeds, each with its own split; say which to cache", config.display())]
    Seed {
        /// The experiment file.
        config: PathBuf,
    },
    /// `top_k` out of range.
    #[error(
        "expected 1 ≤ K < {classes} (the class count), found {k}; leave it out to keep every logit"
    )]
    TopK {
        /// The K asked for.
        k: usize,
        /// Classes of the data.
        classes: usize,
    },
    /// The shard does not exist.
    #[error("{0}")]
    Shard(String),
    /// The cache folder cannot be made.
    #[error("{}: cannot create the cache folder: {source}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing the shard.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The experiment's data or the teacher.
    #[error(transparent)]
    Run(#[from] crate::Error),
}

impl From<crate::checkpoint::CheckpointError> for CacheTeacherError {
    fn from(error: crate::checkpoint::CheckpointError) -> Self {
        Self::Run(error.into())
    }
}

impl From<crate::data::DataError> for CacheTeacherError {
    fn from(error: crate::data::DataError) -> Self {
        Self::Run(error.into())
    }
}

/// Runs the teacher over the seed's training inputs and writes the requested shard.
pub fn cache_teacher(
    config: &ExperimentConfig,
    request: &CacheRequest,
    device: &ComputeDevice,
) -> Result<CacheWritten, CacheTeacherError> {
    let raw = load_raw(&config.data, request.data.as_deref())?;
    let config_path = &request.config_path;
    let (seed, data, all_logits, teacher_sha256) =
        match (&request.teacher, &config.teacher.checkpoint) {
            (Some(path), _) | (None, Some(path)) => {
                let (network, meta) = crate::checkpoint::load(path, device)?;
                let seed = request.seed.unwrap_or(meta.seed);
                let data = prepare(&raw, &config.data, seed)?;
                let train = &data.train;
                if train.shape.len() != meta.input_shape.len()
                    || train.num_classes != meta.num_classes
                {
                    return Err(CacheTeacherError::Mismatch {
                        teacher: path.clone(),
                        config: config_path.clone(),
                        teacher_features: meta.input_shape.len(),
                        teacher_classes: meta.num_classes,
                        features: train.shape.len(),
                        classes: train.num_classes,
                    });
                }
                let logits = predict_logits(&network, train, device);
                (seed, data, logits, teacher_hash(&network)?)
            }
            (None, None) => {
                let settings =
                    config
                        .teacher
                        .onnx_config()
                        .ok_or_else(|| CacheTeacherError::NoTeacher {
                            config: config_path.clone(),
                        })?;
                let seed = match (request.seed, config.seeds.as_slice()) {
                    (Some(seed), _) | (None, &[seed]) => seed,
                    (None, _) => {
                        return Err(CacheTeacherError::Seed {
                            config: config_path.clone(),
                        });
                    }
                };
                let data = prepare(&raw, &config.data, seed)?;
                let logits = onnx_train_logits(&settings, &data)?;
                (seed, data, logits, onnx_teacher_digest(&settings)?)
            }
        };
    let train = &data.train;
    let classes = train.num_classes;
    let storage = match request.top_k {
        None => CacheStorage::Full,
        Some(k) if k == 0 || k >= classes => {
            return Err(CacheTeacherError::TopK { k, classes });
        }
        Some(k) => CacheStorage::TopK { k },
    };
    let range = match request.shard {
        Some((index, count)) => {
            ShardRange::of_shard(index, count, train.len()).map_err(CacheTeacherError::Shard)?
        }
        None => ShardRange {
            start: 0,
            end: train.len(),
        },
    };
    let logits = &all_logits[range.start * classes..range.end * classes];
    let data_sha256 = data_hash(train);
    create_folder(&request.out)?;
    let path = write_shard(
        &request.out,
        logits,
        range,
        classes,
        storage,
        &teacher_sha256,
        &data_sha256,
    )?;
    Ok(CacheWritten {
        path,
        range,
        train_len: train.len(),
        seed,
        teacher_sha256,
        data_sha256,
    })
}

fn create_folder(path: &Path) -> Result<(), CacheTeacherError> {
    std::fs::create_dir_all(path).map_err(|source| CacheTeacherError::Folder {
        path: path.to_path_buf(),
        source,
    })
}

/// The ONNX teacher's logits on the training split.
#[cfg(feature = "onnx")]
fn onnx_train_logits(
    settings: &crate::onnx::OnnxTeacherConfig,
    data: &crate::data::prepare::PreparedData,
) -> crate::Result<Vec<f32>> {
    super::onnx_teacher::onnx_teacher_logits(settings, data, &data.train)
}

/// Without the `onnx` feature there is no ONNX teacher to run.
#[cfg(not(feature = "onnx"))]
fn onnx_train_logits(
    _: &crate::onnx::OnnxTeacherConfig,
    _: &crate::data::prepare::PreparedData,
) -> crate::Result<Vec<f32>> {
    Err(crate::Error::Invalid(
        "teacher.onnx: this build has no ONNX runtime (the `onnx` feature is off)".to_string(),
    ))
}
