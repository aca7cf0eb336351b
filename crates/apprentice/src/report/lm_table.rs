//! The `lm` section of a language-model run's `results.json` and its tables.
//!
//! A language-model run fills the usual envelope ([`super::results::Results`]: test accuracy
//! is next-token top-1 accuracy on the held-out texts, NLL is per token, agreement is top-1
//! agreement with the teacher, KL is `KL(teacher ‖ model)` per position) and adds this
//! section under the key [`LM_KEY`]: perplexity, parameters with and without the embeddings,
//! throughput, and the perplexity curves over training. It lives here, not beside the
//! runner, so that the report can render it without depending on the language-model code.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::results::{Results, Role, Summary};
use super::units::thousands;

/// Key of the language-model section in `results.json`.
pub const LM_KEY: &str = "lm";

/// What a language-model run adds to `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmSection {
    /// The teacher file as configured.
    pub teacher_file: String,
    /// Its SHA-256.
    pub teacher_sha256: String,
    /// Texts read from the corpus (after its filter and limit).
    pub texts: usize,
    /// Tokens per sequence at most (longer texts were cut).
    pub max_len: usize,
    /// Held-out positions scored per seed.
    pub held_out_tokens: Summary,
    /// Training steps of every student.
    pub steps: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Hardware threads of the machine when speeds were measured.
    pub threads: usize,
    /// Sequences per scoring batch in the speed measurement.
    pub score_batch: usize,
    /// The teacher's cached distributions.
    pub cache: LmCacheUse,
    /// One entry per model, in the order of the results' models.
    pub models: Vec<LmModelSection>,
    /// Where every student's initial weights came from, in words, when not from the seed
    /// alone (`[student] init`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student_init: Option<String>,
}

/// How the teacher's distributions on the training texts were obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmCacheUse {
    /// The cache file, relative to the run folder.
    pub file: String,
    /// Tokens kept per position.
    pub top_k: usize,
    /// Positions stored.
    pub positions: usize,
    /// Whether an existing file was reused (false: the teacher ran once to write it).
    pub reused: bool,
    /// Seconds spent computing (or reading) it.
    pub seconds: f64,
}

/// The language-model measures of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmModelSection {
    /// As in the results' models.
    pub name: String,
    /// As in the results' models.
    pub role: Role,
    /// The objective in words (`"next-token cross-entropy"`, `"JSD β=0.5, τ=1"`).
    pub objective: String,
    /// Held-out perplexity, `exp` of the mean per-token NLL.
    pub perplexity: Summary,
    /// Every parameter.
    pub params: usize,
    /// Parameters outside the token embeddings and output projection.
    pub non_embedding_params: usize,
    /// New tokens per second of greedy generation at batch 1 (KV cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_tokens_per_s: Option<Summary>,
    /// Tokens per second of scoring held-out texts, `score_batch` sequences per forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring_tokens_per_s: Option<Summary>,
    /// Tokens per second of training steps (students only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_tokens_per_s: Option<Summary>,
    /// Held-out perplexity over training, one curve per seed (students only).
    #[serde(default)]
    pub curves: Vec<LmCurvePoints>,
}

/// A student's held-out perplexity after some numbers of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmCurvePoints {
    /// The seed.
    pub seed: u64,
    /// Steps done at each point.
    pub steps: Vec<usize>,
    /// Perplexity on the curve's held-out texts.
    #[serde(deserialize_with = "crate::nullable::numbers")]
    pub perplexity: Vec<f64>,
}

impl LmSection {
    /// The section of a `results.json` document, if it has one that reads.
    pub fn from_document(document: &serde_json::Value) -> Option<Result<Self, String>> {
        let value = document.get(LM_KEY)?;
        Some(Self::deserialize(value).map_err(|e| format!("{LM_KEY}: {e}")))
    }
}

fn optional(summary: Option<&Summary>, digits: usize, scale: f64) -> String {
    summary.map_or_else(|| "—".to_string(), |s| s.format(digits, scale))
}

