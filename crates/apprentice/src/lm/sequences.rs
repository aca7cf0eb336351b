//! Training sequences that a model writes instead of the corpus: the continuations of each
//! text's first tokens (its prompt) up to the run's sequence length.
//!
//! - Sequence-level KD (Kim & Rush 2016): the teacher continues every text's prompt once per
//!   run; the students train on those sequences as their corpus. They are kept in the run
//!   folder (`teacher-sequences-<id>.json`, `<id>` a hash of the generation settings), with
//!   the hashes of the teacher file and of the corpus tokens, so that a resumed run and every
//!   seed read the same ones back.
//! - On-policy distillation (GKD, Agarwal et al. 2024): the student continues a batch's
//!   prompts during training ([`super::train`]).
//!
//! A text's prompt is its first `prompt_tokens` tokens (the whole text when it is shorter);
//! each row's sampler is seeded from its own seed, so a row's continuation does not depend on
//! which rows share its batch; a continuation stops after the end-of-text token.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::Continuations;
use super::error::LmError;
use super::generate::{Sampling, generate_batch};
use super::llama::{Llama, LlamaConfig};
use super::logit_cache::tokens_hash;
use crate::fsutil::write_atomic;

/// Version of the layout of a teacher-sequences file.
pub const TEACHER_SEQUENCES_VERSION: u32 = 1;

/// The prompt of `sequence`: its first `prompt_tokens` tokens, or all of it when shorter.
pub fn prompt_of(sequence: &[u32], prompt_tokens: usize) -> &[u32] {
    &sequence[..prompt_tokens.min(sequence.len())]
}

/// The seed of row `row` of a generation seeded `seed` (SplitMix64's mixing, so that nearby
/// rows get unrelated streams).
pub fn row_seed(seed: u64, row: u64) -> u64 {
    let mut z = seed ^ row.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The sequences `model` writes from the prompts of `sequences`: each prompt followed by its
/// continuation, up to `max_len` tokens in all, in the order of `sequences`; row `i` is
/// sampled from `seeds[i]`. Prompts of one length run together, `batch` at a time.
#[allow(clippy::too_many_arguments)]
pub fn continue_prompts(
    model: &Llama,
    config: &LlamaConfig,
    sequences: &[Vec<u32>],
    settings: &Continuations,
    seeds: &[u64],
    max_len: usize,
    stop: Option<u32>,
    batch: usize,
    device: &Device,
) -> Result<Vec<Vec<u32>>, LmError> {
    if seeds.len() != sequences.len() {
        return Err(LmError::Invalid(format!(
            "{} sequences but {} seeds",
            sequences.len(),
            seeds.len()
        )));
    }
    let sampling = Sampling {
        temperature: settings.temperature as f32,
        top_p: settings.top_p as f32,
        seed: 0,
    };
    let prompts: Vec<&[u32]> = sequences
        .iter()
        .map(|s| prompt_of(s, settings.prompt_tokens))
        .collect();
    let mut lengths: Vec<usize> = prompts.iter().map(|p| p.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let mut out: Vec<Vec<u32>> = prompts.iter().map(|p| p.to_vec()).collect();
    for length in lengths {
        if length == 0 {
            return Err(LmError::Invalid("an empty sequence has no prompt".into()));
        }
        let rows: Vec<usize> = (0..prompts.len())
            .filter(|&i| prompts[i].len() == length)
            .collect();
        let new = max_len.saturating_sub(length);
        if new == 0 {
            continue;
        }
        for chunk in rows.chunks(batch.max(1)) {
            let chunk_prompts: Vec<Vec<u32>> = chunk.iter().map(|&i| prompts[i].to_vec()).collect();
            let mut rngs: Vec<ChaCha8Rng> = chunk
                .iter()
                .map(|&i| ChaCha8Rng::seed_from_u64(seeds[i]))
                .collect();
            let generated = generate_batch(
                model,
                config,
                &chunk_prompts,
                new,
                &sampling,
                &mut rngs,
                stop,
                device,
            )?;
            for (&i, tokens) in chunk.iter().zip(generated) {
                out[i].extend(tokens);
            }
        }
    }
    Ok(out)
}

/// What a teacher-sequences file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherSequencesFile {
    /// [`TEACHER_SEQUENCES_VERSION`] at writing time.
    pub format_version: u32,
    /// SHA-256 of the teacher file.
    pub teacher_sha256: String,
    /// [`tokens_hash`] of the corpus sequences whose prompts were continued.
    pub corpus_tokens_sha256: String,
    /// Longest sequence.
    pub max_len: usize,
    /// How the prompts were continued.
    pub settings: Continuations,
    /// The sequences, in corpus order.
    pub sequences: Vec<Vec<u32>>,
}

/// The file in `run_dir` that keeps the teacher's continuations generated with `settings` up
/// to `max_len` tokens.
pub fn teacher_sequences_path(run_dir: &Path, settings: &Continuations, max_len: usize) -> PathBuf {
    let key = serde_json::to_string(&(settings, max_len)).unwrap_or_default();
    let digest = Sha256::digest(key.as_bytes());
    let id: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    run_dir.join(format!("teacher-sequences-{id}.json"))
}

/// A teacher that writes sequences: its decoder, shape, end-of-text token and file hash.
#[derive(Clone, Copy)]
pub struct SequenceWriter<'a> {
    /// The decoder.
    pub model: &'a Llama,
    /// Its shape.
    pub config: &'a LlamaConfig,
    /// The token that ends a text, if any.
    pub stop: Option<u32>,
    /// SHA-256 of its file, recorded with its sequences.
    pub sha256: &'a str,
}

