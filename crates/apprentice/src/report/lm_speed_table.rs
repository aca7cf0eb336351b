//! The language-model speed comparison with PyTorch that `bench/lm_vs_torch.sh` writes
//! (`docs/results/data/lm-speed-vs-pytorch.json`), and its Markdown table: the teacher's
//! scoring and a student's training step in tokens per second on both sides, with the ratio.

use std::fmt::Write as _;

use serde::Deserialize;

/// One side's measure of one kind of work.
#[derive(Debug, Clone, Deserialize)]
pub struct SpeedMeasure {
    /// Sequences per batch.
    pub batch: usize,
    /// Real tokens processed while timed.
    pub tokens: usize,
    /// Seconds timed.
    pub seconds: f64,
    /// `tokens / seconds`.
    pub tokens_per_s: f64,
    /// Optimiser steps timed (training only).
    #[serde(default)]
    pub steps: Option<usize>,
}

/// One side of the comparison (apprentice or PyTorch).
#[derive(Debug, Clone, Deserialize)]
pub struct SpeedSide {
    /// The implementation and its version.
    pub engine: String,
    /// Threads it was given.
    pub threads: usize,
    /// Teacher scoring.
    pub teacher_scoring: SpeedMeasure,
    /// The student's training step.
    pub student_training: SpeedMeasure,
}

/// Load averages around the measurements.
#[derive(Debug, Clone, Deserialize)]
pub struct LoadAverages {
    /// Before apprentice ran (1, 5 and 15 minutes).
    pub before: Vec<f64>,
    /// Between the two sides.
    pub between: Vec<f64>,
    /// After PyTorch ran.
    pub after: Vec<f64>,
}

/// The machine the comparison ran on.
#[derive(Debug, Clone, Deserialize)]
pub struct SpeedMachine {
    /// CPU model as `lscpu` names it.
    pub cpu: String,
    /// Cores of the machine.
    pub cores: usize,
    /// Its load.
    pub load_average: LoadAverages,
}

/// The whole raw file.
#[derive(Debug, Clone, Deserialize)]
pub struct LmSpeedComparison {
    /// The command that wrote it.
    pub command: String,
    /// The experiment file whose corpus, teacher and student were timed.
    pub config: String,
    /// Where the machine stood.
    pub machine: SpeedMachine,
    /// Threads of both sides.
    pub threads: usize,
    /// Sequences scored and trained on.
    pub sequences: usize,
    /// Their tokens.
    pub tokens: usize,
    /// apprentice's measures.
    pub apprentice: SpeedSide,
    /// PyTorch's.
    pub pytorch: SpeedSide,
}

/// Parses `text` (the file `name`); the error names the file.
pub fn parse_lm_speed(text: &str, name: &str) -> Result<LmSpeedComparison, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("{name}: not the output of bench/lm_vs_torch.sh: {e}"))
}

/// The three load averages as `1.23 / 0.98 / 0.50`.
fn loads(values: &[f64]) -> String {
    let parts: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
    parts.join(" / ")
}

/// The table: one row per kind of work, tokens per second on each side and the ratio
/// apprentice / PyTorch (above 1: apprentice is faster), whatever it is; then the setting.
pub fn lm_speed_markdown(run: &LmSpeedComparison) -> String {
    let (ours, theirs) = (&run.apprentice, &run.pytorch);
    let mut md = String::new();
    md.push_str(
        "| work | batch | apprentice tokens/s | PyTorch tokens/s | apprentice / PyTorch |\n",
    );
    md.push_str("|---|--:|--:|--:|--:|\n");
    for (title, a, t) in [
        (
            "teacher scoring (forward, logits to the host)",
            &ours.teacher_scoring,
            &theirs.teacher_scoring,
        ),
        (
            "student training step (forward KL, backward, AdamW)",
            &ours.student_training,
            &theirs.student_training,
        ),
    ] {
        let ratio = if t.tokens_per_s > 0.0 {
            format!("{:.2}×", a.tokens_per_s / t.tokens_per_s)
        } else {
            "—".to_string()
        };
        let _ = writeln!(
            md,
            "| {title} | {} | {:.1} | {:.1} | {ratio} |",
            a.batch, a.tokens_per_s, t.tokens_per_s
        );
    }
    let load = &run.machine.load_average;
    let _ = write!(
        md,
        "\n`{}` on {} ({} cores), {} thread{} each side: {} sequences of {}, {} tokens; \
         {} against {}. Load average (1 / 5 / 15 min) {} before, {} between the sides, {} after.\n",
        run.command,
        run.machine.cpu,
        run.machine.cores,
        run.threads,
        if run.threads == 1 { "" } else { "s" },
        run.sequences,
        run.config,
        run.tokens,
        ours.engine,
        theirs.engine,
        loads(&load.before),
        loads(&load.between),
        loads(&load.after),
    );
    md
}
