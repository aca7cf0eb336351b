//! What the students of a language-model run learn from, besides the corpus text: its token
//! sequences, the teacher's top-k distributions on them (computed once per run, or reused),
//! and for sequence-level KD the sequences the teacher writes from the texts' prompts
//! ([`super::sequences`]) with the teacher's distributions on those.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;

use super::config::{Continuations, SequenceSource};
use super::error::{LmError, LmRunError};
use super::logit_cache::{TopKLogits, read_logit_cache, tokens_hash, write_logit_cache};
use super::logit_shards::{ShardExpectation, logit_shard_files, read_logit_shards};
use super::sequences::{SequenceWriter, teacher_sequences};
use super::teacher::Teacher;
use crate::layout::{RunLayout, lm_teacher_logits};

/// Tokenises every text, cut to `max_len` tokens; texts of fewer than two tokens are dropped
/// (nothing to predict). Returns the sequences and how many texts were dropped.
pub fn tokenize_corpus(
    teacher: &Teacher,
    texts: &[String],
    max_len: usize,
) -> Result<(Vec<Vec<u32>>, usize), LmError> {
    let mut sequences = Vec::with_capacity(texts.len());
    for text in texts {
        let mut ids = teacher.tokenizer.encode(text)?;
        ids.truncate(max_len);
        if ids.len() >= 2 {
            sequences.push(ids);
        }
    }
    let dropped = texts.len() - sequences.len();
    Ok((sequences, dropped))
}

/// The teacher's top-k distributions on `sequences`: read from `reuse` (or else `path`) when
/// it holds them for this teacher, these sequences and at least `top_k` tokens, else computed
/// and written to `path`. `reuse` is a cache file, a run folder holding one, or a folder of
/// shards written by `apprentice cache-teacher` ([`super::logit_shards`]), which must then
/// hold every sequence (anything wrong with them stops the run, rather than scoring the whole
/// corpus again unasked). Returns them, whether they were reused, and the seconds spent.
#[allow(clippy::too_many_arguments)]
pub fn teacher_distributions(
    teacher: &Teacher,
    teacher_sha256: &str,
    sequences: &[Vec<u32>],
    top_k: usize,
    batch: usize,
    path: &Path,
    reuse: Option<&Path>,
    log: &mut dyn FnMut(&str),
) -> Result<(TopKLogits, bool, f64), LmRunError> {
    let started = Instant::now();
    let tokens = tokens_hash(sequences);
    let vocab = teacher.config.vocab_size;
    let k = top_k.min(vocab - 1);
    if let Some(folder) = reuse.filter(|p| !logit_shard_files(p).is_empty()) {
        let expected = ShardExpectation {
            teacher_sha256,
            tokens_sha256: &tokens,
            sequences: sequences.len(),
            k,
            vocab,
        };
        let (cache, shards) = read_logit_shards(folder, &expected)?;
        log(&format!(
            "teacher cache: {} shards from {}",
            shards.len(),
            folder.display()
        ));
        return Ok((cache, true, started.elapsed().as_secs_f64()));
    }
    let reuse = reuse.map(|p| {
        if p.is_dir() {
            lm_teacher_logits(&RunLayout::new(p))
        } else {
            p.to_path_buf()
        }
    });
    if let Some(candidate) = reuse.as_deref().filter(|p| !p.is_file()) {
        log(&format!(
            "{}: no teacher cache there (neither a cache file nor shards)",
            candidate.display()
        ));
    }
    for candidate in reuse.as_deref().into_iter().chain([path]) {
        if !candidate.is_file() {
            continue;
        }
        match read_logit_cache(candidate, teacher_sha256, &tokens) {
            Ok(cache) if cache.k == k => {
                return Ok((cache, true, started.elapsed().as_secs_f64()));
            }
            Ok(cache) => log(&format!(
                "{}: keeps the top {} tokens, not {top_k}; recomputing",
                candidate.display(),
                cache.k
            )),
            Err(e) => log(&format!("not reusing the teacher cache: {e}")),
        }
    }
    let cache = score_sequences(teacher, sequences, k, batch, log)?;
    write_logit_cache(path, &cache, teacher_sha256, &tokens)?;
    Ok((cache, false, started.elapsed().as_secs_f64()))
}

