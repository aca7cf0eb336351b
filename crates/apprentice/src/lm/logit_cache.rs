//! The teacher's next-token distributions on a run's token sequences, computed once and kept
//! in one hash-checked safetensors file, so that every distilled student (of every seed)
//! reads them instead of running the teacher again.
//!
//! Per position it keeps the `k` most probable tokens (`indices`, `u32 [positions, k]`), their
//! log-probabilities at temperature 1 (`log_probs`, `f32 [positions, k]`) and the log of the
//! remaining probability mass (`log_rest`, `f32 [positions]`); `offsets` (`u64 [texts + 1]`)
//! says which positions belong to which sequence (a sequence of `n` tokens has `n − 1`
//! positions, those with a next token). It is read back as logits with
//! [`crate::distill::cache::reconstruct_top_k_into`]: exact probabilities for the kept tokens, the
//! remaining mass spread evenly over the others.
//!
//! Why not the sharded image cache of [`crate::distill::cache`]: its reader rebuilds the full
//! `[samples, classes]` matrix in memory, which for a 49,152-token vocabulary is 196 KB per
//! position (gigabytes for a small corpus); this file keeps the top-k form on disk and in
//! memory and expands one batch at a time.
//!
//! The metadata records the SHA-256 of the teacher file, of the token sequences and of the
//! tensor bytes; a file written for another teacher or other sequences, or damaged, is
//! refused with one line naming it. The same layout, with the range of sequences it holds,
//! is one shard of a cache written by several machines ([`super::logit_shards`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::distill::cache::{ShardRange, reconstruct_top_k_into, short_hash};
use crate::fsutil::write_atomic;

/// Version of the file layout.
pub const LOGIT_CACHE_VERSION: u32 = 1;
/// The safetensors metadata key holding the [`LogitCacheHeader`].
const METADATA_KEY: &str = "apprentice-lm-teacher-logits";

/// The top-k teacher distributions of a list of sequences.
#[derive(Debug, Clone, PartialEq)]
pub struct TopKLogits {
    /// Tokens kept per position.
    pub k: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// `offsets[i]..offsets[i + 1]` are the positions of sequence `i`.
    pub offsets: Vec<usize>,
    /// `[positions, k]` kept token ids, most probable first.
    pub indices: Vec<u32>,
    /// `[positions, k]` their log-probabilities.
    pub log_probs: Vec<f32>,
    /// `[positions]` log of the probability of every other token together.
    pub log_rest: Vec<f32>,
}

/// The `k` most probable entries of one row of logits (most probable first, ties to the
/// lower id), their log-probabilities and the log of the remaining mass.
pub fn top_k_row(logits: &[f32], k: usize) -> (Vec<u32>, Vec<f32>, f32) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let total: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let log_total = max + total.ln();
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    let by_value = |a: &u32, b: &u32| {
        logits[*b as usize]
            .total_cmp(&logits[*a as usize])
            .then(a.cmp(b))
    };
    let k = k.min(logits.len());
    if k < order.len() {
        order.select_nth_unstable_by(k, by_value);
    }
    order.truncate(k);
    order.sort_unstable_by(by_value);
    let kept: f64 = order
        .iter()
        .map(|&i| (logits[i as usize] as f64 - max).exp())
        .sum();
    let log_probs = order
        .iter()
        .map(|&i| (logits[i as usize] as f64 - log_total) as f32)
        .collect();
    // The rest in log space from the kept share, floored so that it stays finite.
    let rest = ((total - kept) / total).max(1e-30);
    (order, log_probs, rest.ln() as f32)
}

impl TopKLogits {
    /// An empty store of `k` of `vocab` tokens per position.
    pub fn new(k: usize, vocab: usize) -> Self {
        Self {
            k,
            vocab,
            offsets: vec![0],
            indices: Vec::new(),
            log_probs: Vec::new(),
            log_rest: Vec::new(),
        }
    }

