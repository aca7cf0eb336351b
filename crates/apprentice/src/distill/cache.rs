//! The teacher's logits on the training inputs, computed once and kept on disk in shards.
//!
//! A frozen teacher gives the same logits on the same un-augmented input every epoch and every
//! run, so its forward pass need not be paid again. `apprentice cache-teacher` writes the logits
//! of a range of training samples to one safetensors *shard*; shards are independent, so N
//! machines (a Slurm job array, a Kubernetes indexed job) can each write one, and
//! [`TeacherCache::open`] puts them back together, memory-mapped.
//!
//! Each shard's metadata (one JSON entry, [`ShardHeader`]) records the format version, the
//! SHA-256 of the teacher's weights ([`teacher_hash`]) and of the normalised training data
//! ([`data_hash`]), the sample range `[start, end)`, the class count, the storage and a SHA-256
//! checksum of the tensor bytes. A cache is only ever used for the teacher and data it was
//! computed from: any mismatch, damage, gap or overlap is refused with a message naming the
//! shard file.
//!
//! **Storage.** `full` keeps every logit (`logits`, `f32 [rows, classes]`). With many classes,
//! `top-k` keeps, per sample, the k most probable classes (`indices`, `u32 [rows, k]`), their
//! log-probabilities at temperature 1 (`log_probs`, `f32 [rows, k]`) and the log of the
//! probability mass of all the other classes (`log_rest`, `f32 [rows]`). It is read back as
//! logits `ℓ` with `ℓ_c = log p_c` for a kept class and `ℓ_c = log(rest / (C − k))` for the
//! others: `softmax(ℓ)` gives exactly the kept probabilities and spreads the remaining mass
//! evenly over the other classes. At any temperature T the ratios among kept classes stay exact
//! (`softmax(ℓ/T)` ∝ `p^(1/T)` = `exp(z/T)` up to a constant); only the tail is flattened, so
//! KD against a top-k cache is an approximation and a full cache is exact.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::weights_to_bytes;
use crate::data::Dataset;
use crate::fsutil::write_atomic;
use crate::models::Network;

/// Version of the shard layout; a reader refuses shards newer than it understands.
pub const CACHE_FORMAT_VERSION: u32 = 1;

/// The safetensors metadata key holding a shard's [`ShardHeader`] as JSON.
const METADATA_KEY: &str = "apprentice-teacher-cache";
/// Every shard file is named `teacher-logits-<start>-<end>.safetensors`.
const SHARD_PREFIX: &str = "teacher-logits-";
const SHARD_SUFFIX: &str = ".safetensors";

/// How a shard keeps the logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum CacheStorage {
    /// Every logit: exact.
    Full,
    /// The `k` most probable classes and the remaining mass: see the module documentation.
    TopK {
        /// Classes kept per sample (at least 1, fewer than the class count).
        k: usize,
    },
}

/// Samples `[start, end)` of the training split, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRange {
    /// First sample.
    pub start: usize,
    /// One past the last sample.
    pub end: usize,
}

impl ShardRange {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// True when the range holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shard `index` of `count` over `samples` samples (0-based, as Slurm's
    /// `SLURM_ARRAY_TASK_ID` and Kubernetes' `JOB_COMPLETION_INDEX`): contiguous ranges whose
    /// sizes differ by at most one, together covering every sample exactly once.
    pub fn of_shard(index: usize, count: usize, samples: usize) -> Result<Self, String> {
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: expected i/N with 0 ≤ i < N (0-based)"
            ));
        }
        if count > samples {
            return Err(format!(
                "shard {index}/{count}: {count} shards for {samples} samples would leave some empty"
            ));
        }
        let bound = |i: usize| ((i as u128 * samples as u128) / count as u128) as usize;
        Ok(Self {
            start: bound(index),
            end: bound(index + 1),
        })
    }
}

/// Parses `i/N` (0-based shard `i` of `N`).
pub fn parse_shard_spec(text: &str) -> Result<(usize, usize), String> {
    let parse = |part: &str| part.trim().parse::<usize>().ok();
    match text.split_once('/') {
        Some((index, count)) => match (parse(index), parse(count)) {
            (Some(index), Some(count)) if count > 0 && index < count => Ok((index, count)),
            _ => Err(format!(
                "expected i/N with 0 ≤ i < N (0-based, e.g. 0/4), found {text:?}"
            )),
        },
        None => Err(format!(
            "expected i/N with 0 ≤ i < N (0-based, e.g. 0/4), found {text:?}"
        )),
    }
}

