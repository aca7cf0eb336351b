//! The teacher's top-k distributions of a language-model run written by several machines at
//! once: `apprentice cache-teacher --shard i/N` scores the i-th of N contiguous ranges of the
//! run's sequences and writes them as one *shard*, `teacher-logits-lm-<start>-<end>.safetensors`
//! in a shared folder, and a run given that folder puts the shards back together.
//!
//! A shard is a file of [`super::logit_cache`]'s layout whose header also records the range of
//! sequences it holds (its `offsets` count from its first sequence). Every shard records the
//! SHA-256 of the teacher file and of *all* the run's sequences, so that shards written for
//! another teacher, corpus, tokenizer or `max_len` are refused, as are damaged shards, shards
//! of another `top_k`, and gaps or overlaps between ranges, each in one line naming the shard
//! file (or the folder, for a range no shard holds).
//!
//! Shard ranges start on a multiple of the scoring batch, so that every sequence is scored in
//! the same batch, padded to the same width, as when a run scores all of them itself: the
//! shards put together are exactly the run's own cache.

use std::path::{Path, PathBuf};

use super::logit_cache::{
    LogitCacheError, LogitCacheHeader, TopKLogits, check_hashes, read_logit_file,
    read_logit_header, write_logit_file,
};
use crate::distill::cache::ShardRange;

/// Every shard file is named `teacher-logits-lm-<start>-<end>.safetensors`.
const SHARD_PREFIX: &str = "teacher-logits-lm-";
const SHARD_SUFFIX: &str = ".safetensors";

/// The file name of the shard holding sequences `range`.
pub fn logit_shard_file_name(range: ShardRange) -> String {
    format!(
        "{SHARD_PREFIX}{:010}-{:010}{SHARD_SUFFIX}",
        range.start, range.end
    )
}

/// Sequences of shard `index` of `count` (0-based) over `sequences` sequences scored `batch`
/// at a time: contiguous ranges of whole batches whose batch counts differ by at most one,
/// together covering every sequence exactly once.
pub fn logit_shard_range(
    index: usize,
    count: usize,
    sequences: usize,
    batch: usize,
) -> Result<ShardRange, String> {
    let batch = batch.max(1);
    let batches = sequences.div_ceil(batch);
    if count > batches {
        return Err(format!(
            "shard {index}/{count}: {count} shards for {batches} batches of {batch} sequences ({sequences} sequences) would leave some empty; use at most {batches}"
        ));
    }
    let batches = ShardRange::of_shard(index, count, batches)?;
    Ok(ShardRange {
        start: batches.start * batch,
        end: (batches.end * batch).min(sequences),
    })
}

/// Writes `logits`, the distributions of sequences `range` of the sequences hashed
/// `tokens_sha256`, as one shard in `dir` (atomically), and returns its path.
pub fn write_logit_shard(
    dir: &Path,
    logits: &TopKLogits,
    range: ShardRange,
    teacher_sha256: &str,
    tokens_sha256: &str,
) -> Result<PathBuf, LogitCacheError> {
    let path = dir.join(logit_shard_file_name(range));
    if range.is_empty() || logits.sequences() != range.len() {
        return Err(LogitCacheError {
            path,
            message: format!(
                "{} sequences for the range {}..{}",
                logits.sequences(),
                range.start,
                range.end
            ),
        });
    }
    write_logit_file(&path, logits, teacher_sha256, tokens_sha256, Some(range))?;
    Ok(path)
}

/// The shard files in `dir`, sorted by name (none when it is not a folder).
pub fn logit_shard_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with(SHARD_PREFIX) && name.ends_with(SHARD_SUFFIX)
        })
        .map(|entry| entry.path())
        .collect();
    paths.sort();
    paths
}