    /// Appends one sequence from its logits, row-major `[positions, vocab]`.
    pub fn push_sequence(&mut self, logits: &[f32]) {
        for row in logits.chunks_exact(self.vocab) {
            let (ids, log_probs, rest) = top_k_row(row, self.k);
            self.indices.extend(ids);
            self.log_probs.extend(log_probs);
            self.log_rest.push(rest);
        }
        self.offsets.push(self.log_rest.len());
    }

    /// Number of sequences.
    pub fn sequences(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Appends the sequences of `other` (kept with the same `k` of the same vocabulary) after
    /// this store's, as if they had been pushed one by one.
    pub fn append(&mut self, other: &TopKLogits) {
        let base = self.log_rest.len();
        self.offsets
            .extend(other.offsets[1..].iter().map(|&o| base + o));
        self.indices.extend_from_slice(&other.indices);
        self.log_probs.extend_from_slice(&other.log_probs);
        self.log_rest.extend_from_slice(&other.log_rest);
    }

    /// The reconstructed logits of `sequences` as one right-padded batch `[rows, width,
    /// vocab]`, row-major; positions past a sequence's end are zero (they are masked).
    pub fn dense_batch(&self, sequences: &[usize], width: usize) -> Vec<f32> {
        let v = self.vocab;
        let mut out = vec![0.0; sequences.len() * width * v];
        for (r, &s) in sequences.iter().enumerate() {
            for (i, p) in (self.offsets[s]..self.offsets[s + 1])
                .take(width)
                .enumerate()
            {
                let at = (r * width + i) * v;
                reconstruct_top_k_into(
                    &self.indices[p * self.k..(p + 1) * self.k],
                    &self.log_probs[p * self.k..(p + 1) * self.k],
                    self.log_rest[p],
                    &mut out[at..at + v],
                );
            }
        }
        out
    }
}

/// What the file records besides its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogitCacheHeader {
    /// [`LOGIT_CACHE_VERSION`] at writing time.
    pub format_version: u32,
    /// SHA-256 of the teacher file.
    pub teacher_sha256: String,
    /// [`tokens_hash`] of the sequences.
    pub tokens_sha256: String,
    /// Tokens kept per position.
    pub k: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// The sequences `[start, end)` this file holds when it is one shard of a sharded cache
    /// (its `offsets` then start at its first sequence); absent when it holds every sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ShardRange>,
    /// SHA-256 of the tensor bytes: `offsets`, `indices`, `log_probs`, `log_rest`.
    pub checksum_sha256: String,
}