/// What a shard records besides its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardHeader {
    /// [`CACHE_FORMAT_VERSION`] at writing time.
    pub format_version: u32,
    /// [`teacher_hash`] of the teacher that produced the logits.
    pub teacher_sha256: String,
    /// [`data_hash`] of the normalised training split the rows index.
    pub data_sha256: String,
    /// The samples this shard holds.
    pub range: ShardRange,
    /// Number of classes.
    pub classes: usize,
    /// How the logits are kept.
    pub storage: CacheStorage,
    /// SHA-256 of the tensor bytes, one tensor after the other: `logits`, or `indices`,
    /// `log_probs`, `log_rest`.
    pub checksum_sha256: String,
}

/// A cache that cannot be written or used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A shard file is unreadable, damaged or belongs to another teacher or data set.
    #[error("{path}: {message}")]
    Shard {
        /// The shard file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A shard computed for another teacher or another training split.
    #[error(
        "{path}: written for another {what} (sha256 {}…, expected {}…); recompute the cache with `apprentice cache-teacher`",
        short_hash(.found),
        short_hash(.expected)
    )]
    Mismatch {
        /// The shard file.
        path: PathBuf,
        /// Which of the two hashes differs.
        what: Mismatch,
        /// The hash the shard records.
        found: String,
        /// The hash of this run's teacher or training split.
        expected: String,
    },
    /// The cache folder as a whole is unusable (missing, empty, gaps or overlaps).
    #[error("{path}: {message}")]
    Folder {
        /// The cache folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Arguments that cannot describe a shard.
    #[error("{0}")]
    Invalid(String),
}

/// Which hash of a shard differs from the run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// [`teacher_hash`]: the logits come from other weights.
    Teacher,
    /// [`data_hash`]: the rows are another data set, split (seed) or normalisation.
    Data,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Teacher => "teacher",
            Self::Data => "data set or split",
        })
    }
}

