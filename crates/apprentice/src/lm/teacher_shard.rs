//! `apprentice cache-teacher` on a language-model experiment: the corpus tokenised exactly as
//! a run tokenises it, one range of its sequences scored by the GGUF teacher and written as
//! one shard ([`super::logit_shards`]), so that N machines score a corpus together.
//!
//! Every seed of a run trains on the same sequences (a seed only draws which of them are held
//! out), so one cache serves every seed, and no seed is asked for.

use std::path::{Path, PathBuf};

use super::config::LmExperimentConfig;
use super::corpus::load_corpus;
use super::error::LmRunError;
use super::logit_cache::{file_hash, tokens_hash};
use super::logit_shards::{logit_shard_range, write_logit_shard};
use super::teacher::Teacher;
use super::teacher_data::{score_sequences, tokenize_corpus};
use crate::backend::ComputeDevice;
use crate::distill::cache::ShardRange;

/// Which shard to write, and where.
#[derive(Debug, Clone)]
pub struct LmShardRequest {
    /// The teacher's GGUF file; `None`: the experiment's `lm.teacher`.
    pub teacher: Option<PathBuf>,
    /// Shard `i` of `N` (0-based); `None`: every sequence in one shard.
    pub shard: Option<(usize, usize)>,
    /// The cache folder, created if absent.
    pub out: PathBuf,
}

/// The shard written.
#[derive(Debug, Clone)]
pub struct LmShardWritten {
    /// The shard's file.
    pub path: PathBuf,
    /// The sequences it holds.
    pub range: ShardRange,
    /// The run's sequences.
    pub sequences: usize,
    /// Positions scored (one per token that has a next token).
    pub positions: usize,
    /// Tokens kept per position.
    pub k: usize,
    /// SHA-256 of the teacher file.
    pub teacher_sha256: String,
    /// Hash of all the run's sequences.
    pub tokens_sha256: String,
}

/// Scores the requested shard of `config`'s sequences (its paths already resolved) with the
/// teacher on `device` and writes it; `log` hears the progress.
pub fn write_teacher_shard(
    config: &LmExperimentConfig,
    request: &LmShardRequest,
    device: &ComputeDevice,
    log: &mut dyn FnMut(&str),
) -> Result<LmShardWritten, LmRunError> {
    let teacher_path = request.teacher.as_deref().unwrap_or(&config.lm.teacher);
    let teacher = Teacher::open(teacher_path, &device.inference())?;
    let teacher_sha256 = file_hash(teacher_path)
        .map_err(|e| LmRunError::Invalid(format!("{}: {e}", teacher_path.display())))?;
    let texts = load_corpus(&config.corpus)?;
    let (sequences, _) = tokenize_corpus(&teacher, &texts, config.lm.max_len)?;
    let tokens_sha256 = tokens_hash(&sequences);
    let batch = config.lm.score_batch;
    let (index, count) = request.shard.unwrap_or((0, 1));
    let range =
        logit_shard_range(index, count, sequences.len(), batch).map_err(LmRunError::Invalid)?;
    log(&format!(
        "shard {index}/{count}: sequences {}..{} of {}",
        range.start,
        range.end,
        sequences.len()
    ));
    create_folder(&request.out)?;
    let k = config.lm.top_k.min(teacher.config.vocab_size - 1);
    let scored = score_sequences(&teacher, &sequences[range.start..range.end], k, batch, log)?;
    let path = write_logit_shard(
        &request.out,
        &scored,
        range,
        &teacher_sha256,
        &tokens_sha256,
    )?;
    Ok(LmShardWritten {
        path,
        range,
        sequences: sequences.len(),
        positions: scored.log_rest.len(),
        k,
        teacher_sha256,
        tokens_sha256,
    })
}

fn create_folder(path: &Path) -> Result<(), LmRunError> {
    std::fs::create_dir_all(path).map_err(|e| {
        LmRunError::Invalid(format!(
            "{}: cannot create the cache folder: {e}",
            path.display()
        ))
    })
}