/// A cache file that cannot be written or used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct LogitCacheError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// SHA-256 (hex) of a file's bytes, read in blocks.
pub fn file_hash(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 (hex) of token sequences, each as its length and its ids (little-endian `u32`).
pub fn tokens_hash(sequences: &[Vec<u32>]) -> String {
    let mut hasher = Sha256::new();
    for sequence in sequences {
        hasher.update((sequence.len() as u64).to_le_bytes());
        for id in sequence {
            hasher.update(id.to_le_bytes());
        }
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tensor_bytes(logits: &TopKLogits) -> [Vec<u8>; 4] {
    [
        logits
            .offsets
            .iter()
            .flat_map(|&o| (o as u64).to_le_bytes())
            .collect(),
        logits
            .indices
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        logits
            .log_probs
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        logits
            .log_rest
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    ]
}

fn checksum(parts: &[Vec<u8>]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex(&hasher.finalize())
}

/// Writes `logits` to `path` (atomically) with the hashes of the teacher and sequences.
pub fn write_logit_cache(
    path: &Path,
    logits: &TopKLogits,
    teacher_sha256: &str,
    tokens_sha256: &str,
) -> Result<(), LogitCacheError> {
    write_logit_file(path, logits, teacher_sha256, tokens_sha256, None)
}

/// Writes `logits` to `path` (atomically): the whole cache when `range` is `None`, else the
/// shard holding sequences `range` of the sequences hashed `tokens_sha256`.
pub(crate) fn write_logit_file(
    path: &Path,
    logits: &TopKLogits,
    teacher_sha256: &str,
    tokens_sha256: &str,
    range: Option<ShardRange>,
) -> Result<(), LogitCacheError> {
    let error = |message: String| LogitCacheError {
        path: path.to_path_buf(),
        message,
    };
    let positions = logits.log_rest.len();
    let parts = tensor_bytes(logits);
    let header = LogitCacheHeader {
        format_version: LOGIT_CACHE_VERSION,
        teacher_sha256: teacher_sha256.to_string(),
        tokens_sha256: tokens_sha256.to_string(),
        k: logits.k,
        vocab: logits.vocab,
        range,
        checksum_sha256: checksum(&parts),
    };
    let shapes = [
        ("offsets", Dtype::U64, vec![logits.offsets.len()]),
        ("indices", Dtype::U32, vec![positions, logits.k]),
        ("log_probs", Dtype::F32, vec![positions, logits.k]),
        ("log_rest", Dtype::F32, vec![positions]),
    ];
    let views = shapes
        .iter()
        .zip(&parts)
        .map(|((name, dtype, shape), bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes).map(|view| (*name, view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("cannot lay out the tensors: {e}")))?;
    let json = serde_json::to_string(&header).map_err(|e| error(e.to_string()))?;
    let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| error(format!("cannot serialise: {e}")))?;
    write_atomic(path, &bytes).map_err(|e| error(e.to_string()))
}

/// Reads a cache written for the teacher file hashed `teacher_sha256` and the sequences
/// hashed `tokens_sha256`, after checking its layout and checksum.
pub fn read_logit_cache(
    path: &Path,
    teacher_sha256: &str,
    tokens_sha256: &str,
) -> Result<TopKLogits, LogitCacheError> {
    let header = read_logit_header(path)?;
    check_hashes(path, &header, teacher_sha256, tokens_sha256)?;
    if let Some(range) = header.range {
        return Err(LogitCacheError {
            path: path.to_path_buf(),
            message: format!(
                "one shard (sequences {}..{}) of a sharded cache; pass the folder of every shard",
                range.start, range.end
            ),
        });
    }
    read_logit_file(path).map(|(_, logits)| logits)
}

/// Refuses a file whose header records another teacher or other sequences.
pub(crate) fn check_hashes(
    path: &Path,
    header: &LogitCacheHeader,
    teacher_sha256: &str,
    tokens_sha256: &str,
) -> Result<(), LogitCacheError> {
    let error = |message: String| LogitCacheError {
        path: path.to_path_buf(),
        message,
    };
    if header.teacher_sha256 != teacher_sha256 {
        return Err(error(format!(
            "written for another teacher file (sha256 {}…, expected {}…)",
            short_hash(&header.teacher_sha256),
            short_hash(teacher_sha256)
        )));
    }
    if header.tokens_sha256 != tokens_sha256 {
        return Err(error(
            "written for other token sequences (corpus, tokenizer or max_len changed)".to_string(),
        ));
    }
    Ok(())
}

/// The header of a cache file, read without its tensors (a few kilobytes at its start), so
/// that the shards of a cache can be checked against each other before any is loaded.
pub(crate) fn read_logit_header(path: &Path) -> Result<LogitCacheHeader, LogitCacheError> {
    use std::io::Read;
    let error = |message: String| LogitCacheError {
        path: path.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(|e| error(e.to_string()))?;
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix)
        .map_err(|e| error(format!("not a safetensors file: {e}")))?;
    let length = u64::from_le_bytes(prefix);
    if length > 100_000_000 {
        return Err(error(format!(
            "not a safetensors file (header length {length})"
        )));
    }
    let mut json = vec![0u8; length as usize];
    file.read_exact(&mut json)
        .map_err(|e| error(format!("not a safetensors file: {e}")))?;
    let entries: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&json).map_err(|e| error(format!("not a safetensors file: {e}")))?;
    let header = entries
        .get("__metadata__")
        .and_then(|m| m.get(METADATA_KEY))
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            error(format!(
                "no {METADATA_KEY} metadata: not a teacher-logit cache"
            ))
        })
        .and_then(|json| parse_header(json).map_err(error))?;
    Ok(header)
}