/// The first 12 hex digits of a hash, enough to tell two apart in a message.
pub fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// SHA-256 (hex) of a teacher's weights: every stored tensor (parameters and batch-norm
/// running statistics) by name, with its type, shape and values. The serialised weights
/// themselves are not hashed, since their header lists entries in no fixed order.
pub fn teacher_hash(teacher: &Network) -> Result<String, CacheError> {
    let invalid = |e: String| CacheError::Invalid(format!("teacher: {e}"));
    let bytes = weights_to_bytes(teacher).map_err(invalid)?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| invalid(e.to_string()))?;
    let mut named = tensors.tensors();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Sha256::new();
    hasher.update(b"apprentice teacher-cache weights v1");
    for (name, view) in &named {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(format!("{:?}", view.dtype()).as_bytes());
        hasher.update((view.shape().len() as u64).to_le_bytes());
        for &dim in view.shape() {
            hasher.update((dim as u64).to_le_bytes());
        }
        hasher.update(view.data());
    }
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 (hex) of a normalised training split: its shape, class count, every feature value
/// and every label, in order. Another seed's split, another normalisation or other data give
/// another hash.
pub fn data_hash(data: &Dataset) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"apprentice teacher-cache data v1");
    for value in [
        data.shape.channels,
        data.shape.height,
        data.shape.width,
        data.num_classes,
        data.len(),
    ] {
        hasher.update((value as u64).to_le_bytes());
    }
    let mut buffer = Vec::with_capacity(4096 * 4);
    for chunk in data.features.chunks(4096) {
        buffer.clear();
        buffer.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        hasher.update(&buffer);
    }
    for chunk in data.labels.chunks(4096) {
        buffer.clear();
        buffer.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        hasher.update(&buffer);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file name of the shard holding `range`.
pub fn shard_file_name(range: ShardRange) -> String {
    format!(
        "{SHARD_PREFIX}{:010}-{:010}{SHARD_SUFFIX}",
        range.start, range.end
    )
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The top-k storage of `logits` (`rows × classes`): kept classes by decreasing logit (ties to
/// the lower index), their log-probabilities, and the log of the mass of the others, all
/// computed in f64 from log-sum-exps so that no probability underflows.
fn top_k(logits: &[f32], classes: usize, k: usize) -> (Vec<u32>, Vec<f32>, Vec<f32>) {
    let rows = logits.len() / classes;
    let mut indices = Vec::with_capacity(rows * k);
    let mut log_probs = Vec::with_capacity(rows * k);
    let mut log_rest = Vec::with_capacity(rows);
    let mut order: Vec<usize> = Vec::with_capacity(classes);
    for row in logits.chunks_exact(classes) {
        order.clear();
        order.extend(0..classes);
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        let log_sum_exp = |columns: &[usize]| {
            let max = columns
                .iter()
                .map(|&c| row[c] as f64)
                .fold(f64::NEG_INFINITY, f64::max);
            max + columns
                .iter()
                .map(|&c| (row[c] as f64 - max).exp())
                .sum::<f64>()
                .ln()
        };
        let all = log_sum_exp(&order);
        for &class in &order[..k] {
            indices.push(class as u32);
            log_probs.push((row[class] as f64 - all) as f32);
        }
        log_rest.push((log_sum_exp(&order[k..]) - all) as f32);
    }
    (indices, log_probs, log_rest)
}

/// Writes the logits of `range` (`logits` holds exactly its `range.len() × classes` values,
/// row-major) as one shard in `dir`, atomically, and returns its path.
pub fn write_shard(
    dir: &Path,
    logits: &[f32],
    range: ShardRange,
    classes: usize,
    storage: CacheStorage,
    teacher_sha256: &str,
    data_sha256: &str,
) -> Result<PathBuf, CacheError> {
    let invalid = |message: String| CacheError::Invalid(message);
    if range.is_empty() || classes == 0 {
        return Err(invalid(format!(
            "a shard needs at least one sample and one class (range {}..{}, {classes} classes)",
            range.start, range.end
        )));
    }
    if logits.len() != range.len() * classes {
        return Err(invalid(format!(
            "samples {}..{}: expected {} logits ({} × {classes}), found {}",
            range.start,
            range.end,
            range.len() * classes,
            range.len(),
            logits.len()
        )));
    }
    if let Some(position) = logits.iter().position(|v| !v.is_finite()) {
        return Err(invalid(format!(
            "sample {}: the teacher's logit for class {} is {}; a cache of non-finite logits is useless",
            range.start + position / classes,
            position % classes,
            logits[position]
        )));
    }
    let rows = range.len();
    let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = match storage {
        CacheStorage::Full => vec![("logits", Dtype::F32, vec![rows, classes], f32_bytes(logits))],
        CacheStorage::TopK { k } => {
            if k == 0 || k >= classes {
                return Err(invalid(format!(
                    "top-k: expected 1 ≤ k < {classes} (the class count), found {k}; keep every logit with the full storage instead"
                )));
            }
            let (indices, log_probs, log_rest) = top_k(logits, classes, k);
            vec![
                (
                    "indices",
                    Dtype::U32,
                    vec![rows, k],
                    indices.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ),
                (
                    "log_probs",
                    Dtype::F32,
                    vec![rows, k],
                    f32_bytes(&log_probs),
                ),
                ("log_rest", Dtype::F32, vec![rows], f32_bytes(&log_rest)),
            ]
        }
    };
    let mut checksum = Sha256::new();
    for (_, _, _, bytes) in &tensors {
        checksum.update(bytes);
    }
    let header = ShardHeader {
        format_version: CACHE_FORMAT_VERSION,
        teacher_sha256: teacher_sha256.to_string(),
        data_sha256: data_sha256.to_string(),
        range,
        classes,
        storage,
        checksum_sha256: hex(&checksum.finalize()),
    };
    let path = dir.join(shard_file_name(range));
    let shard_error = |message: String| CacheError::Shard {
        path: path.clone(),
        message,
    };
    let json = serde_json::to_string(&header).map_err(|e| shard_error(e.to_string()))?;
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes).map(|view| (*name, view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| shard_error(format!("cannot lay out the tensors: {e}")))?;
    let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| shard_error(format!("cannot serialise: {e}")))?;
    write_atomic(&path, &bytes).map_err(|e| shard_error(e.to_string()))?;
    Ok(path)
}

/// The full logits of a cache, put together from verified shards.
#[derive(Debug)]
pub struct TeacherCache {
    logits: Vec<f32>,
    classes: usize,
    shards: Vec<PathBuf>,
    exact: bool,
}

impl TeacherCache {
    /// Opens every shard in `dir` and checks that each was written for this teacher
    /// (`expected_teacher_sha256`, see [`teacher_hash`]) and this training data
    /// (`expected_data_sha256`, see [`data_hash`]) with `classes` classes, is complete and
    /// matches its checksum, and that together the shards cover samples `0..samples` exactly
    /// once. Any failure is one line naming the shard file (or the folder, for gaps).
    pub fn open(
        dir: &Path,
        expected_teacher_sha256: &str,
        expected_data_sha256: &str,
        samples: usize,
        classes: usize,
    ) -> Result<Self, CacheError> {
        let folder_error = |message: String| CacheError::Folder {
            path: dir.to_path_buf(),
            message,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| {
            folder_error(format!(
                "cannot read the teacher cache folder: {e}; write one with `apprentice cache-teacher`"
            ))
        })?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| folder_error(e.to_string()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(SHARD_PREFIX) && name.ends_with(SHARD_SUFFIX) {
                paths.push(entry.path());
            }
        }
        if paths.is_empty() {
            return Err(folder_error(format!(
                "no teacher cache shards ({SHARD_PREFIX}*{SHARD_SUFFIX}); write them with `apprentice cache-teacher`"
            )));
        }
        paths.sort();
        let mut shards = Vec::with_capacity(paths.len());
        for path in paths {
            let shard = Shard::open(&path)?;
            let mismatch = |what: Mismatch, found: &str, expected: &str| CacheError::Mismatch {
                path: path.clone(),
                what,
                found: found.to_string(),
                expected: expected.to_string(),
            };
            if shard.header.teacher_sha256 != expected_teacher_sha256 {
                return Err(mismatch(
                    Mismatch::Teacher,
                    &shard.header.teacher_sha256,
                    expected_teacher_sha256,
                ));
            }
            if shard.header.data_sha256 != expected_data_sha256 {
                return Err(mismatch(
                    Mismatch::Data,
                    &shard.header.data_sha256,
                    expected_data_sha256,
                ));
            }
            if shard.header.classes != classes {
                return Err(CacheError::Shard {
                    path: path.clone(),
                    message: format!(
                        "holds logits of {} classes, expected {classes}",
                        shard.header.classes
                    ),
                });
            }
            shards.push((path, shard));
        }
        shards.sort_by_key(|(_, shard)| (shard.header.range.start, shard.header.range.end));
        let mut covered = 0;
        let mut previous: Option<&Path> = None;
        for (path, shard) in &shards {
            let range = shard.header.range;
            if range.start > covered {
                return Err(folder_error(format!(
                    "samples {covered}..{} are in no shard (a gap before {}); write the missing shard",
                    range.start,
                    path.display()
                )));
            }
            if range.start < covered {
                return Err(folder_error(format!(
                    "{} (samples {}..{}) overlaps {} (up to sample {covered}); remove the stale shard",
                    path.display(),
                    range.start,
                    range.end,
                    previous
                        .map_or_else(|| "another shard".to_string(), |p| p.display().to_string())
                )));
            }
            if range.end > samples {
                return Err(CacheError::Shard {
                    path: path.clone(),
                    message: format!(
                        "holds samples {}..{}, but the training split has {samples}",
                        range.start, range.end
                    ),
                });
            }
            covered = range.end;
            previous = Some(path);
        }
        if covered != samples {
            return Err(folder_error(format!(
                "the shards cover samples 0..{covered} of {samples}; write the missing shards"
            )));
        }
        let mut logits = vec![0.0f32; samples * classes];
        let mut exact = true;
        for (path, shard) in &shards {
            let range = shard.header.range;
            let rows = &mut logits[range.start * classes..range.end * classes];
            shard
                .fill_logits(rows)
                .map_err(|message| CacheError::Shard {
                    path: path.clone(),
                    message,
                })?;
            exact &= shard.header.storage == CacheStorage::Full;
        }
        Ok(Self {
            logits,
            classes,
            shards: shards.into_iter().map(|(path, _)| path).collect(),
            exact,
        })
    }

    /// The teacher's logits, row `i` (of [`TeacherCache::classes`] values) for training
    /// sample `i`, as `distill::train::TeacherSignal::Cached` takes them.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// The logits, moved out.
    pub fn into_logits(self) -> Vec<f32> {
        self.logits
    }

    /// Number of classes per row.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The shard files read, by sample range.
    pub fn shards(&self) -> &[PathBuf] {
        &self.shards
    }

    /// True when every shard keeps full logits (false when some keep only the top k).
    pub fn is_exact(&self) -> bool {
        self.exact
    }
}

/// One verified shard, memory-mapped.
struct Shard {
    header: ShardHeader,
    map: memmap2::Mmap,
}

impl Shard {
    /// Maps the file, checks its length against its header, its layout and its checksum.
    fn open(path: &Path) -> Result<Self, CacheError> {
        let fail = |message: String| CacheError::Shard {
            path: path.to_path_buf(),
            message,
        };
        let file = File::open(path).map_err(|e| fail(e.to_string()))?;
        let length = file.metadata().map_err(|e| fail(e.to_string()))?.len();
        if length == 0 {
            return Err(fail("truncated: the file is empty".into()));
        }
        // SAFETY: the map is read-only and private to this process. A shard is written once
        // (atomically renamed into place) and never modified afterwards; another program
        // truncating it while it is open is outside what any reader can defend against.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| fail(e.to_string()))?;
        let expected = declared_length(&map).map_err(fail)?;
        if (map.len() as u64) < expected {
            return Err(fail(format!(
                "truncated: the header describes {expected} bytes, the file has {}; rewrite this shard",
                map.len()
            )));
        }
        if (map.len() as u64) > expected {
            return Err(fail(format!(
                "damaged: {} bytes after the {expected} its header describes",
                map.len() as u64 - expected
            )));
        }
        let tensors = SafeTensors::deserialize(&map)
            .map_err(|e| fail(format!("not a safetensors file: {e}")))?;
        let (_, metadata) = SafeTensors::read_metadata(&map)
            .map_err(|e| fail(format!("not a safetensors file: {e}")))?;
        let json = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
            .ok_or_else(|| {
                fail("not a teacher cache shard (no apprentice-teacher-cache metadata)".into())
            })?;
        let header: ShardHeader =
            serde_json::from_str(json).map_err(|e| fail(format!("damaged shard metadata: {e}")))?;
        if header.format_version > CACHE_FORMAT_VERSION {
            return Err(fail(format!(
                "cache format {} is newer than this apprentice understands ({CACHE_FORMAT_VERSION})",
                header.format_version
            )));
        }
        if header.range.is_empty() || header.classes == 0 {
            return Err(fail(format!(
                "damaged shard metadata: empty range {}..{} or no classes",
                header.range.start, header.range.end
            )));
        }
        let rows = header.range.len();
        let expected_shapes: Vec<(&str, Dtype, Vec<usize>)> = match header.storage {
            CacheStorage::Full => vec![("logits", Dtype::F32, vec![rows, header.classes])],
            CacheStorage::TopK { k } => {
                if k == 0 || k >= header.classes {
                    return Err(fail(format!(
                        "damaged shard metadata: top-k with k = {k} for {} classes",
                        header.classes
                    )));
                }
                vec![
                    ("indices", Dtype::U32, vec![rows, k]),
                    ("log_probs", Dtype::F32, vec![rows, k]),
                    ("log_rest", Dtype::F32, vec![rows]),
                ]
            }
        };
        let mut checksum = Sha256::new();
        for (name, dtype, shape) in &expected_shapes {
            let view = tensors
                .tensor(name)
                .map_err(|_| fail(format!("no tensor {name:?}: damaged shard")))?;
            if view.dtype() != *dtype || view.shape() != shape.as_slice() {
                return Err(fail(format!(
                    "tensor {name:?} is {:?} {:?}, expected {dtype:?} {shape:?} for samples {}..{}",
                    view.dtype(),
                    view.shape(),
                    header.range.start,
                    header.range.end
                )));
            }
            checksum.update(view.data());
        }
        let actual = hex(&checksum.finalize());
        if actual != header.checksum_sha256 {
            return Err(fail(format!(
                "checksum mismatch (sha256 {}…, recorded {}…): the shard is damaged; rewrite it",
                &actual[..12],
                &header.checksum_sha256[..header.checksum_sha256.len().min(12)]
            )));
        }
        drop(tensors);
        Ok(Self { header, map })
    }

    /// Writes this shard's rows of logits into `rows` (`range.len() × classes` values),
    /// reconstructing top-k storage as described in the module documentation.
    fn fill_logits(&self, rows: &mut [f32]) -> Result<(), String> {
        let tensors = SafeTensors::deserialize(&self.map).map_err(|e| e.to_string())?;
        let floats = |name: &str| -> Result<Vec<f32>, String> {
            let view = tensors.tensor(name).map_err(|e| e.to_string())?;
            Ok(view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let classes = self.header.classes;
        match self.header.storage {
            CacheStorage::Full => {
                let view = tensors.tensor("logits").map_err(|e| e.to_string())?;
                for (value, bytes) in rows.iter_mut().zip(view.data().chunks_exact(4)) {
                    *value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                }
            }
            CacheStorage::TopK { k } => {
                let view = tensors.tensor("indices").map_err(|e| e.to_string())?;
                let indices: Vec<u32> = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                let log_probs = floats("log_probs")?;
                let log_rest = floats("log_rest")?;
                for (row_index, row) in rows.chunks_exact_mut(classes).enumerate() {
                    let kept = &indices[row_index * k..(row_index + 1) * k];
                    if let Some(&bad) = kept.iter().find(|&&c| c as usize >= classes) {
                        return Err(format!(
                            "sample {}: kept class {bad} is not below {classes}",
                            self.header.range.start + row_index
                        ));
                    }
                    reconstruct_top_k_into(
                        kept,
                        &log_probs[row_index * k..(row_index + 1) * k],
                        log_rest[row_index],
                        row,
                    );
                }
            }
        }
        if let Some(position) = rows.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "sample {}: a non-finite logit ({}); the shard is damaged",
                self.header.range.start + position / classes,
                rows[position]
            ));
        }
        Ok(())
    }
}

/// Logits of one sample from its top-k storage: `log p` for the kept classes and
/// `log(rest / (classes − k))` for each other class, so that their softmax is the kept
/// probabilities with the remaining mass spread evenly over the other classes.
pub fn reconstruct_top_k(
    kept: &[u32],
    log_probs: &[f32],
    log_rest: f32,
    classes: usize,
) -> Vec<f32> {
    let mut row = vec![0.0; classes];
    reconstruct_top_k_into(kept, log_probs, log_rest, &mut row);
    row
}

/// [`reconstruct_top_k`] written into `row` (one value per class), for readers that fill a
/// batch in place: at a vocabulary of tens of thousands a row apiece is megabytes per batch
/// allocated and copied.
pub fn reconstruct_top_k_into(kept: &[u32], log_probs: &[f32], log_rest: f32, row: &mut [f32]) {
    let others = row.len().saturating_sub(kept.len()).max(1);
    let tail = (log_rest as f64 - (others as f64).ln()) as f32;
    row.fill(tail);
    for (&class, &log_prob) in kept.iter().zip(log_probs) {
        row[class as usize] = log_prob;
    }
}

/// The byte length a safetensors file must have according to its own header (8 + header +
/// the end of the last tensor), read without trusting the rest of the file.
fn declared_length(bytes: &[u8]) -> Result<u64, String> {
    let Some(prefix) = bytes.get(..8) else {
        return Err(format!(
            "truncated: {} bytes, shorter than a safetensors header",
            bytes.len()
        ));
    };
    let header_len = u64::from_le_bytes(prefix.try_into().expect("eight bytes"));
    if header_len > 100_000_000 {
        return Err(format!(
            "not a safetensors file (header length {header_len})"
        ));
    }
    let header_end = 8 + header_len as usize;
    let Some(header) = bytes.get(8..header_end) else {
        return Err(format!(
            "truncated: the header alone needs {header_end} bytes, the file has {}; rewrite this shard",
            bytes.len()
        ));
    };
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
        .map_err(|e| format!("not a safetensors file (header: {e})"))?;
    let data_end = header
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .filter_map(|(_, info)| info.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    Ok(header_end as u64 + data_end)
}