/// The cells of every row: model, objective, perplexity, accuracy %, agreement %, KL,
/// non-embedding and total parameters, generation and scoring tokens/s.
fn rows(results: &Results, section: &LmSection) -> Vec<[String; 11]> {
    section
        .models
        .iter()
        .map(|lm| {
            let model = results.models.iter().find(|m| m.name == lm.name);
            let test = model.map(|m| &m.test);
            [
                lm.name.clone(),
                lm.objective.clone(),
                lm.perplexity.format(2, 1.0),
                optional(test.map(|t| &t.accuracy), 2, 100.0),
                optional(test.and_then(|t| t.agreement.as_ref()), 2, 100.0),
                optional(test.and_then(|t| t.kl_from_teacher.as_ref()), 3, 1.0),
                thousands(lm.non_embedding_params as u64),
                thousands(lm.params as u64),
                weights_megabytes(lm.params),
                optional(lm.generation_tokens_per_s.as_ref(), 1, 1.0),
                optional(lm.scoring_tokens_per_s.as_ref(), 0, 1.0),
            ]
        })
        .collect()
}

/// The memory the model's weights take when loaded: every parameter as float32 (the teacher's
/// quantised GGUF blocks are dequantised on load), in megabytes.
fn weights_megabytes(params: usize) -> String {
    format!("{:.1}", params as f64 * 4.0 / 1e6)
}

const HEADER: [&str; 11] = [
    "model",
    "objective",
    "perplexity",
    "accuracy %",
    "agreement %",
    "KL(t‖s)",
    "non-emb. params",
    "params",
    "weights MB",
    "gen. tok/s",
    "score tok/s",
];

/// The closing line of both tables: what the numbers are over (and where the students
/// started, when not from random weights).
fn footnote(results: &Results, section: &LmSection) -> String {
    let seeds = results.seeds.len();
    let init = section
        .student_init
        .as_ref()
        .map_or_else(String::new, |init| {
            format!(" Every student starts from {init}.")
        });
    format!(
        "{}: {} texts of {} (at most {} tokens), {} held-out tokens per seed; {} steps of {} \
         sequences; mean ± sample std over {} seed{}; speeds on a machine of {} hardware \
         thread{} (scoring {} sequences per batch, generation at batch 1); weights MB: every \
         parameter as float32 in memory, the teacher dequantised from its GGUF file.",
        results.experiment,
        section.texts,
        results.data.name,
        section.max_len,
        section.held_out_tokens.format(0, 1.0),
        section.steps,
        section.batch_size,
        seeds,
        if seeds == 1 { "" } else { "s" },
        section.threads,
        if section.threads == 1 { "" } else { "s" },
        section.score_batch,
    ) + &init
}

/// The comparison of a language-model run as plain text, for the terminal.
pub fn lm_table(results: &Results, section: &LmSection) -> String {
    let rows = rows(results, section);
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i > 0 {
                out.push_str("  ");
            }
            if i < 2 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        out.trim_end().to_string()
    };
    let header: Vec<String> = HEADER.iter().map(ToString::to_string).collect();
    let header = line(&header);
    let rule = "-".repeat(header.chars().count());
    let mut out = format!("{rule}\n{header}\n{rule}\n");
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    let _ = writeln!(out, "\n{}", footnote(results, section));
    out
}

/// The comparison of a language-model run as a Markdown table.
pub fn lm_markdown(results: &Results, section: &LmSection) -> String {
    let mut md = format!("| {} |\n", HEADER.join(" | "));
    md.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for row in rows(results, section) {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    let _ = write!(md, "\n{}\n", footnote(results, section));
    md
}

/// Mean held-out perplexity over seeds at every curve point, one column per student, as a
/// Markdown table (points where the seeds' curves differ in steps are left out).
pub fn lm_curves_markdown(section: &LmSection) -> String {
    let students: Vec<&LmModelSection> = section
        .models
        .iter()
        .filter(|m| !m.curves.is_empty())
        .collect();
    let Some(first) = students.first().and_then(|m| m.curves.first()) else {
        return "No perplexity curves in this run.\n".to_string();
    };
    let names: Vec<&str> = students.iter().map(|m| m.name.as_str()).collect();
    let mut md = format!("| step | {} |\n", names.join(" | "));
    let _ = writeln!(md, "|--:|{}", "--:|".repeat(names.len()));
    for (index, step) in first.steps.iter().enumerate() {
        let cells: Vec<String> = students
            .iter()
            .map(|m| {
                let values: Vec<f64> = m
                    .curves
                    .iter()
                    .filter(|c| c.steps.get(index) == Some(step))
                    .filter_map(|c| c.perplexity.get(index).copied())
                    .collect();
                if values.len() == m.curves.len() {
                    format!("{:.1}", Summary::from_values(&values).mean)
                } else {
                    "—".to_string()
                }
            })
            .collect();
        let _ = writeln!(md, "| {step} | {} |", cells.join(" | "));
    }
    md.push_str("\nMean held-out perplexity over seeds on each seed's curve texts.\n");
    md
}