/// The teacher's continuations of the prompts of `corpus`, read from `run_dir` when an
/// earlier session wrote them for this teacher, these sequences and these settings, else
/// generated (row `i` seeded from `settings.seed` and `i`) and written there. Returns them,
/// their file and whether they were read back.
#[allow(clippy::too_many_arguments)]
pub fn teacher_sequences(
    teacher: SequenceWriter<'_>,
    corpus: &[Vec<u32>],
    settings: &Continuations,
    max_len: usize,
    batch: usize,
    run_dir: &Path,
    device: &Device,
    log: &mut dyn FnMut(&str),
) -> Result<(Vec<Vec<u32>>, PathBuf, bool), LmError> {
    let path = teacher_sequences_path(run_dir, settings, max_len);
    let corpus_tokens_sha256 = tokens_hash(corpus);
    if path.is_file() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| LmError::Invalid(format!("{}: {e}", path.display())))?;
        match serde_json::from_str::<TeacherSequencesFile>(&text) {
            Ok(file)
                if file.format_version == TEACHER_SEQUENCES_VERSION
                    && file.teacher_sha256 == teacher.sha256
                    && file.corpus_tokens_sha256 == corpus_tokens_sha256
                    && file.settings == *settings
                    && file.max_len == max_len
                    && file.sequences.len() == corpus.len() =>
            {
                return Ok((file.sequences, path, true));
            }
            Ok(_) => log(&format!(
                "{}: written for another teacher, corpus or settings; generating again",
                path.display()
            )),
            Err(e) => log(&format!(
                "{}: unreadable ({e}); generating again",
                path.display()
            )),
        }
    }
    let seeds: Vec<u64> = (0..corpus.len() as u64)
        .map(|i| row_seed(settings.seed, i))
        .collect();
    let sequences = continue_prompts(
        teacher.model,
        teacher.config,
        corpus,
        settings,
        &seeds,
        max_len,
        teacher.stop,
        batch,
        device,
    )?;
    let file = TeacherSequencesFile {
        format_version: TEACHER_SEQUENCES_VERSION,
        teacher_sha256: teacher.sha256.to_string(),
        corpus_tokens_sha256,
        max_len,
        settings: *settings,
        sequences,
    };
    let mut text = serde_json::to_string(&file)
        .map_err(|e| LmError::Invalid(format!("{}: {e}", path.display())))?;
    text.push('\n');
    std::fs::create_dir_all(run_dir)
        .map_err(|e| LmError::Invalid(format!("{}: {e}", run_dir.display())))?;
    write_atomic(&path, text.as_bytes())
        .map_err(|e| LmError::Invalid(format!("{}: {e}", path.display())))?;
    Ok((file.sequences, path, false))
}
