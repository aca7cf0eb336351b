//! `apprentice bench-model` for models of a text run: sentences per second of the whole
//! pipeline, tokenizer included, at batch 1 and 256, timed as a run times its models
//! ([`super::speed::sentences_per_second`] over the seed's test texts), with the parameters
//! and the file's size.
//!
//! The image columns that need a fixed-size input (FLOPs per example, latency percentiles,
//! peak memory, energy) are not measured: a text model's cost depends on each text's length,
//! and the frozen-encoder teacher's cost is mostly its encoder, outside the file; the
//! sentences per second with the tokenizer included are what a deployment sees.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::error::TextError;
use super::run_model::{load_run_model, load_run_texts};
use super::saved_model::run_config;
use super::speed::{format_speed, sentences_per_second};
use crate::report::units::{bytes, thousands};

/// One text model's measured cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextModelBench {
    /// The model's name in its run (`cnn-kd`).
    pub name: String,
    /// Its architecture.
    pub architecture: String,
    /// Its parameters (the frozen-encoder teacher's include its encoder).
    pub params: usize,
    /// Bytes of the model's file, or of its Hugging Face folder (for the frozen-encoder
    /// teacher, its head only: the encoder is a folder of its own).
    pub file_bytes: u64,
    /// Sentences per second, one sentence at a time, tokenizer included.
    pub batch_1_per_s: f64,
    /// Sentences per second in batches of 256, tokenizer included.
    pub batch_256_per_s: f64,
    /// The texts cycled through (the seed's test split).
    pub texts: usize,
    /// Seconds spent timing at each batch size, after a warm-up batch.
    pub budget_s: f64,
    /// Threads the CPU backend could use.
    pub threads: usize,
}

/// Times the model of a text run saved at `model` on its seed's test texts, for `budget` at
/// each batch size (after one warm-up batch), reading the run's encoder and texts from
/// `data_root` or else from the folder the run recorded.
pub fn bench_text_model(
    model: &Path,
    data_root: Option<&Path>,
    budget: Duration,
) -> Result<TextModelBench, TextError> {
    let (data, split) = load_run_texts(model, &run_config(model)?, data_root)?;
    let loaded = load_run_model(model, data_root)?;
    let file_bytes = size_on_disk(model)?;
    let texts: Vec<&str> = split.test.iter().map(|&i| data.texts[i].as_str()).collect();
    let run = |batch: &[&str]| {
        std::hint::black_box(loaded.text_logits(batch).ok());
    };
    let batch_1_per_s = sentences_per_second(&texts, 1, budget, run);
    let batch_256_per_s = sentences_per_second(&texts, 256, budget, run);
    Ok(TextModelBench {
        name: loaded.name,
        architecture: loaded.architecture,
        params: loaded.params,
        file_bytes,
        batch_1_per_s,
        batch_256_per_s,
        texts: texts.len(),
        budget_s: budget.as_secs_f64(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// Bytes of a model file, or of every file of a transformer's folder.
fn size_on_disk(path: &Path) -> Result<u64, TextError> {
    let io = |source| TextError::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_dir() {
        return Ok(metadata.len());
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path).map_err(io)? {
        total += entry.map_err(io)?.metadata().map_err(io)?.len();
    }
    Ok(total)
}

/// The measurements as a table: one row per model, and each speed's ratio to the first row's
/// (give the teacher first).
pub fn text_bench_table(models: &[TextModelBench]) -> String {
    let Some(first) = models.first() else {
        return String::new();
    };
    let ratio = |ours: f64, theirs: f64| {
        if theirs > 0.0 {
            format!("{:.1}×", ours / theirs)
        } else {
            "—".to_string()
        }
    };
    let mut out = format!(
        "{:<14} {:>12} {:>10} {:>10} {:>8} {:>10} {:>8}  architecture\n",
        "model", "parameters", "file", "batch 1", "vs 1st", "batch 256", "vs 1st"
    );
    for model in models {
        out.push_str(&format!(
            "{:<14} {:>12} {:>10} {:>10} {:>8} {:>10} {:>8}  {}\n",
            model.name,
            thousands(model.params as u64),
            bytes(model.file_bytes),
            format_speed(model.batch_1_per_s),
            ratio(model.batch_1_per_s, first.batch_1_per_s),
            format_speed(model.batch_256_per_s),
            ratio(model.batch_256_per_s, first.batch_256_per_s),
            model.architecture
        ));
    }
    out.push_str(&format!(
        "\nsentences per second, tokenizer included, over the seed's {} test texts; {:.1} s at \
         each batch size after a warm-up batch, {} thread{}.\nFLOPs, latency percentiles, \
         memory and energy are measured for image checkpoints only.\n",
        first.texts,
        first.budget_s,
        first.threads,
        if first.threads == 1 { "" } else { "s" }
    ));
    out
}