/// The teacher's `k` most probable next tokens at every position of `sequences`, scored
/// `batch` sequences at a time in order (a shard starting on a multiple of `batch` is scored in
/// the same batches as the whole list, so its numbers are the same).
pub fn score_sequences(
    teacher: &Teacher,
    sequences: &[Vec<u32>],
    k: usize,
    batch: usize,
    log: &mut dyn FnMut(&str),
) -> Result<TopKLogits, LmError> {
    let vocab = teacher.config.vocab_size;
    let mut cache = TopKLogits::new(k, vocab);
    for (index, chunk) in sequences.chunks(batch.max(1)).enumerate() {
        let inputs: Vec<Vec<u32>> = chunk.iter().map(|s| s[..s.len() - 1].to_vec()).collect();
        let logits = teacher.logits(&inputs)?;
        let row = logits.len * vocab;
        for (r, input) in inputs.iter().enumerate() {
            cache.push_sequence(&logits.values[r * row..r * row + input.len() * vocab]);
        }
        if index % 10 == 9 {
            log(&format!(
                "teacher cache: {} of {} sequences",
                cache.sequences(),
                sequences.len()
            ));
        }
    }
    Ok(cache)
}

/// Sequences the teacher wrote, with its distributions on them.
#[derive(Debug)]
pub struct TeacherSet {
    /// How the prompts were continued.
    pub settings: Continuations,
    /// The sequences, in corpus order.
    pub sequences: Vec<Vec<u32>>,
    /// The teacher's top-k distributions on them.
    pub cache: TopKLogits,
}

/// Every objective's teacher-written training sequences (sequence-level KD), each set
/// generated once per run and shared by the objectives that ask for the same settings.
#[derive(Debug, Default)]
pub struct TeacherSets {
    sets: Vec<TeacherSet>,
    of_objective: Vec<Option<usize>>,
}

/// How [`TeacherSets::prepare`] reaches the teacher and the run folder.
pub struct SetsContext<'a> {
    /// The teacher.
    pub teacher: &'a Teacher,
    /// SHA-256 of its file.
    pub teacher_sha256: &'a str,
    /// Longest sequence.
    pub max_len: usize,
    /// Tokens kept per position of the distributions.
    pub top_k: usize,
    /// Sequences per teacher forward (generation and scoring).
    pub batch: usize,
    /// The run folder, where the sets and their distributions are kept.
    pub run_dir: &'a Path,
    /// The teacher's device.
    pub device: &'a Device,
}

impl TeacherSets {
    /// The sets `sources` (one per objective) ask for, read from the run folder or generated
    /// from the prompts of `corpus` and scored there.
    pub fn prepare(
        context: &SetsContext<'_>,
        corpus: &[Vec<u32>],
        sources: &[SequenceSource],
        log: &mut dyn FnMut(&str),
    ) -> Result<Self, LmRunError> {
        let mut sets: Vec<TeacherSet> = Vec::new();
        let mut of_objective = Vec::with_capacity(sources.len());
        for source in sources {
            let SequenceSource::Teacher(settings) = source else {
                of_objective.push(None);
                continue;
            };
            if let Some(index) = sets.iter().position(|s| s.settings == *settings) {
                of_objective.push(Some(index));
                continue;
            }
            let started = Instant::now();
            let writer = SequenceWriter {
                model: &context.teacher.model,
                config: &context.teacher.config,
                stop: context.teacher.tokenizer.eos_id(),
                sha256: context.teacher_sha256,
            };
            let (sequences, path, reused) = teacher_sequences(
                writer,
                corpus,
                settings,
                context.max_len,
                context.batch,
                context.run_dir,
                context.device,
                log,
            )?;
            log(&format!(
                "teacher sequences: {} sequences, {} tokens ({}, {:.1} s)",
                sequences.len(),
                sequences.iter().map(Vec::len).sum::<usize>(),
                if reused { "reused" } else { "generated" },
                started.elapsed().as_secs_f64()
            ));
            let cache_path = set_cache_path(&path);
            let (cache, _, _) = teacher_distributions(
                context.teacher,
                context.teacher_sha256,
                &sequences,
                context.top_k,
                context.batch,
                &cache_path,
                None,
                log,
            )?;
            of_objective.push(Some(sets.len()));
            sets.push(TeacherSet {
                settings: *settings,
                sequences,
                cache,
            });
        }
        Ok(Self { sets, of_objective })
    }

    /// The set objective `index` trains on, if it trains on the teacher's sequences.
    pub fn of(&self, index: usize) -> Option<&TeacherSet> {
        self.of_objective
            .get(index)
            .copied()
            .flatten()
            .map(|i| &self.sets[i])
    }
}

/// The teacher's distributions on the sequences of `teacher-sequences-<id>.json`:
/// `teacher-logits-<id>.safetensors` beside it.
fn set_cache_path(sequences: &Path) -> PathBuf {
    let stem = sequences
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id = stem.trim_start_matches("teacher-sequences-");
    sequences.with_file_name(format!("teacher-logits-{id}.safetensors"))
}