fn parse_header(json: &str) -> Result<LogitCacheHeader, String> {
    let header: LogitCacheHeader =
        serde_json::from_str(json).map_err(|e| format!("bad {METADATA_KEY}: {e}"))?;
    if header.format_version != LOGIT_CACHE_VERSION {
        return Err(format!(
            "format version {} (this build reads {LOGIT_CACHE_VERSION})",
            header.format_version
        ));
    }
    Ok(header)
}

/// Reads a cache file (a whole cache or one shard) with its header, after checking its
/// layout and checksum but not which teacher and sequences it was written for.
pub(crate) fn read_logit_file(
    path: &Path,
) -> Result<(LogitCacheHeader, TopKLogits), LogitCacheError> {
    let error = |message: String| LogitCacheError {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| error(format!("not a safetensors file: {e}")))?;
    let header = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| {
            error(format!(
                "no {METADATA_KEY} metadata: not a teacher-logit cache"
            ))
        })
        .and_then(|json| parse_header(json).map_err(error))?;
    let tensors = SafeTensors::deserialize(&bytes)
        .map_err(|e| error(format!("not a safetensors file: {e}")))?;
    let tensor = |name: &str, dtype: Dtype| {
        let view = tensors
            .tensor(name)
            .map_err(|_| error(format!("no tensor {name:?}")))?;
        if view.dtype() != dtype {
            return Err(error(format!(
                "tensor {name:?}: expected {dtype:?}, found {:?}",
                view.dtype()
            )));
        }
        Ok((view.shape().to_vec(), view.data().to_vec()))
    };
    let (offsets_shape, offsets) = tensor("offsets", Dtype::U64)?;
    let (indices_shape, indices) = tensor("indices", Dtype::U32)?;
    let (probs_shape, log_probs) = tensor("log_probs", Dtype::F32)?;
    let (rest_shape, log_rest) = tensor("log_rest", Dtype::F32)?;
    let parts = [offsets, indices, log_probs, log_rest];
    if checksum(&parts) != header.checksum_sha256 {
        return Err(error(
            "checksum mismatch: the file is damaged; delete it to recompute".to_string(),
        ));
    }
    let [offsets, indices, log_probs, log_rest] = parts;
    let words = |b: &[u8]| -> Vec<u32> {
        b.chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect()
    };
    let floats = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect()
    };
    let offsets: Vec<usize> = offsets
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")) as usize)
        .collect();
    let positions = rest_shape.first().copied().unwrap_or(0);
    let k = header.k;
    let consistent = offsets_shape.len() == 1
        && !offsets.is_empty()
        && offsets[0] == 0
        && offsets.windows(2).all(|w| w[0] <= w[1])
        && offsets.last() == Some(&positions)
        && indices_shape == [positions, k]
        && probs_shape == [positions, k]
        && k > 0
        && k <= header.vocab
        && header
            .range
            .is_none_or(|r| !r.is_empty() && offsets.len() == r.len() + 1);
    let indices = words(&indices);
    if !consistent || indices.iter().any(|&i| i as usize >= header.vocab) {
        return Err(error(
            "inconsistent shapes, offsets or token ids; delete it to recompute".to_string(),
        ));
    }
    let logits = TopKLogits {
        k,
        vocab: header.vocab,
        offsets,
        indices,
        log_probs: floats(&log_probs),
        log_rest: floats(&log_rest),
    };
    Ok((header, logits))
}