/// What a run expects of every shard.
#[derive(Debug, Clone, Copy)]
pub struct ShardExpectation<'a> {
    /// SHA-256 of the teacher file.
    pub teacher_sha256: &'a str,
    /// [`super::logit_cache::tokens_hash`] of all the run's sequences.
    pub tokens_sha256: &'a str,
    /// Number of the run's sequences.
    pub sequences: usize,
    /// Tokens kept per position.
    pub k: usize,
    /// The teacher's vocabulary size.
    pub vocab: usize,
}

/// Puts the shards in `dir` together after checking that each was written for this teacher,
/// these sequences and this `k`, is undamaged, and that together they hold every sequence
/// exactly once. Returns the distributions of every sequence and the shard files read.
pub fn read_logit_shards(
    dir: &Path,
    expected: &ShardExpectation<'_>,
) -> Result<(TopKLogits, Vec<PathBuf>), LogitCacheError> {
    let folder_error = |message: String| LogitCacheError {
        path: dir.to_path_buf(),
        message,
    };
    let paths = logit_shard_files(dir);
    if paths.is_empty() {
        return Err(folder_error(format!(
            "no teacher cache shards ({SHARD_PREFIX}*{SHARD_SUFFIX}); write them with `apprentice cache-teacher --shard i/N`"
        )));
    }
    // The headers first (a few kilobytes each), so that a folder that cannot work is refused
    // before any shard's tensors are read.
    let mut shards: Vec<(PathBuf, ShardRange)> = Vec::with_capacity(paths.len());
    for path in paths {
        let header = read_logit_header(&path)?;
        let range = check_header(&path, &header, expected)?;
        shards.push((path, range));
    }
    shards.sort_by_key(|(_, range)| (range.start, range.end));
    let mut covered = 0;
    let mut previous: Option<&Path> = None;
    for (path, range) in &shards {
        if range.start > covered {
            return Err(folder_error(format!(
                "sequences {covered}..{} are in no shard (a gap before {}); write the missing shard",
                range.start,
                path.display()
            )));
        }
        if range.start < covered {
            return Err(LogitCacheError {
                path: path.clone(),
                message: format!(
                    "sequences {}..{} overlap {} (up to sequence {covered}); remove the stale shard",
                    range.start,
                    range.end,
                    previous
                        .map_or_else(|| "another shard".to_string(), |p| p.display().to_string())
                ),
            });
        }
        covered = range.end;
        previous = Some(path);
    }
    if covered != expected.sequences {
        return Err(folder_error(format!(
            "the shards hold sequences 0..{covered} of {}; write the missing shards",
            expected.sequences
        )));
    }
    let mut all = TopKLogits::new(expected.k, expected.vocab);
    for (path, range) in &shards {
        let (header, logits) = read_logit_file(path)?;
        if header.range != Some(*range) {
            return Err(LogitCacheError {
                path: path.clone(),
                message: "changed while the cache was read; read it again".to_string(),
            });
        }
        all.append(&logits);
    }
    Ok((all, shards.into_iter().map(|(path, _)| path).collect()))
}

/// The range of one shard, after checking its header against what the run expects.
fn check_header(
    path: &Path,
    header: &LogitCacheHeader,
    expected: &ShardExpectation<'_>,
) -> Result<ShardRange, LogitCacheError> {
    let error = |message: String| LogitCacheError {
        path: path.to_path_buf(),
        message,
    };
    check_hashes(
        path,
        header,
        expected.teacher_sha256,
        expected.tokens_sha256,
    )?;
    let Some(range) = header.range else {
        return Err(error(
            "a whole cache, not a shard; give it as the --teacher-cache file, or move it out of the shard folder".to_string(),
        ));
    };
    if header.vocab != expected.vocab || header.k != expected.k {
        return Err(error(format!(
            "keeps the top {} of {} tokens, the run the top {} of {}; rewrite it with the experiment's top_k",
            header.k, header.vocab, expected.k, expected.vocab
        )));
    }
    if range.is_empty() || range.end > expected.sequences {
        return Err(error(format!(
            "holds sequences {}..{}, but the run has {}",
            range.start, range.end, expected.sequences
        )));
    }
    Ok(range)
}
