//! Student language-model checkpoints: the weights as safetensors, and beside them a JSON
//! file (`<stem>.json`) with the decoder's full configuration, how it was trained, and the
//! tokenizer file it reads text with (saved once per run, see [`LmTokenizer::to_json`]), so
//! that `apprentice generate` needs nothing else.

use std::path::{Path, PathBuf};

use burn::nn::Initializer;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::error::LmError;
use super::llama::{Llama, LlamaConfig};
use super::tokenizer::LmTokenizer;
use crate::checkpoint::{load_weights, weights_to_bytes};
use crate::fsutil::write_atomic;

/// The `format` field of every student description.
pub const LM_CHECKPOINT_FORMAT: &str = "apprentice-lm-student-1";

/// What a student checkpoint records besides its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmCheckpointMeta {
    /// [`LM_CHECKPOINT_FORMAT`].
    pub format: String,
    /// The student's name in its run.
    pub name: String,
    /// The objective that trained it (`ce` for the next tokens alone).
    pub objective: String,
    /// The seed of its initial weights and batch order.
    pub seed: u64,
    /// The decoder's configuration.
    pub config: LlamaConfig,
    /// The tokenizer file, relative to this description's folder.
    pub tokenizer: PathBuf,
    /// SHA-256 of the teacher file it learned from.
    pub teacher_sha256: String,
    /// Where its initial weights came from, in words, when not from the seed alone (absent in
    /// checkpoints of randomly initialised students, as before this field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
}

/// The description file of the weights at `weights` (`x.safetensors` → `x.json`).
pub fn meta_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

fn invalid(path: &Path, message: impl std::fmt::Display) -> LmError {
    LmError::Invalid(format!("{}: {message}", path.display()))
}

/// Writes the weights of `model` to `weights` and its description beside them.
pub fn save_student(weights: &Path, model: &Llama, meta: &LmCheckpointMeta) -> Result<(), LmError> {
    let bytes = weights_to_bytes(model).map_err(|e| invalid(weights, e))?;
    write_atomic(weights, &bytes).map_err(|e| invalid(weights, e))?;
    let json = serde_json::to_string_pretty(meta).map_err(|e| invalid(weights, e))?;
    let path = meta_path(weights);
    write_atomic(&path, json.as_bytes()).map_err(|e| invalid(&path, e))
}

/// Writes a run's tokenizer file.
pub fn save_tokenizer(path: &Path, tokenizer: &LmTokenizer) -> Result<(), LmError> {
    let json = tokenizer.to_json()?;
    write_atomic(path, json.as_bytes()).map_err(|e| invalid(path, e))
}

/// A student checkpoint loaded onto `device`, with its description and tokenizer.
#[derive(Debug)]
pub struct LoadedStudent {
    /// The decoder.
    pub model: Llama,
    /// Its description.
    pub meta: LmCheckpointMeta,
    /// Its tokenizer.
    pub tokenizer: LmTokenizer,
}

/// Reads the checkpoint at `weights` (and the description and tokenizer it names).
pub fn load_student(weights: &Path, device: &Device) -> Result<LoadedStudent, LmError> {
    let path = meta_path(weights);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        invalid(
            &path,
            format!("{e} (a student checkpoint keeps its description beside its weights)"),
        )
    })?;
    let meta: LmCheckpointMeta = serde_json::from_str(&text)
        .map_err(|e| invalid(&path, format!("not a student description: {e}")))?;
    if meta.format != LM_CHECKPOINT_FORMAT {
        return Err(invalid(
            &path,
            format!(
                "format {:?}, expected {LM_CHECKPOINT_FORMAT:?}",
                meta.format
            ),
        ));
    }
    meta.config
        .validate()
        .map_err(|m| invalid(&path, format!("config.{m}")))?;
    let tokenizer_path = path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&meta.tokenizer);
    let tokenizer_text =
        std::fs::read_to_string(&tokenizer_path).map_err(|e| invalid(&tokenizer_path, e))?;
    let tokenizer = LmTokenizer::from_json(&tokenizer_text, &tokenizer_path)?;
    if tokenizer.vocab_size() != meta.config.vocab_size {
        return Err(invalid(
            &tokenizer_path,
            format!(
                "{} tokens, but the student's vocabulary has {}",
                tokenizer.vocab_size(),
                meta.config.vocab_size
            ),
        ));
    }
    let bytes = std::fs::read(weights).map_err(|e| invalid(weights, e))?;
    let model = Llama::new(&meta.config, &Initializer::Zeros, device);
    let model = load_weights(model, bytes).map_err(|e| invalid(weights, e))?;
    Ok(LoadedStudent {
        model,
        meta,
        tokenizer,
    })
}
